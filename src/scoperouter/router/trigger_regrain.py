"""A trigger fired before a restart, under its processor's granularity now.

Invariant: pure. An entity-scope trigger whose ids are of another type than its
processor's granularity now (:func:`~.window_state.regrain_reason`: the processor became
``granularity: date`` -- a rollback -- or takes another entity type) becomes the full-date
trigger of the same processor, date and causes, with the reason the open windows get
(``date_granularity`` / ``unmapped_entity_type``) and the id :func:`~.window_trigger.trigger_id`
gives that content: a changed scope is a changed trigger (a processor deduplicating on
``trigger_id`` must not skip the full-date run as one it already ran). Everything else is
returned as None (unchanged): full-date triggers, matching ids, and a processor no longer in
the registry (granularity ``""``). :func:`regrain_entries` does it to the ledger's entries
at a restore.
"""

from __future__ import annotations

from collections.abc import Callable

from scoperouter.messages.models import Trigger
from scoperouter.router.ledger import Entry
from scoperouter.router.window_state import regrain_reason
from scoperouter.router.window_trigger import trigger_id


def regrained(t: Trigger, granularity: str) -> Trigger | None:
    """``t`` as a full-date trigger when its ids are of another type than ``granularity``
    takes now, else None."""
    if t.scope != "entities" or not t.entity_ids:
        return None
    reason = regrain_reason(frozenset(t.entity_ids), t.entity_type or "", granularity)
    if reason is None:
        return None
    tid = trigger_id(t.processor, t.game_date, "date", None, t.caused_by, t.caused_by_more)
    return t.model_copy(
        update={
            "trigger_id": tid,
            "scope": "date",
            "entity_type": None,
            "entity_ids": None,
            "reason": reason,
        }
    )


def regrain_entries(
    entries: list[Entry], granularity: Callable[[str], str]
) -> tuple[list[Entry], dict[str, str]]:
    """``entries`` with every one not succeeded whose trigger :func:`regrained` changes
    holding the full-date trigger (a re-run, a redrive send it; its history, attempts and
    order kept), and the old trigger id -> new one. A full-date trigger of that id already
    in the book covers the same work: the regrained entry is dropped for it."""
    renamed: dict[str, str] = {}
    out: list[Entry] = []
    have = {e.trigger_id for e in entries}
    for e in entries:
        new = None if e.phase == "succeeded" else regrained(e.trigger, granularity(e.key[0]))
        if new is None:
            out.append(e)
            continue
        renamed[e.trigger_id] = new.trigger_id
        if new.trigger_id not in have:
            have.add(new.trigger_id)
            out.append(e._replace(trigger=new))
    return out, renamed

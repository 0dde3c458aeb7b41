"""A trigger fired before a restart, under its processor's granularity now.

Invariant: pure. An entity-scope trigger whose ids are of another type than its
processor's granularity now (:func:`~.window_state.regrain_reason`: the processor became
``granularity: date`` -- a rollback -- or takes another entity type) becomes the full-date
trigger of the same processor, date and causes, with the reason the open windows get
(``date_granularity`` / ``unmapped_entity_type``) and the id :func:`~.window_trigger.trigger_id`
gives that content: a changed scope is a changed trigger (a processor deduplicating on
``trigger_id`` must not skip the full-date run as one it already ran). Everything else is
returned as None (unchanged): full-date triggers, matching ids, and a processor no longer in
the registry (granularity ``""``).
"""

from __future__ import annotations

from scoperouter.messages.models import Trigger
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

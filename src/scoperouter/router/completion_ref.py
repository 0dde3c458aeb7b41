"""Which trigger a completion message closes, read from the raw message (pure).

Invariant: reading never raises on a message it does not understand; it answers ``None``
("not a completion report") and the message is routed (or rejected) as an event as before.

A completion names its trigger, in this order:

* ``trigger_id`` -- carried by scoperouter's SDK and the target mappings (top level or in
  ``metadata``);
* ``trigger_message_id`` -- production's field: the Pub/Sub message id that triggered the
  run (``shared/publishers/unified_pubsub_publisher.py:94,118,212``; the processors copy
  it from their trigger's options, ``data_processors/analytics/analytics_base.py:494,1652``).
  It matches a trigger id (a trigger carries its id as ``trigger_message_id``) or a Pub/Sub
  message id the dispatcher recorded as the trigger's alias;
* else, with no id at all, the processor and the date: ``processor_name`` /
  ``processor`` (production's class name, ``PlayerGameSummaryProcessor``, read as the
  registry processor ``player_game_summary`` when that is one: :func:`processor_of_class`)
  or the publisher of the message's source, and ``game_date`` -- the oldest
  open trigger of that processor on that date (production's ``parent_processor`` names the
  upstream, not the run: it is kept for the trace, ``unified_pubsub_publisher.py:92,210``).

A completion that says when it was produced (``produced_at``, else ``timestamp``: the
normaliser's fields, :func:`produced_time`) reports no trigger that fired after that (past
the clock slack: :func:`scoperouter.router.ledger.fired_after`).

``execution_id`` (``unified_pubsub_publisher.py:84,192``) identifies the run: recorded per
attempt. A completion report is a message that names a trigger id, or a ``status`` with a
processor; one with a ``source`` (a source key that is not ``null``) is also an event and
is routed as well. A field read "top level or in ``metadata``" takes ``metadata``'s value
under a top-level ``null`` (SPEC section 3 drops top-level nulls): a null never hides
missed ids or the trigger's id.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from scoperouter.messages.event_fields import execution_key, produced_time_of, top_or_meta
from scoperouter.messages.triggers import trigger_problem

Outcome = Literal["success", "partial", "no_data", "failed"]
_OUTCOMES: frozenset[str] = frozenset({"success", "partial", "no_data", "failed"})


@dataclass(frozen=True, slots=True)
class CompletionRef:
    """What a completion message says about the run of one trigger."""

    outcome: Outcome
    trigger_id: str | None = None
    message_id: str | None = None  # production's trigger_message_id
    processor: str | None = None
    day: date | None = None
    execution_id: str | None = None
    parent_processor: str | None = None
    error: str | None = None
    missed: tuple[str, ...] = ()  # partial: entity ids the run did not process
    event_id: str | None = None
    # when the message was produced (epoch seconds: ``produced_at``, else ``timestamp``;
    # None: it says not): it is no report of a trigger (re)opened after that (LedgerBook)
    produced_at: float | None = None
    # also routed as an event (it has a source): the daemon checked and marked its id in
    # the durable seen ids first, so a redelivery within the dedup horizon never gets here
    # (the ledger need not remember it when it matches no trigger)
    routed: bool = False

    @property
    def says_success(self) -> bool:
        """Its run processed every id it names: ``success``, ``no_data``, or a ``partial``
        naming no missed ids (else it reports missed ids or a failure)."""
        return self.outcome in ("success", "no_data") or (
            self.outcome == "partial" and not self.missed
        )


# fields a journal row or snapshot leaves out at their default (rows written before they
# existed read the same, and a router rolled back to before them still reads new rows)
_OMITTED_AT_DEFAULT: dict[str, object] = {"produced_at": None, "routed": False}


def ref_to_dict(ref: CompletionRef) -> dict[str, Any]:
    """``ref`` as JSON-ready values (the journal's and the ledger snapshot's form)."""
    d = {
        k: getattr(ref, k)
        for k in ref.__slots__
        if k not in _OMITTED_AT_DEFAULT or getattr(ref, k) != _OMITTED_AT_DEFAULT[k]
    }
    d["day"] = ref.day.isoformat() if ref.day is not None else None
    d["missed"] = list(ref.missed)
    return d


def ref_from_dict(d: Mapping[str, Any]) -> CompletionRef:
    """The inverse of :func:`ref_to_dict`."""
    v = dict(d)
    v["day"] = date.fromisoformat(v["day"]) if v.get("day") else None
    v["missed"] = tuple(v.get("missed") or ())
    return CompletionRef(**v)


def _str(raw: Mapping[str, Any], meta: Mapping[str, Any], key: str) -> str | None:
    v = top_or_meta(raw, meta, key)  # a top-level null is absent (SPEC 3)
    return v if isinstance(v, str) and v else None


def _outcome(raw: Mapping[str, Any]) -> Outcome | None:
    """The run's outcome, read as the normaliser reads ``status`` (stripped, any case:
    ``SUCCESS`` closes its trigger as it routes), else ``success``; None: an unknown
    status (no report)."""
    status = raw.get("status")
    if isinstance(status, str) and (folded := status.strip().lower()) in _OUTCOMES:
        return folded  # type: ignore[return-value]
    if status is None:
        ok = raw.get("success")
        if isinstance(ok, bool):
            return "success" if ok else "failed"
        return "success"
    return None


def produced_time(raw: Mapping[str, Any]) -> float | None:
    """When ``raw`` was produced, in epoch seconds, read as the normaliser reads it
    (:func:`~scoperouter.messages.event_fields.produced_time_of`: ``produced_at``, else
    ``timestamp``, top level; ISO 8601 / RFC 3339, a naive time UTC, or epoch seconds); None
    when neither is there or readable (never raises: a completion with an unreadable time is
    one without a time)."""
    at = produced_time_of(raw)
    return None if at is None else at.timestamp()


def _day(raw: Mapping[str, Any], date_field: str) -> date | None:
    for key in (date_field, "game_date"):
        v = raw.get(key)
        if isinstance(v, str):
            try:
                return date.fromisoformat(v)
            except ValueError:
                return None
    return None


def missed_entities(raw: Mapping[str, Any]) -> tuple[str, ...]:
    """The ids a partial run did not process (``missed_entities``, top level or in
    ``metadata``), sorted, once each."""
    meta = raw.get("metadata")
    meta = meta if isinstance(meta, Mapping) else {}
    missed_raw = top_or_meta(raw, meta, "missed_entities")
    if not isinstance(missed_raw, list):
        return ()
    return tuple(sorted({str(x) for x in missed_raw if isinstance(x, str | int)}))


def processor_of_class(name: str, processors: Collection[str]) -> str:
    """The registry processor a production class name names: CamelCase ending in
    ``Processor``, minus that suffix, in snake_case (``PlayerGameSummaryProcessor`` ->
    ``player_game_summary``, ``MLFeatureStoreProcessor`` -> ``ml_feature_store``) -- only
    when that is one of ``processors``; any other name is returned as it is."""
    if name in processors or not name.endswith("Processor") or not name[:1].isupper():
        return name
    base = name.removesuffix("Processor")
    snake = _CAMEL.sub("_", base).lower()
    return snake if snake in processors else name


_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def completion_ref(
    raw: Mapping[str, Any],
    *,
    date_field: str = "game_date",
    processors: Collection[str] | None = None,
) -> CompletionRef | None:
    """The completion ``raw`` reports, or None when it names no trigger and no processor.

    ``processors``: the registry's processor names -- a production class name
    (``processor_name``: ``PlayerGameSummaryProcessor``) reads as the one it names
    (:func:`processor_of_class`); None: the name as sent."""
    if not isinstance(raw, Mapping):
        return None
    meta = raw.get("metadata")
    meta = meta if isinstance(meta, Mapping) else {}
    if trigger_problem(raw) is not None:
        # a request to run (an orchestrator's or the auto-retry function's trigger) is no
        # completion: its processor_name and date would close an open trigger as a success
        return None
    outcome = _outcome(raw)
    if outcome is None:
        return None
    tid = _str(raw, meta, "trigger_id")
    mid = _str(raw, meta, "trigger_message_id")
    proc = _str(raw, meta, "processor") or _str(raw, meta, "processor_name")
    if proc is not None and processors is not None:
        proc = processor_of_class(proc, processors)
    if tid is None and mid is None and proc is None:
        return None
    missed = missed_entities(raw)
    err = raw.get("error_message")
    return CompletionRef(
        outcome=outcome,
        trigger_id=tid,
        message_id=mid,
        processor=proc,
        day=_day(raw, date_field),
        execution_id=_str(raw, meta, "execution_id"),
        parent_processor=_str(raw, meta, "parent_processor"),
        error=str(err)[:500] if err else None,
        missed=missed,
        event_id=_completion_id(raw, meta),
        produced_at=produced_time(raw),
        routed=not is_report_only(raw),
    )


def _completion_id(raw: Mapping[str, Any], meta: Mapping[str, Any]) -> str | None:
    """The id a completion is taken once by: its ``event_id``, else its ``execution_id``
    with a digest of the body (:func:`execution_key`: production's execution id names a
    run, which reports several dates under it), else None."""
    eid = _str(raw, meta, "event_id")
    if eid is not None:
        return eid
    xid = _str(raw, meta, "execution_id")
    return execution_key(xid, raw) if xid is not None else None


_SOURCE_KEYS = ("source", "source_table", "analytics_table", "output_table")


def is_report_only(raw: Mapping[str, Any]) -> bool:
    """True when ``raw`` is a bare completion report: no source to route (the SDK sends one
    when a run changed nothing or failed). A source key whose value is ``null`` names no
    source -- SPEC section 3 drops top-level nulls, and the normaliser picks the source among
    the keys that have a value (``messages.event_fields.source_names``) -- so a report that
    always writes the key (``"output_table": null`` in a failure) is still a report, not an
    event dead-lettered ``missing_source`` whose failure never reaches the ledger."""
    return all(raw.get(k) is None for k in _SOURCE_KEYS)

"""The canonical completion event a processor publishes (SPEC section 3), built as a dict:
its fields, the size fallback to date level, a partial run's missed ids, its Pub/Sub
attributes and the run id its event ids derive from. Published by
:class:`~scoperouter.sdk.publisher.CompletionPublisher` (which re-exports these names).

Invariant: pure -- no I/O and no Pub/Sub client; the only defaults taken from outside are a
fresh ``event_id`` (uuid4) and ``produced_at`` (now) when the caller gives none. A built
event is one the router accepts (a bad argument raises here instead), and an event over a
limit, or naming an id that names nobody (``None``, blank), loses only
``affected_entities`` (date level: always safe); an event never says "nothing changed"
(the router routes every success: an empty entity list is no entity information, an empty
``changed_fields`` unknown -- SPEC sections 2 and 3 -- so no change is announced by
building no event, as :func:`~scoperouter.sdk.change_detection.completion_event` does); an
id is a str or an int (stringified), any other
value raises TypeError (:mod:`scoperouter.sdk.entity_ids`); and no range event is built unless the
caller asks for a backfill (the router runs a range at date scope with no lookback and
ignores its ids, SPEC section 2): a change over several dates is one event per date
(:func:`build_completion_events`).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from scoperouter.messages.event_fields import DATE_RE, MAX_EVENT_ENTITIES, MAX_ID_CHARS
from scoperouter.messages.normalize import MAX_BACKFILL_DAYS
from scoperouter.sdk.change_detection import as_day
from scoperouter.sdk.entity_ids import entity_name
from scoperouter.sdk.router_checks import check_event
from scoperouter.sdk.scope import Scope, date_key

Status = Literal["success", "partial", "no_data", "failed"]
_STATUSES = ("success", "partial", "no_data", "failed")


@dataclass(frozen=True)
class PublishLimits:
    """Above either limit the event falls back to date level. Both are inclusive.

    The defaults are size guards only: ``max_entities`` is the router's own
    :data:`~scoperouter.messages.event_fields.MAX_EVENT_ENTITIES` (past it the router reads
    the event as the full date anyway), so the router's per-processor ``max_entities``,
    which count ids after mapping (120 players may be 8 teams), decide the scope. A smaller
    ``max_entities`` is a caller's own threshold: every reader then runs the full date."""

    max_entities: int = MAX_EVENT_ENTITIES
    max_bytes: int = 64 * 1024

    def __post_init__(self) -> None:
        if self.max_entities < 1 or self.max_bytes < 1:
            raise ValueError("publish limits must be positive")


def encode_event(event: Mapping[str, Any]) -> bytes:
    """The exact bytes published: compact JSON, keys sorted."""
    return json.dumps(event, separators=(",", ":"), sort_keys=True).encode()


def _ids(affected: Mapping[str, Iterable[str]]) -> tuple[dict[str, list[str]], bool]:
    """``(ids per key, unnamed)``: ``unnamed`` when an id names nobody (``None``, empty,
    blank, padded with spaces or invisible, :func:`~scoperouter.messages.event_fields.unnamed_id`) -- never sent as an id (``None`` would become
    the player ``"None"``); the caller makes the event date level, as the router reads it."""
    out: dict[str, list[str]] = {}
    unnamed = False
    for key, ids in affected.items():
        if isinstance(ids, str):
            raise TypeError(f"affected_entities[{key!r}] must be a list of ids, not a string")
        clean: set[str] = set()
        for i in ids:
            name = entity_name(i, f"affected_entities[{key!r}] entity id")
            if name is None:
                unnamed = True
            else:
                clean.add(name)
        if clean:
            out[str(key)] = sorted(clean)
    return out, unnamed


def build_completion_event(
    *,
    source: str,
    game_date: date | None,
    affected_entities: Mapping[str, Iterable[str]] | None,
    changed_fields: Iterable[str] | None = None,
    scope: Scope | None = None,
    status: Status = "success",
    event_id: str | None = None,
    correlation_id: str | None = None,
    priority: Literal["normal", "critical"] | None = None,
    record_count: int | None = None,
    produced_at: datetime | None = None,
    start_date: date | None = None,
    end_date: date | None = None,
    date_field: str | None = None,
    referenced_tables: Iterable[str] | None = None,
    missed_entities: Iterable[str] = (),
    backfill: bool = False,
) -> dict[str, Any]:
    """A canonical completion event dict. ``None`` entities/fields mean "unknown" (date level).

    ``start_date``/``end_date`` (with ``game_date=None``) build a range event, which the
    router reads as a backfill (SPEC section 2): every reader runs at date scope over the
    range, with no lookback (a rolling-window reader never re-runs the later dates) and the
    ids ignored. A range (date level too) therefore raises ValueError unless
    ``backfill=True`` says that is what is meant; a change over several
    dates is one event per date (:func:`build_completion_events`,
    :meth:`~scoperouter.sdk.publisher.CompletionPublisher.publish_each_date`).

    Every event built here is a change the router routes (the publisher sends it): an
    entity list naming no id is no entity information (date level), an empty
    ``changed_fields`` is left out (unknown: relevant to every reader), SPEC sections 2 and
    3. A run that changed nothing builds no event (its trigger is closed by
    :meth:`~scoperouter.sdk.publisher.CompletionPublisher.report`).

    An id that names nobody (``None``, empty, blank, invisible characters) makes the event
    date level (no ``affected_entities``): the router routes such an id as the full date,
    and the SDK never sends it as an id (``None`` as the player ``"None"``).

    ``missed_entities``: ids of the trigger the run did not process (a partial run): the
    event says ``status: partial`` and names them, and the router re-runs them (see
    :func:`with_missed`).

    ``referenced_tables``: the tables the run read (its BigQuery jobs' ``referenced_tables``,
    see :func:`scoperouter.sdk.bigquery.referenced_tables`); the router counts the ones
    routes.yaml does not declare (drift).

    The date goes under ``date_field`` (the registry's ``date_field``): by default the
    scope's (:attr:`Scope.date_field`, named by the trigger), else ``game_date``; a
    ``date_field`` other than the scope's raises ValueError (the router would reject the
    event: ``missing_date``).
    A datetime date (a TIMESTAMP column, a ``pandas.Timestamp``) is read as its date; a value
    that is not a date raises TypeError.

    An ``event_id``, ``correlation_id``, ``source``, entity key or field name the router
    would reject (control characters, a lone surrogate: its own checks,
    :func:`scoperouter.sdk.router_checks.check_event`) raises ValueError.

    ``correlation_id`` and ``priority`` default to the trigger's (``scope``). Without
    ``event_id`` each call gets a new random id: a redelivered run announces its change
    again (an extra downstream run, never a lost one); pass ``event_id`` to make a
    republish of the same event idempotent.
    """
    if status not in _STATUSES:
        raise ValueError(f"status must be one of {', '.join(_STATUSES)}")
    date_field = date_key(date_field, scope)
    # a datetime (TIMESTAMP column, pandas Timestamp) is its date; not a date: TypeError
    game_date = None if game_date is None else as_day(game_date, "game_date")
    start_date = None if start_date is None else as_day(start_date, "start_date")
    end_date = None if end_date is None else as_day(end_date, "end_date")
    if game_date is None and (start_date is None or end_date is None):
        raise ValueError("a completion event needs game_date or start_date and end_date")
    if backfill and game_date is not None:
        raise ValueError("backfill=True needs start_date and end_date instead of game_date")
    if game_date is None and not backfill:
        # date level too: a range has no lookback, so a rolling-window reader would never
        # re-run the later dates whose windows read it
        raise ValueError(
            "a start_date/end_date event is a backfill (date scope over the range, no lookback, "
            "ids ignored): publish a change over several dates one event per date "
            "(build_completion_events / publish_each_date), or pass backfill=True"
        )
    if game_date is None:
        assert start_date is not None and end_date is not None
        if end_date < start_date:
            raise ValueError(f"end_date {end_date} is before start_date {start_date}")
        if (end_date - start_date).days + 1 > MAX_BACKFILL_DAYS:
            raise ValueError(
                f"{start_date}..{end_date} spans more than {MAX_BACKFILL_DAYS} days, which the "
                "router rejects: publish one event per shorter range"
            )
    if event_id is not None and len(event_id) > MAX_ID_CHARS:
        raise ValueError(f"event_id is longer than {MAX_ID_CHARS} characters")
    event: dict[str, Any] = {
        "event_id": event_id or f"e-{uuid.uuid4().hex}",
        "source": source,
        "status": status,
        "produced_at": (produced_at or datetime.now(UTC)).isoformat().replace("+00:00", "Z"),
    }
    if game_date is not None:
        event[date_field] = game_date.isoformat()
    else:
        assert start_date is not None and end_date is not None
        event["start_date"] = start_date.isoformat()
        event["end_date"] = end_date.isoformat()
    if affected_entities is not None:
        ids, unnamed = _ids(affected_entities)
        if not unnamed:  # else date level: the full date, as the router reads such an id
            event["affected_entities"] = ids
    if changed_fields is not None:
        if isinstance(changed_fields, str):
            raise TypeError("changed_fields must be a list of field names, not a string")
        fields = sorted(set(changed_fields))
        if "" in fields:
            raise ValueError("changed_fields contains an empty field name")
        if fields:  # [] is "unknown" (SPEC section 2), as a missing list: left out
            event["changed_fields"] = fields
    # a blank correlation id carries nothing (and the router rejects it): the trigger's
    corr = (
        correlation_id
        if correlation_id is not None and correlation_id.strip()
        else (scope.correlation_id if scope else None)
    )
    if corr is not None:
        event["correlation_id"] = corr
    prio = priority if priority is not None else (scope.priority if scope else "normal")
    event["priority"] = prio
    if record_count is not None:
        event["record_count"] = record_count
    if referenced_tables is not None:
        if isinstance(referenced_tables, str):
            raise TypeError("referenced_tables must be a list of table names, not a string")
        event["referenced_tables"] = sorted(set(referenced_tables))
    # the router's own field checks (ids without control characters, UTF-8 text...):
    # a bad argument raises here, never a dead letter after the publish
    check_event(event)
    return with_missed(event, missed_entities)


def build_completion_events(
    *, start_date: date, end_date: date, event_id: str | None = None, **kwargs: Any
) -> list[dict[str, Any]]:
    """One single-date completion event per date of ``start_date..end_date`` (ascending), each
    with the given ids and fields (:func:`build_completion_event`'s other arguments): what
    a run that changed the same entities on several dates publishes, as
    :class:`~scoperouter.sdk.change_detection.ChangeDetector` does -- the router scopes each
    date to the ids and applies its readers' lookback, which a range event (a backfill)
    does not. A given ``event_id`` gets the date appended (``e-7@2025-11-19``): one id per
    event."""
    start = as_day(start_date, "start_date")
    end = as_day(end_date, "end_date")
    if end < start:
        raise ValueError(f"end_date {end} is before start_date {start}")
    # iterables taken once, before the first date (a generator would announce the first
    # date's change only, and every later date as date level: the whole date)
    ents = kwargs.get("affected_entities")
    if ents is not None and not isinstance(ents, str) and isinstance(ents, Mapping):
        kwargs["affected_entities"] = {
            k: v if isinstance(v, str) else list(v) for k, v in ents.items()
        }
    for key in ("changed_fields", "missed_entities", "referenced_tables"):
        v = kwargs.get(key)
        if v is not None and not isinstance(v, str):
            kwargs[key] = list(v)
    return [
        build_completion_event(
            game_date=day,
            event_id=None if event_id is None else f"{event_id}@{day.isoformat()}",
            **kwargs,
        )
        for day in (start + timedelta(days=n) for n in range((end - start).days + 1))
    ]


def missed_ids(missed_entities: Iterable[str]) -> list[str]:
    """The missed ids, sorted; one that names nobody raises (the router cannot re-run it)."""
    if isinstance(missed_entities, str):
        raise TypeError("missed_entities must be a list of ids, not a string")
    names = [entity_name(i, "missed_entities entity id") for i in missed_entities]
    if any(n is None for n in names):
        raise ValueError("missed_entities contains an id that names nobody (null, blank or padded)")
    return sorted({n for n in names if n is not None})


def with_missed(event: Mapping[str, Any], missed_entities: Iterable[str]) -> dict[str, Any]:
    """``event`` of a run that missed ``missed_entities``: ``status: partial`` (a failed run
    stays failed) and the ids under ``missed_entities``; unchanged when none are missed.

    Every message of a partial run should say so: a ``success`` change event reaching the
    router after a ``partial`` report is stale when it names its attempt
    (``trigger_message_id``, which the publisher adds from the scope); one naming none closes
    nothing either until such successes outnumber the failure reports, so the re-run's own
    success may not close it at once: extra runs, at worst a dead letter (one reaching it
    before the report is reopened by the report: docs/ledger.md)."""
    missed = missed_ids(missed_entities)
    out = dict(event)
    if not missed:
        return out
    out["missed_entities"] = missed
    if out.get("status", "success") != "failed":
        out["status"] = "partial"
    return out


def apply_limits(
    event: Mapping[str, Any], limits: PublishLimits
) -> tuple[dict[str, Any], Literal["max_entities", "max_bytes"] | None]:
    """``(event, fallback_reason)``: ``event`` without ``affected_entities`` when it is over a limit."""
    out = dict(event)
    affected = out.get("affected_entities")
    if not affected:
        return out, None
    count = sum(len(v) for v in affected.values())
    reason: Literal["max_entities", "max_bytes"] | None = None
    if count > limits.max_entities:
        reason = "max_entities"
    elif len(encode_event(out)) > limits.max_bytes:
        reason = "max_bytes"
    if reason is not None:
        del out["affected_entities"]
    return out, reason


#: the keys of a canonical event that are never its date (sdk/events.py builds no other)
_NOT_THE_DATE = frozenset(
    {
        "event_id",
        "source",
        "status",
        "produced_at",
        "start_date",
        "end_date",
        "affected_entities",
        "changed_fields",
        "priority",
        "correlation_id",
        "record_count",
        "referenced_tables",
        "missed_entities",
        "trigger_message_id",
        "skip_downstream",
    }
)


def date_field_of(event: Mapping[str, Any], scope: Scope | None = None) -> str:
    """The key of ``event``'s date: the scope's ``date_field`` when given, else
    ``game_date`` when the event has it, else its one other key holding a ``YYYY-MM-DD``
    string (an event built with ``date_field=``), else ``game_date`` (a range event)."""
    if scope is not None:
        return scope.date_field
    if "game_date" in event:
        return "game_date"
    keys = [
        k
        for k, v in event.items()
        if k not in _NOT_THE_DATE and isinstance(v, str) and DATE_RE.fullmatch(v)
    ]
    return keys[0] if len(keys) == 1 else "game_date"


def event_attributes(event: Mapping[str, Any], scope: Scope | None = None) -> dict[str, str]:
    """The Pub/Sub attributes of a completion event (strings only). The date is keyed by the
    event's date field (:func:`date_field_of`: the registry's ``date_field``, as the router
    keys its triggers' attributes), its value the date, or a range's ``start_date``."""
    key = date_field_of(event, scope)
    attrs = {
        "source": str(event["source"]),
        key: str(event.get(key) or event.get("start_date") or ""),
        "event_id": str(event["event_id"]),
        "status": str(event.get("status", "success")),
        "scope": "entities" if event.get("affected_entities") else "date",
        "priority": str(event.get("priority", "normal")),
    }
    if event.get("correlation_id"):
        attrs["correlation_id"] = str(event["correlation_id"])
    if scope is not None and scope.trigger_id:
        attrs["trigger_id"] = scope.trigger_id
    return attrs


def run_id(scope: Scope) -> str:
    """What a run's change-event ids derive from: the trigger id and, when known, the message
    id the trigger came in (a re-dispatch is a new message: new ids; a redelivery of the same
    message: the same ids). A trigger parsed from a dict (no message id) has its run's nonce
    instead (:attr:`Scope.run_nonce`, one per :func:`parse_trigger`): each run's events are
    new events -- else a re-run republishing the same change repeats the earlier run's ids,
    the router drops them as a redelivery and never hears the re-run (docs/ledger.md). A
    scope built without either: the trigger id alone."""
    tid = scope.trigger_id or ""
    if scope.message_id:
        return f"{tid}@{scope.message_id}"
    return f"{tid}#{scope.run_nonce}" if scope.run_nonce else tid

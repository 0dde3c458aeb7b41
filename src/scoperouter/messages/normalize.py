"""Normalise every event shape the pipeline publishes into one canonical :class:`Event`.

Accepted shapes (SPEC section 3), recorded in ``Event.shape``:

* ``canonical`` -- ``source``, ``game_date``, ``affected_entities``, ``changed_fields``...
* ``raw_data_loaded`` -- Phase 2->3 legacy (``source_table``, ``success``, ``execution_id``).
* ``analytics_complete`` -- Phase 3->4 legacy (``analytics_table``).
* ``unified`` -- the unified envelope (``processor_name``, ``output_dataset``/``output_table``,
  ``status``, ``entities_changed``, ``metadata.changed_fields``).
* ``orchestrator_trigger`` -- an orchestrator's trigger that names the completed table
  (``triggered_by`` + ``source_table``); routed like a completion of that table. A trigger
  that names no completed source (or an auto-retry request) is rejected
  (``not_a_completion``, see :mod:`scoperouter.messages.triggers`).

Rules (where a reading could differ, the choice is written here):

* Source: the first of ``source``, ``source_table``, ``analytics_table``,
  ``output_dataset + '.' + output_table`` that the registry names (a bare table name is
  resolved against every source the registry names); when none is known, the first one
  present, kept as given and accepted (every decision is then ``unknown_source``). An
  ``output_table`` that already carries its dataset (``nba_raw.nbac_injury_report`` next
  to ``output_dataset: nba_raw``) is never prefixed again; ``output_table`` alone is a bare
  name. An ambiguous bare name is rejected (``ambiguous_source``).
* ``affected_entities`` and top-level ``entities_changed`` (also ``metadata.entities_changed``)
  are united; keys are kept as written (the planner resolves ``players`` -> ``player``);
  ids are deduplicated and sorted. ``entities_changed`` may also be a flat list of ids: its
  type is the registry's entity type of the source (``entity_type_of_source``: the
  ``sources:`` declaration, else the granularity of the processor that publishes it); when
  that is unknown the ids are kept under the key :data:`UNTYPED`, which no entity type can
  be, so every entity-level consumer runs the full date (``unmapped_entity_type``), never a
  rejection. An empty flat list is no entity information. ``changed_fields`` and ``metadata.changed_fields`` are
  united, deduplicated and sorted; empty means "unknown" (relevant).
* ``event_id``: ``event_id``, else ``execution_id``, else the Pub/Sub message id, else
  ``h-`` + a hash of the event's canonical JSON (deterministic: a redelivered copy gets
  the same id).
* Status: ``status`` when present (``success|partial|no_data|failed``, anything else is
  ``invalid_status``); else legacy ``success`` (true -> success, false -> failed, whatever
  ``record_count`` says); else success. ``record_count`` is informational and never
  rejected (kept when it is a usable non-negative count). An empty ``event_id`` falls back.
* Dates are ``YYYY-MM-DD``. ``game_date`` (the registry's ``date_field``), or ``start_date`` + ``end_date`` (a backfill; also
  read from ``metadata``). A backfill range longer than :data:`MAX_BACKFILL_DAYS` (400:
  a season and then some) is rejected (``invalid_date_range``, 400 / dead letter: split
  it into several events) so one event cannot fan out into thousands of windows and
  triggers in one transaction (issue 18: 3,660 days fired 14,640 triggers at once).
* Work per event is bounded: an event naming more than :data:`MAX_EVENT_ENTITIES`
  distinct entity ids in all is routed as a full-date event (as if it named none) -- what
  any processor's ``max_entities`` fallback would make of it anyway, without planning,
  journaling and windowing a 100k-id set on the single state thread (issue 18: 1 MB
  events with 100k ids stalled small events from 47 to 590 ms).
* ``produced_at``, else ``timestamp``: ISO 8601 (a naive time is UTC) or epoch seconds.
* ``priority``: ``normal`` (default) or ``critical``; anything else is rejected.
* ``skip_downstream``: a boolean (top level, else ``metadata``).
* ``referenced_tables`` (top level, else ``metadata``): the tables the run read, for drift
  (``dataset.table`` strings or BigQuery table references); informational, never rejected.

Every rejection is an :class:`~scoperouter.errors.EventError` with a reason code and a
one-line detail naming the offending field.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime
from typing import Any, cast

from pydantic import ValidationError

from scoperouter.errors import EventError, EventRejectReason
from scoperouter.lineage.drift import parse_referenced
from scoperouter.messages.models import Event, Priority, Status
from scoperouter.messages.triggers import is_routable_trigger, trigger_problem
from scoperouter.processor_registry.compiled import CompiledRegistry

MAX_BACKFILL_DAYS = 400
MAX_EVENT_ENTITIES = 2000
_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_STATUSES: frozenset[str] = frozenset({"success", "partial", "no_data", "failed"})
_PRIORITIES: frozenset[str] = frozenset({"normal", "critical"})
_MAX_DETAIL = 80
UNTYPED = "(untyped)"
"""The key of a flat ``entities_changed`` list whose entity type the registry cannot tell."""


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 3] + "..."


class _Ctx:
    """Carries the event id (once known) into every error raised, and counts entity ids
    (past :data:`MAX_EVENT_ENTITIES` the rest is not even read: bounded work)."""

    __slots__ = ("event_id", "ids")

    def __init__(self) -> None:
        self.event_id: str | None = None
        self.ids = 0

    def over_cap(self) -> bool:
        """Count one more distinct id; True past the cap (stop reading ids)."""
        self.ids += 1
        return self.ids > MAX_EVENT_ENTITIES

    def fail(self, reason: EventRejectReason, detail: str) -> EventError:
        return EventError(reason, detail, self.event_id)


def detect_shape(raw: Mapping[str, Any]) -> str:
    """Which producer shape a decoded event has (see module docstring)."""
    et = raw.get("event_type")
    if et == "raw_data_loaded":
        return "raw_data_loaded"
    if et == "analytics_complete":
        return "analytics_complete"
    if is_routable_trigger(raw):
        return "orchestrator_trigger"
    if "source" not in raw and (
        "processor_name" in raw or "output_table" in raw or "entities_changed" in raw
    ):
        return "unified"
    return "canonical"


def _text(v: str, key: str, ctx: _Ctx) -> str:
    """``v`` when UTF-8 can encode it; a lone surrogate (a JSON ``\\udc00`` escape) cannot
    be stored, serialised or forwarded, so it is rejected here (``invalid_field``)."""
    if not v.isascii():
        try:
            v.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ctx.fail(
                "invalid_field",
                f"{key} is not valid UTF-8 text (lone surrogate at index {exc.start})",
            ) from None
    return v


def _opt_str(raw: Mapping[str, Any], key: str, ctx: _Ctx) -> str | None:
    v = raw.get(key)
    if v is None:
        return None
    if not isinstance(v, str) or not v.strip():
        raise ctx.fail("invalid_field", f"{key} must be a non-empty string, got {_short(v)}")
    return _text(v.strip(), key, ctx)


def _count_or_none(v: Any) -> int | None:
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, int):
        return v if v >= 0 else None
    if isinstance(v, float) and v.is_integer() and v >= 0:
        return int(v)
    if isinstance(v, str) and v.strip().isdigit():
        return int(v.strip())
    return None


MAX_ID_CHARS = 512


def _id_text(v: str, key: str, ctx: _Ctx) -> str:
    """An id exactly as sent (never stripped: ``" e1"`` and ``"e1"`` are two events), at
    most :data:`MAX_ID_CHARS` characters, without control characters (NUL included)."""
    if len(v) > MAX_ID_CHARS:
        raise ctx.fail("invalid_field", f"{key} is longer than {MAX_ID_CHARS} characters")
    if not v.isprintable() and any(ord(c) < 32 or 127 <= ord(c) < 160 for c in v):
        raise ctx.fail("invalid_field", f"{key} contains control characters")
    return _text(v, key, ctx)


def _event_id(raw: Mapping[str, Any], message_id: str | None, ctx: _Ctx) -> str:
    # an empty or missing id falls back to the next source; a number is used as text
    for key in ("event_id", "execution_id"):
        v = raw.get(key)
        if isinstance(v, int | float) and not isinstance(v, bool):
            return str(v)
        if isinstance(v, str) and v.strip():
            return _id_text(v, key, ctx)
        if v is not None and not isinstance(v, str):
            raise ctx.fail("invalid_field", f"{key} must be a string, got {_short(v)}")
    if message_id:
        return message_id
    canonical = json.dumps(
        raw, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    )
    # surrogatepass: a lone surrogate in a field nobody reads must not break the id
    return "h-" + hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()[:24]


def _source_names(raw: Mapping[str, Any], ctx: _Ctx) -> Iterator[str]:
    """The candidate source names in SPEC order, each checked only when it is reached."""
    for key in ("source", "source_table", "analytics_table"):
        name = _opt_str(raw, key, ctx)
        if name is not None:
            yield name
    table = _opt_str(raw, "output_table", ctx)
    if table is not None:
        dataset = _opt_str(raw, "output_dataset", ctx)
        # production's raw processors already qualify their table_name: never prefix twice
        yield f"{dataset}.{table}" if dataset is not None and "." not in table else table


def _source(raw: Mapping[str, Any], registry: CompiledRegistry, ctx: _Ctx) -> str:
    first: str | None = None
    for name in _source_names(raw, ctx):
        try:
            resolved = registry.resolve_source(name)
        except ValueError as exc:
            raise ctx.fail("ambiguous_source", str(exc)) from None
        if resolved is not None:
            return resolved
        first = first or name
    if first is not None:
        return first
    if raw.get("output_dataset") is not None:
        raise ctx.fail("missing_source", "output_dataset without output_table")
    raise ctx.fail(
        "missing_source",
        "no source: expected source, source_table, analytics_table or output_dataset+output_table",
    )


def _parse_date(value: object, key: str, ctx: _Ctx) -> date | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ctx.fail("invalid_date", f"{key} must be a YYYY-MM-DD string, got {_short(value)}")
    text = value.strip()
    if not text:
        return None
    if not _DATE_RE.fullmatch(text):
        raise ctx.fail("invalid_date", f"{key} {_short(value)} is not YYYY-MM-DD")
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ctx.fail("invalid_date", f"{key} {_short(value)} is not a real date") from None


def _parse_datetime(value: object, key: str, ctx: _Ctx) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise ctx.fail(
            "invalid_date", f"{key} must be an ISO 8601 time or epoch seconds, got {value!r}"
        )
    if isinstance(value, int | float):
        try:
            return datetime.fromtimestamp(float(value), tz=UTC)
        except (OverflowError, OSError, ValueError):
            raise ctx.fail("invalid_date", f"{key} {_short(value)} is out of range") from None
    if not isinstance(value, str):
        raise ctx.fail("invalid_date", f"{key} must be an ISO 8601 time, got {_short(value)}")
    try:
        dt = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ctx.fail("invalid_date", f"{key} {_short(value)} is not an ISO 8601 time") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt


def _entities(
    value: object, key: str, ctx: _Ctx, into: dict[str, set[str]], flat: set[str] | None = None
) -> bool:
    """Merge one entity mapping into ``into`` (a flat list of ids into ``flat``, when given).
    False when the field is absent/null or an empty flat list (no entity information)."""
    if value is None:
        return False
    if flat is not None and isinstance(value, list | tuple):
        for i in value:
            if not isinstance(i, str) or not i:
                raise ctx.fail(
                    "invalid_field", f"{key} must contain non-empty strings, got {_short(i)}"
                )
            if i in flat:
                continue
            if ctx.over_cap():
                break
            flat.add(_text(i, key, ctx))
        return False
    if not isinstance(value, Mapping):
        raise ctx.fail(
            "invalid_field",
            f"{key} must be a mapping of entity type to a list of ids, got {_short(value)}",
        )
    for etype, ids in value.items():
        if not isinstance(etype, str) or not etype:
            raise ctx.fail("invalid_field", f"{key} has an invalid entity type key {_short(etype)}")
        _text(etype, f"{key} entity type", ctx)
        if not isinstance(ids, list | tuple):
            raise ctx.fail(
                "invalid_field", f"{key}.{etype} must be a list of strings, got {_short(ids)}"
            )
        bucket = into.setdefault(etype, set())
        for i in ids:
            if not isinstance(i, str) or not i:
                raise ctx.fail(
                    "invalid_field",
                    f"{key}.{etype} must contain non-empty strings, got {_short(i)}",
                )
            if i in bucket:
                continue
            if ctx.over_cap():
                break
            bucket.add(_text(i, f"{key}.{etype}", ctx))
    return True


def _fields(value: object, key: str, ctx: _Ctx, into: set[str]) -> bool:
    if value is None:
        return False
    if not isinstance(value, list | tuple):
        raise ctx.fail("invalid_field", f"{key} must be a list of strings, got {_short(value)}")
    for f in value:
        if not isinstance(f, str) or not f:
            raise ctx.fail(
                "invalid_field", f"{key} must contain non-empty strings, got {_short(f)}"
            )
        into.add(_text(f, key, ctx))
    return True


def _status(raw: Mapping[str, Any], ctx: _Ctx) -> Status:
    if "status" in raw and raw["status"] is not None:
        st = raw["status"]
        if not isinstance(st, str) or st.strip().lower() not in _STATUSES:
            raise ctx.fail(
                "invalid_status",
                f"status {_short(st)} is not one of success, partial, no_data, failed",
            )
        return cast(Status, st.strip().lower())
    if "success" in raw and raw["success"] is not None:
        ok = raw["success"]
        if not isinstance(ok, bool):
            raise ctx.fail("invalid_status", f"success must be true or false, got {_short(ok)}")
        return "success" if ok else "failed"
    return "success"


def _priority(raw: Mapping[str, Any], ctx: _Ctx) -> Priority:
    p = raw.get("priority")
    if p is None:
        return "normal"
    if not isinstance(p, str) or p.strip().lower() not in _PRIORITIES:
        raise ctx.fail("invalid_field", f"priority {_short(p)} is not normal or critical")
    return cast(Priority, p.strip().lower())


def _bool(raw: Mapping[str, Any], meta: Mapping[str, Any], key: str, ctx: _Ctx) -> bool:
    v = raw.get(key, meta.get(key))
    if v is None:
        return False
    if not isinstance(v, bool):
        raise ctx.fail("invalid_field", f"{key} must be true or false, got {_short(v)}")
    return v


def normalize_event(
    raw: object, registry: CompiledRegistry, *, message_id: str | None = None
) -> Event:
    """The canonical :class:`Event` for any accepted shape. Raises EventError."""
    ctx = _Ctx()
    if not isinstance(raw, Mapping):
        raise ctx.fail("not_an_object", f"an event must be a JSON object, got {type(raw).__name__}")
    ctx.event_id = _event_id(raw, message_id, ctx)
    problem = trigger_problem(raw)
    if problem is not None:
        raise ctx.fail("not_a_completion", problem)
    shape = detect_shape(raw)

    meta_raw = raw.get("metadata")
    if meta_raw is not None and not isinstance(meta_raw, Mapping):
        raise ctx.fail("invalid_field", f"metadata must be an object, got {_short(meta_raw)}")
    meta: Mapping[str, Any] = meta_raw or {}

    source = _source(raw, registry, ctx)
    status = _status(raw, ctx)

    date_key = registry.date_field  # the registry's date_field (default game_date)
    game_date = _parse_date(raw.get(date_key), date_key, ctx)
    start = _parse_date(raw.get("start_date", meta.get("start_date")), "start_date", ctx)
    end = _parse_date(raw.get("end_date", meta.get("end_date")), "end_date", ctx)
    if game_date is None:
        if start is None and end is None:
            raise ctx.fail(
                "missing_date", f"no {date_key} (or start_date and end_date for a backfill)"
            )
        if start is None or end is None:
            missing = "start_date" if start is None else "end_date"
            raise ctx.fail(
                "missing_date", f"a backfill needs both start_date and end_date ({missing} missing)"
            )
    if start is not None and end is not None:
        if end < start:
            raise ctx.fail("invalid_date_range", f"end_date {end} is before start_date {start}")
        if (end - start).days + 1 > MAX_BACKFILL_DAYS:
            raise ctx.fail(
                "invalid_date_range",
                f"backfill {start}..{end} spans more than {MAX_BACKFILL_DAYS} days: "
                "split it into several events",
            )

    ents: dict[str, set[str]] = {}
    flat: set[str] = set()
    has_ents = _entities(raw.get("affected_entities"), "affected_entities", ctx, ents)
    has_ents = (
        _entities(raw.get("entities_changed"), "entities_changed", ctx, ents, flat) or has_ents
    )
    has_ents = (
        _entities(meta.get("entities_changed"), "metadata.entities_changed", ctx, ents, flat)
        or has_ents
    )
    if flat:
        ents.setdefault(registry.entity_type_of_source(source) or UNTYPED, set()).update(flat)
        has_ents = True
    if ctx.ids > MAX_EVENT_ENTITIES:
        ents, has_ents = {}, False  # full date: bounded work whatever the event names
    fields: set[str] = set()
    has_fields = _fields(raw.get("changed_fields"), "changed_fields", ctx, fields)
    has_fields = (
        _fields(meta.get("changed_fields"), "metadata.changed_fields", ctx, fields) or has_fields
    )

    # informational only: never a reason to reject (a legacy success:true routes whatever
    # its record_count); kept when it is a usable count, else dropped
    record_count = _count_or_none(raw.get("record_count"))

    produced_at = _parse_datetime(raw.get("produced_at"), "produced_at", ctx)
    if produced_at is None:
        produced_at = _parse_datetime(raw.get("timestamp"), "timestamp", ctx)

    try:
        return Event(
            event_id=ctx.event_id,
            source=source,
            game_date=game_date,
            start_date=start,
            end_date=end,
            status=status,
            affected_entities=(
                {k: tuple(sorted(v)) for k, v in sorted(ents.items())} if has_ents else None
            ),
            changed_fields=tuple(sorted(fields)) if has_fields else None,
            priority=_priority(raw, ctx),
            correlation_id=_opt_str(raw, "correlation_id", ctx),
            produced_at=produced_at,
            skip_downstream=_bool(raw, meta, "skip_downstream", ctx),
            record_count=record_count,
            # informational (drift), never a rejection: top level, else metadata
            referenced_tables=parse_referenced(
                raw.get("referenced_tables", meta.get("referenced_tables"))
            ),
            shape=shape,
        )
    except ValidationError as exc:  # pragma: no cover - every field is checked above
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise ctx.fail("invalid_field", f"{loc}: {first['msg']}") from None


def parse_event_bytes(
    data: bytes,
    registry: CompiledRegistry,
    *,
    message_id: str | None = None,
    max_bytes: int | None = None,
) -> Event:
    """Decode a JSON event (UTF-8) and normalise it. Raises EventError."""
    if max_bytes is not None and len(data) > max_bytes:
        raise EventError("too_large", f"event is {len(data)} bytes (limit {max_bytes})", message_id)
    try:
        raw = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise EventError(
            "not_json", f"not UTF-8: {exc.reason} at byte {exc.start}", message_id
        ) from None
    except json.JSONDecodeError as exc:
        raise EventError(
            "not_json",
            f"invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
            message_id,
        ) from None
    except ValueError as exc:  # e.g. an integer beyond sys.get_int_max_str_digits()
        raise EventError("not_json", f"invalid JSON: {exc}"[:200], message_id) from None
    except RecursionError:
        raise EventError("not_json", "invalid JSON: nested too deeply", message_id) from None
    return normalize_event(raw, registry, message_id=message_id)


def event_to_json(event: Event, date_field: str = "game_date") -> dict[str, object]:
    """The normalised event as printed by ``explain --json`` (dates ISO, tuples as lists,
    the date under the registry's ``date_field``)."""
    out: dict[str, object] = event.model_dump(mode="json")
    if date_field != "game_date":
        out = {(date_field if k == "game_date" else k): v for k, v in out.items()}
    return out

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
  ``sources:`` declaration, else the granularity of the processors that publish it, when
  they all have the same one); when that is unknown the ids are kept under the key
  :data:`UNTYPED`, which no entity type can be, so every entity-level consumer runs the
  full date (``unmapped_entity_type``), never a rejection. An empty flat list is no entity
  information. An id of another JSON type than string is rejected (``invalid_field``); an
  id that names nobody -- ``null`` (production's change detector selects a nullable
  column), blank, or with a character that is not
  printable (NUL, zero-width, no-break space...) -- makes the event name no entities (full
  date): the readable ids alone would lose that entity's update, and a NUL cannot be
  stored. An orchestrator's own trigger (``trigger_source: orchestrator`` and no
  ``processor_name``, absent or ``null``) names no entities either: its ids are the
  changes of several upstreams united (the same list on every table's message), so they
  cannot scope this source's consumers -- its entity fields are not even read (never a
  rejection, whatever they hold). ``changed_fields`` and ``metadata.changed_fields`` are
  united, deduplicated and sorted, each name stripped of surrounding whitespace and
  lower-cased (:mod:`scoperouter.field_names`: column names are case-insensitive, and the
  registry's ``fields`` are folded alike); empty means "unknown" (relevant), and one of
  them empty, or a name blank after stripping (``""``, ``" "``), makes the event's changed
  fields unknown (``()``) whatever the other lists -- never a rejection, never a skip. A
  name of another JSON type than string is rejected (``invalid_field``).
* ``event_id``: ``event_id``, else ``execution_id`` + ``@`` + a digest of the body
  (:func:`~scoperouter.messages.event_fields.execution_key`: production's execution id
  names a run, reused for every date it processes), else the Pub/Sub message id, else
  ``h-`` + a hash of the event's canonical JSON (deterministic: a redelivered copy gets
  the same id; the ingest adds the acceptance time, :mod:`scoperouter.messages.body_ids`). A numeric id is its text; a NaN or infinite one is ``invalid_field``, as is
  one longer than a string id may be (:data:`~scoperouter.messages.event_fields.MAX_ID_CHARS`).
* Bytes (:func:`loads_event_json`, every path): UTF-8, a leading byte order mark ignored.
* Status: ``status`` when present (``success|partial|no_data|failed``, anything else is
  ``invalid_status``); else legacy ``success`` (true -> success, false -> failed, whatever
  ``record_count`` says); else success. ``record_count`` is informational and never
  rejected (kept when it is a usable count: a whole number from 0 to 2**63-1, what a 64-bit
  log column holds, sent as a number or decimal text; else None). An empty ``event_id``
  falls back.
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
* ``produced_at``, else ``timestamp``: ISO 8601 / RFC 3339 (``t`` and ``z`` in either case; a
  naive time is UTC) or epoch seconds. The time only informs (the ledger's check that a
  completion predates its trigger's last firing, replay's clock; no routing decision reads
  it), so one that does not read (epoch milliseconds, ``"2025-11-19 18:05:00 UTC"``, a
  boolean) is absent -- the next key is read -- never a rejection: a WARNING names the
  event, the field and its value, and the field's name is appended to ``unread`` (the
  daemon counts it: ``scoperouter_event_fields_ignored_total{field}``).
* ``priority``: ``normal`` (default) or ``critical``; anything else is rejected.
* ``correlation_id`` (carried into triggers, never routes): stripped text; blank (``""``,
  whitespace only) is absent; a number is its text (NaN or infinite: absent). Rejected
  (``invalid_field``) only when no store could keep it: control characters, a lone
  surrogate, another JSON type.
* ``skip_downstream``: a boolean (top level, else ``metadata``). Wherever a field is read
  "top level, else ``metadata``", a top-level ``null`` counts as absent (SPEC section 3:
  top-level nulls are dropped), so it never hides the value ``metadata`` carries.
* ``referenced_tables`` (top level, else ``metadata``): the tables the run read, for drift
  (``dataset.table`` strings or BigQuery table references); informational, never rejected.

Every rejection is an :class:`~scoperouter.errors.EventError` with a reason code and a
one-line detail naming the offending field.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from scoperouter.errors import EventError
from scoperouter.lineage.drift import parse_referenced
from scoperouter.messages.event_fields import (
    MAX_EVENT_ENTITIES,
    Ctx,
    count_or_none,
    event_id_of,
    flag,
    merge_entities,
    merge_fields,
    opt_id,
    parse_date,
    priority_of,
    produced_time_of,
    short,
    source_of,
    status_of,
    top_or_meta,
)
from scoperouter.messages.fast_event import fast_event
from scoperouter.messages.models import Event
from scoperouter.messages.triggers import is_routable_trigger, trigger_problem
from scoperouter.processor_registry.compiled import CompiledRegistry

__all__ = [
    "MAX_BACKFILL_DAYS",
    "MAX_EVENT_ENTITIES",
    "UNTYPED",
    "detect_shape",
    "event_to_json",
    "loads_event_json",
    "normalize_event",
    "parse_event_bytes",
]

logger = logging.getLogger("scoperouter.messages")

MAX_BACKFILL_DAYS = 400
UNTYPED = "(untyped)"
"""The key of a flat ``entities_changed`` list whose entity type the registry cannot tell."""


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


def normalize_event(
    raw: object,
    registry: CompiledRegistry,
    *,
    message_id: str | None = None,
    unread: list[str] | None = None,
) -> Event:
    """The canonical :class:`Event` for any accepted shape. Raises EventError. The name of
    each field it read as absent because it does not read (``produced_at``, ``timestamp``)
    is appended to ``unread`` (when given) and logged (WARNING), for an accepted event."""
    ctx = Ctx()
    if not isinstance(raw, Mapping):
        raise ctx.fail("not_an_object", f"an event must be a JSON object, got {type(raw).__name__}")
    ctx.event_id = event_id_of(raw, message_id, ctx)
    problem = trigger_problem(raw)
    if problem is not None:
        raise ctx.fail("not_a_completion", problem)
    shape = detect_shape(raw)

    meta_raw = raw.get("metadata")
    if meta_raw is not None and not isinstance(meta_raw, Mapping):
        raise ctx.fail("invalid_field", f"metadata must be an object, got {short(meta_raw)}")
    meta: Mapping[str, Any] = meta_raw or {}

    source = source_of(raw, registry, ctx)
    status = status_of(raw, ctx)

    date_key = registry.date_field  # the registry's date_field (default game_date)
    game_date = parse_date(raw.get(date_key), date_key, ctx)
    start = parse_date(top_or_meta(raw, meta, "start_date"), "start_date", ctx)
    end = parse_date(top_or_meta(raw, meta, "end_date"), "end_date", ctx)
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
    has_ents = False
    # an orchestrator's own trigger (no processor names itself in it) carries its
    # upstreams' changes united, the same ids on every table's message (production:
    # phase3_to_phase4/main.py:1913-1976): not this source's own, they cannot scope it, so
    # they are not even read (an id of another type there rejected a routable event);
    # a "processor_name": null names no processor (SPEC 3: top-level nulls are dropped)
    relayed = raw.get("trigger_source") == "orchestrator" and raw.get("processor_name") is None
    if not relayed:
        has_ents = merge_entities(raw.get("affected_entities"), "affected_entities", ctx, ents)
        has_ents = (
            merge_entities(raw.get("entities_changed"), "entities_changed", ctx, ents, flat)
            or has_ents
        )
        has_ents = (
            merge_entities(
                meta.get("entities_changed"), "metadata.entities_changed", ctx, ents, flat
            )
            or has_ents
        )
    if flat:
        ents.setdefault(registry.entity_type_of_source(source) or UNTYPED, set()).update(flat)
        has_ents = True
    if ctx.ids > MAX_EVENT_ENTITIES or ctx.unnamed:
        # full date: bounded work whatever the event names; an id nobody can name hides a
        # changed entity (routing the readable ids alone would lose its update)
        ents, has_ents = {}, False
    fields: set[str] = set()
    top = merge_fields(raw.get("changed_fields"), "changed_fields", ctx, fields)
    nested = merge_fields(meta.get("changed_fields"), "metadata.changed_fields", ctx, fields)
    has_fields = top is not False or nested is not False
    if top is None or nested is None:
        fields.clear()  # an empty list says "unknown": the other list cannot narrow it

    # informational only: never a reason to reject (a legacy success:true routes whatever
    # its record_count); kept when it is a usable count, else dropped
    record_count = count_or_none(raw.get("record_count"))

    # informational only too (see the module docstring): a time that does not read is absent
    ignored: list[str] = []
    produced_at = produced_time_of(raw, ignored)

    try:
        event = Event(
            event_id=ctx.event_id,
            source=source,
            game_date=game_date,
            start_date=start,
            end_date=end,
            status=status,
            affected_entities=(
                {k: tuple(sorted(v)) for k, v in sorted(ents.items())} if has_ents else None
            ),
            # folded, deduplicated and sorted by Event (field_names.changed_field_names)
            changed_fields=tuple(fields) if has_fields else None,
            priority=priority_of(raw, ctx),
            correlation_id=opt_id(raw, "correlation_id", ctx),
            produced_at=produced_at,
            skip_downstream=flag(raw, meta, "skip_downstream", ctx),
            record_count=record_count,
            # informational (drift), never a rejection: top level, else metadata
            referenced_tables=parse_referenced(top_or_meta(raw, meta, "referenced_tables")),
            shape=shape,
        )
    except ValidationError as exc:  # pragma: no cover - every field is checked above
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise ctx.fail("invalid_field", f"{loc}: {first['msg']}") from None
    for key in ignored:
        logger.warning(
            "event %s: %s %s is not a time the router reads (ISO 8601 / RFC 3339 or epoch "
            "seconds): read as absent, the event routes",
            event.event_id,
            key,
            short(raw[key]),
        )
    if unread is not None:
        unread.extend(ignored)
    return event


def parse_event_bytes(
    data: bytes,
    registry: CompiledRegistry,
    *,
    message_id: str | None = None,
    max_bytes: int | None = None,
    unread: list[str] | None = None,
) -> Event:
    """Decode a JSON event (UTF-8) and normalise it (``unread``: :func:`normalize_event`'s).
    Raises EventError."""
    if max_bytes is not None and len(data) > max_bytes:
        raise EventError("too_large", f"event is {len(data)} bytes (limit {max_bytes})", message_id)
    fast = fast_event(data, registry)  # the common canonical event, checked from its bytes
    if fast is not None:
        return fast
    return normalize_event(
        loads_event_json(data, message_id), registry, message_id=message_id, unread=unread
    )


_BOM = b"\xef\xbb\xbf"


def loads_event_json(data: bytes, message_id: str | None = None) -> object:
    """``data`` as JSON, read the one way every path reads an event (push, pull, ``explain``,
    ``replay``, a plain ``POST /events`` body): UTF-8, a leading byte order mark ignored
    (RFC 8259 8.1 allows it; Windows tools write one), any other encoding rejected -- so one
    body is never routed on one path and dead-lettered on another. Raises EventError
    ``not_json``."""
    try:
        text = data.removeprefix(_BOM).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EventError(
            "not_json", f"not UTF-8: {exc.reason} at byte {exc.start}", message_id
        ) from None
    try:
        return json.loads(text)
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


def event_to_json(event: Event, date_field: str = "game_date") -> dict[str, object]:
    """The normalised event as printed by ``explain --json`` (dates ISO, tuples as lists,
    the date under the registry's ``date_field``)."""
    out: dict[str, object] = event.model_dump(mode="json")
    if date_field != "game_date":
        out = {(date_field if k == "game_date" else k): v for k, v in out.items()}
    return out

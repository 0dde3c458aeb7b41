"""Row builders shared by every writer (SQLite, BigQuery): one place defines the columns.

A row is a tuple of JSON-able values in its table's column order (:data:`LOG_COLUMNS`,
:data:`EVENT_COLUMNS`, :data:`COMPLETION_COLUMNS`, :data:`TRIGGER_REPORT_COLUMNS`; dates and
times as ISO strings), its id
lists as the writer's ``ids`` encoder makes them (a list by default; JSON text for SQLite),
so a writer stores it without converting it again (BigQuery zips it into a dict).

Invariant: only rows something reads are written. A skip (``not_an_input``,
``unknown_source``, ``irrelevant_fields``...) gets no row of its own: the event row counts
them per reason (``skips``, JSON ``{"reason": n}``). What reads skips -- ``report
--what-if``'s verification, the unknown-sources section, the days a processor was seen --
needs only those counts; replay re-derives which processor skipped from the registry.

The values in a row (ids, times, id lists, skip counts, the event JSON) are encoded by
:mod:`.row_values`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from typing import Any

from scoperouter.execution_log.entity_counts import UniverseCache, mapped_count
from scoperouter.execution_log.memos import day_iso, remember_skip
from scoperouter.execution_log.memos import skip_reasons as _skip_memo
from scoperouter.execution_log.row_values import (
    _h,
    _sha20,
    compact_event_json,
    dispatch_key,
    iso,
    iso_epoch,
    skips_json,
    utc,
)
from scoperouter.messages.models import Event, Trigger
from scoperouter.processor_registry.compiled import DATE_GRANULARITY, CompiledRegistry
from scoperouter.processor_registry.relations import RelationStore
from scoperouter.router.decisions import Decision

Row = dict[str, Any]
Values = tuple[Any, ...]
"""One row: its values in its table's column order."""
IdList = Callable[[Sequence[str]], Any]
"""How a writer stores a list of ids (``list``; SQLite: JSON text)."""

# pipeline_execution_log: SPEC section 5 columns first, then ours (docs/report.md).
LOG_COLUMNS: tuple[str, ...] = (
    "decision_id",
    "event_id",
    "correlation_id",
    "processor",
    "phase",
    "game_date",
    "action",
    "scope",
    "entity_type",
    "entities_requested",
    "entities_universe",
    "reason",
    "trigger_id",
    "decided_at",
    "dispatched_at",
    "dispatch_status",
    "attempts",
    "latency_ms",
    # additions
    "kind",  # decision | dispatch
    "granularity",
    "entity_ids",  # list (entity scope only)
    "entities_mapped",  # ids the event reached after mapping (also when the scope is date)
    "priority",
    "caused_by",  # list of event ids (dispatch rows)
    "error",
)
EVENT_COLUMNS: tuple[str, ...] = (
    "event_id",
    "correlation_id",
    "source",
    "game_date",
    "decided_at",
    "as_of",
    "event_json",
    "skips",  # JSON {"reason": count} of the aggregated skips (no rows of their own)
)
COMPLETION_COLUMNS: tuple[str, ...] = (
    "completion_id",
    "processor",
    "game_date",
    "trigger_id",
    "records_processed",
    "entities_changed",
    "duration_s",
    "reported_at",
)
TRIGGER_REPORT_COLUMNS: tuple[str, ...] = ("trigger_id", "status", "event_id", "reported_at")
"""The SQLite log's trigger reports (:func:`trigger_report_row`)."""
LIST_COLUMNS = frozenset({"entity_ids", "caused_by"})
DISPATCH_ONLY_COLUMNS: tuple[str, ...] = (
    "dispatched_at",
    "dispatch_status",
    "attempts",
    "latency_ms",
    "caused_by",
    "error",
)
DECISION_COLUMNS: tuple[str, ...] = tuple(c for c in LOG_COLUMNS if c not in DISPATCH_ONLY_COLUMNS)
"""A decision row's columns (:func:`decision_rows` with ``narrow``): the dispatch-only ones
are always null in it."""


def decision_rows(
    event: Event,
    decisions: Sequence[Decision],
    decided_at: datetime,
    *,
    registry: CompiledRegistry,
    relations: RelationStore | None,
    universe_cache: UniverseCache | None = None,
    decided_at_iso: str | None = None,
    ids: IdList = list,
    skips: dict[str, int] | None = None,
    skip_reasons: list[str] | None = None,
    narrow: bool = False,
) -> list[Values]:
    """One row per run decision per date, in :data:`LOG_COLUMNS` order (skips have none:
    with ``skips`` given they are counted into it, as :func:`skip_counts` does; with
    ``skip_reasons`` their reasons are appended to it, in order). ``narrow``: in
    :data:`DECISION_COLUMNS` order instead (without the dispatch columns, always null here).

    ``universe_cache`` memoises ``relations.universe`` across calls (per relations object)."""
    rows: list[Values] = []
    e = event.__dict__  # a pydantic model's fields: dict reads, not generic attribute reads
    event_id, corr, priority = e["event_id"], e["correlation_id"], e["priority"]
    event_date = e["game_date"] or e["start_date"]
    dec_at = decided_at_iso or iso(decided_at)
    processors = registry.processors
    known = _skip_memo.get  # the planner's shared skip decisions (.memos)
    for d in decisions:
        hit = known(id(d))  # a skip seen before (the planner shares them): no attribute read
        if hit is not None and hit[0] is d:
            action, reason = "skip", hit[1]
        else:
            action = d.action
            if action == "skip":
                reason = d.reason
                remember_skip(d, reason)
        if action == "skip":  # counted on the event row
            if skip_reasons is not None:
                skip_reasons.append(reason)
            if skips is not None:
                skips[reason] = skips.get(reason, 0) + 1
            continue
        f = d.__dict__  # (as ``e`` above)
        name, scope, reason = f["processor"], f["scope"], f["reason"]
        d_ids, d_dates = f["entity_ids"], f["dates"]
        proc = processors.get(name)
        granularity = proc.granularity if proc is not None else None
        phase = proc.phase if proc is not None else None
        etype = granularity if granularity not in (None, DATE_GRANULARITY) else None
        entity_type = (f["entity_type"] or etype) if action == "run" else None
        entity_ids = ids(d_ids) if d_ids is not None else None
        dated = bool(d_dates)
        dates: Sequence[date | None] = d_dates if dated else (event_date,)
        for on in dates:
            if relations is None or not etype or on is None:
                universe = None
            elif universe_cache is not None:
                universe = universe_cache.get(relations, etype, on)
            else:
                universe = relations.universe(etype, on)
            requested: int | None
            mapped: int | None
            if action != "run":
                requested = None
                mapped = None
            elif scope == "entities":
                requested = len(d_ids or ())
                mapped = requested
            else:
                requested = universe
                mapped = (
                    mapped_count(registry, relations, event, name, on)
                    if relations is not None and on is not None and reason == "fallback_threshold"
                    else None
                )
            on_iso = day_iso(on) if on else None
            if narrow:
                rows.append(
                    (
                        _sha20(f"d-{event_id}|{name}|{on_iso if dated else ''}"),
                        event_id,
                        corr,
                        name,
                        phase,
                        on_iso,
                        action,
                        scope,
                        entity_type,
                        requested,
                        universe,
                        reason,
                        None,  # trigger_id
                        dec_at,
                        "decision",  # kind
                        granularity,
                        entity_ids,
                        mapped,
                        priority,
                    )
                )
                continue
            rows.append(
                (
                    _sha20(f"d-{event_id}|{name}|{on_iso if dated else ''}"),  # decision_id
                    event_id,
                    corr,
                    name,  # processor
                    phase,
                    on_iso,  # game_date
                    action,
                    scope,
                    entity_type,
                    requested,  # entities_requested
                    universe,  # entities_universe
                    reason,
                    None,  # trigger_id (set when its trigger is dispatched)
                    dec_at,  # decided_at
                    None,  # dispatched_at
                    None,  # dispatch_status
                    None,  # attempts
                    None,  # latency_ms
                    "decision",  # kind
                    granularity,
                    entity_ids,
                    mapped,  # entities_mapped
                    priority,
                    None,  # caused_by
                    None,  # error
                )
            )
    return rows


def skip_counts(decisions: Sequence[Decision]) -> dict[str, int]:
    """The aggregated skips of one event: reason -> how many processors."""
    out: dict[str, int] = {}
    for d in decisions:
        if d.action == "skip":
            out[d.reason] = out.get(d.reason, 0) + 1
    return out


def event_row(
    event: Event,
    decided_at: datetime,
    as_of: date | None,
    skips: dict[str, int] | str | None = None,
    event_json: str | None = None,
    decided_at_iso: str | None = None,
    as_of_iso: str | None = None,
) -> Values:
    """The event's row (:data:`EVENT_COLUMNS` order); ``skips`` from :func:`skip_counts`
    (or already encoded: :func:`.row_values.skips_text`); ``event_json`` when the caller already
    serialised the event (it is encoded once); ``decided_at_iso`` / ``as_of_iso``: the
    times already formatted (once per batch). ``event_id`` and ``source`` are columns of
    the row, so the stored JSON leaves them out (:func:`.row_values.compact_event_json`)."""
    e = event.__dict__  # a pydantic model's fields: dict reads, not generic attribute reads
    on = e["game_date"] or e["start_date"]
    return (
        e["event_id"],
        e["correlation_id"],
        e["source"],
        day_iso(on) if on is not None else None,  # game_date
        decided_at_iso or iso(decided_at),  # decided_at
        as_of_iso or (as_of or utc(decided_at).date()).isoformat(),  # as_of
        compact_event_json(
            event, event_json if event_json is not None else event.model_dump_json()
        ),  # event_json
        (skips if isinstance(skips, str) else skips_json(skips)) if skips else None,  # skips
    )


def dispatch_scope(
    trigger: Trigger, granularity: str | None, universe: int | None
) -> tuple[str | None, int | None]:
    """A dispatch row's ``entity_type`` and ``entities_requested``."""
    requested = len(trigger.entity_ids or ()) if trigger.scope == "entities" else universe
    etype = trigger.entity_type or (
        granularity if granularity not in (None, DATE_GRANULARITY) else None
    )
    return etype, requested


def dispatch_row(
    trigger: Trigger,
    *,
    status: str,
    attempts: int,
    latency_ms: float | None,
    dispatched_at: datetime | float,
    error: str | None,
    phase: int | None,
    granularity: str | None,
    universe: int | None,
    ids: IdList = list,
    game_date_iso: str | None = None,
) -> Values:
    """One row per dispatch outcome (:data:`LOG_COLUMNS` order). ``decided_at`` holds the
    trigger's ``fired_at``; ``dispatched_at`` a datetime or epoch seconds. Its id is
    :func:`.row_values.dispatch_key` of the trigger id, status, attempts and dispatch time:
    the same outcome delivered again has the same id, another at the same attempt count (a
    redriven trigger) its own."""
    etype, requested = dispatch_scope(trigger, granularity, universe)
    caused = trigger.caused_by
    at = iso_epoch(dispatched_at) if isinstance(dispatched_at, float) else iso(dispatched_at)
    return (
        dispatch_key(trigger.trigger_id, status, attempts, at),  # decision_id (dispatch_id)
        caused[0] if caused else None,  # event_id
        trigger.correlation_id,
        trigger.processor,
        phase,
        game_date_iso or trigger.game_date.isoformat(),  # game_date
        "dispatch",  # action
        trigger.scope,
        etype,  # entity_type
        requested,  # entities_requested
        universe,  # entities_universe
        trigger.reason,
        trigger.trigger_id,
        iso(trigger.fired_at),  # decided_at
        at,  # dispatched_at
        status,  # dispatch_status
        attempts,
        latency_ms,
        "dispatch",  # kind
        granularity,
        ids(trigger.entity_ids) if trigger.entity_ids is not None else None,  # entity_ids
        None,  # entities_mapped
        trigger.priority,
        ids(caused),  # caused_by
        error,
    )


def completion_row(
    processor: str,
    game_date: date,
    *,
    trigger_id: str | None,
    records_processed: int,
    entities_changed: int | None,
    duration_s: float,
    reported_at: datetime | None = None,
) -> Values:
    """One completion report (:data:`COMPLETION_COLUMNS` order)."""
    at = iso(reported_at or datetime.now(UTC))
    # one completion per (trigger, processor, date): a re-reported run replaces nothing and
    # adds nothing; without a trigger id every report is its own row
    cid = (
        _h(processor, game_date, trigger_id)
        if trigger_id
        else _h(processor, game_date, records_processed, entities_changed, duration_s, at)
    )
    return (
        "c-" + cid,  # completion_id
        processor,
        game_date.isoformat(),
        trigger_id,
        records_processed,
        entities_changed,
        duration_s,
        at,  # reported_at
    )


def trigger_report_row(
    trigger_id: str, status: str, *, event_id: str, reported_at: datetime | None = None
) -> Values:
    """The status the completion event ``event_id`` reported for the run of ``trigger_id``
    (:data:`TRIGGER_REPORT_COLUMNS` order)."""
    return (trigger_id, status, event_id, iso(reported_at or datetime.now(UTC)))

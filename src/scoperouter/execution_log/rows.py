"""Row builders shared by every writer (SQLite, BigQuery): one place defines the columns.

A row is a tuple of JSON-able values in its table's column order (:data:`LOG_COLUMNS`,
:data:`EVENT_COLUMNS`, :data:`COMPLETION_COLUMNS`; dates and times as ISO strings), its id
lists as the writer's ``ids`` encoder makes them (a list by default; JSON text for SQLite),
so a writer stores it without converting it again (BigQuery zips it into a dict).

Invariant: only rows something reads are written. A skip (``not_an_input``,
``unknown_source``, ``irrelevant_fields``...) gets no row of its own: the event row counts
them per reason (``skips``, JSON ``{"reason": n}``). What reads skips -- ``report
--what-if``'s verification, the unknown-sources section, the days a processor was seen --
needs only those counts; replay re-derives which processor skipped from the registry.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from functools import lru_cache
from json.encoder import encode_basestring, encode_basestring_ascii
from typing import Any

from scoperouter.execution_log.entity_counts import UniverseCache, mapped_count
from scoperouter.execution_log.memos import day_iso, remember_skip
from scoperouter.execution_log.memos import skip_reasons as _skip_memo
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

# encoders built once (``json.dumps`` with arguments builds one per call); same output
_text_json = encode_basestring  # json.dumps(text, ensure_ascii=False) of a str, in C
_sorted_json = json.JSONEncoder(sort_keys=True, separators=(",", ":")).encode


def _h(*parts: object) -> str:
    return hashlib.sha1("|".join("" if p is None else str(p) for p in parts).encode()).hexdigest()[
        :20
    ]


def _sha20(text: str) -> str:
    """``prefix + _h(a, b, c)`` for ``text = prefix + "a|b|c"`` (2-char prefix), cheaper."""
    return text[:2] + hashlib.sha1(text[2:].encode()).hexdigest()[:20]


_compact_json = json.JSONEncoder(separators=(",", ":")).encode  # built once


def ids_json(ids: Sequence[Any]) -> str:
    """``json.dumps(list(ids), separators=(",", ":"))``; strings without the encoder."""
    try:
        if len(ids) == 1:  # the common case (one entity, one causing event): no join
            return "[" + encode_basestring_ascii(ids[0]) + "]"
        return "[" + ",".join(map(encode_basestring_ascii, ids)) + "]"
    except TypeError:  # not all strings
        return _compact_json(list(ids))


def dispatch_key(trigger_id: str, status: str, attempts: int | None) -> str:
    """A dispatch row's id (:func:`dispatch_id`, cheaper): unique per outcome."""
    return _sha20(f"x-{trigger_id}|{status}|{attempts}")


def decision_id(event_id: str, processor: str, on: date | None) -> str:
    """Deterministic id of one decision row: a redelivered event does not duplicate rows."""
    return "d-" + _h(event_id, processor, on.isoformat() if on else None)


def dispatch_id(trigger_id: str, status: str, attempts: int) -> str:
    return "x-" + _h(trigger_id, status, attempts)


def utc(ts: datetime) -> datetime:
    """A timezone-aware UTC datetime (naive values are taken as UTC)."""
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


# the last UTC datetime formatted and its text (one tuple: swapped atomically between
# threads): a batch's rows share their times (``isoformat`` costs ~0.65 us)
_iso_last: tuple[datetime, str] = (datetime.min.replace(tzinfo=UTC), "")


def iso(ts: datetime | None) -> str | None:
    global _iso_last
    if ts is None:
        return None
    if ts.tzinfo is UTC and type(ts) is datetime:  # the common case: no conversion
        last = _iso_last
        if ts == last[0]:  # both UTC: equal means the same fields
            return last[1]
        text = ts.isoformat() if ts.microsecond else ts.isoformat(timespec="microseconds")
        _iso_last = (ts, text)
        return text
    return utc(ts).isoformat(timespec="microseconds")


@lru_cache(maxsize=64)  # a few seconds are live at a time
def _second_iso(sec: int) -> str:
    """Whole epoch second ``sec`` as ``YYYY-MM-DDTHH:MM:SS`` (UTC)."""
    return datetime.fromtimestamp(sec, UTC).isoformat()[:19]


# the last epoch time formatted and its text (one tuple, swapped atomically): a delivery's
# dispatch outcomes share their time
_epoch_last: tuple[float, str] = (math.nan, "")


def iso_epoch(t: float) -> str:
    """``iso(datetime.fromtimestamp(t, UTC))`` without building the datetime (``t`` >= 0):
    the same split of the float (``modf``, microseconds rounded half to even), the date and
    time of the whole second memoised."""
    global _epoch_last
    last = _epoch_last
    if t == last[0]:
        return last[1]
    if t < 0:
        return iso(datetime.fromtimestamp(t, UTC)) or ""
    frac, whole = math.modf(t)
    us = round(frac * 1e6)
    sec = int(whole)
    if us >= 1_000_000:
        us -= 1_000_000
        sec += 1
    text = f"{_second_iso(sec)}.{us:06d}+00:00"
    _epoch_last = (t, text)
    return text


_skips_json: dict[tuple[tuple[str, int], ...], str] = {}


def skips_json(skips: dict[str, int]) -> str:
    """``skips`` as sorted compact JSON, memoised (an event stream repeats a few shapes)."""
    key = tuple(skips.items())
    try:
        return _skips_json[key]
    except KeyError:
        if len(_skips_json) >= 4096:
            _skips_json.clear()
        text = _skips_json[key] = _sorted_json(skips)
        return text


def skips_text(decisions: Sequence[Decision], reasons: Sequence[str] | None = None) -> str | None:
    """``skips_json(skip_counts(decisions))`` (None without skips), memoised by the skip
    reasons in order (``reasons`` when the caller collected them: :func:`decision_rows`)."""
    return _skips_of(
        tuple(
            reasons if reasons is not None else [d.reason for d in decisions if d.action == "skip"]
        )
    )


@lru_cache(maxsize=4096)
def _skips_of(reasons: tuple[str, ...]) -> str | None:
    """:func:`skips_json` of the counts of ``reasons`` (what :func:`skip_counts` counts of
    the decisions they came from, in the same order), None for none."""
    if not reasons:
        return None
    counts: dict[str, int] = {}
    for r in reasons:
        counts[r] = counts.get(r, 0) + 1
    return skips_json(counts)


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


@lru_cache(maxsize=4096)
def _source_json(source: str) -> str:
    """``source``'s part of the event JSON's prefix."""
    return ',"source":' + _text_json(source) + ","


def compact_event_json(event: Event, text: str) -> str:
    """``text`` (the event's JSON, fields in model order) without its leading ``event_id``
    and ``source``, which the events table holds as columns; unchanged when it does not start
    with exactly those two (the reader accepts both forms: :func:`event_from_row_json`)."""
    prefix = '{"event_id":' + _text_json(event.event_id) + _source_json(event.source)
    return "{" + text[len(prefix) :] if text.startswith(prefix) else text


def event_from_row_json(text: str, event_id: str, source: str) -> str:
    """The full event JSON back from a stored (possibly compact) ``event_json``."""
    if text.startswith('{"event_id":'):
        return text
    rest = text[1:]
    return (
        '{"event_id":'
        + _text_json(event_id)
        + ',"source":'
        + _text_json(source)
        + ("," + rest if rest != "}" else "}")
    )


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
    (or already encoded: :func:`skips_text`); ``event_json`` when the caller already
    serialised the event (it is encoded once); ``decided_at_iso`` / ``as_of_iso``: the
    times already formatted (once per batch). ``event_id`` and ``source`` are columns of
    the row, so the stored JSON leaves them out (:func:`compact_event_json`)."""
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
    trigger's ``fired_at``; ``dispatched_at`` a datetime or epoch seconds."""
    etype, requested = dispatch_scope(trigger, granularity, universe)
    caused = trigger.caused_by
    return (
        dispatch_key(trigger.trigger_id, status, attempts),  # decision_id (dispatch_id)
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
        iso_epoch(dispatched_at) if isinstance(dispatched_at, float) else iso(dispatched_at),
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

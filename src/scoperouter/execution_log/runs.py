"""Runs from an execution log: one per dispatched trigger, with its completion, the rows
it needed, and the measured cost of a run (the inputs of :mod:`scoperouter.execution_log.analysis`).

Invariant: built only from log rows (decisions, dispatches, completions); the definitions
of *run*, *processed*, *needed*, the full-date baseline and the cost fit are those of the
analysis module's docstring (and docs/report.md).
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from scoperouter.execution_log.api import FAILED_STATUSES
from scoperouter.execution_log.reader import CompletionRow, LogData, LogRow
from scoperouter.router.event_ids import CAUSED_BY_CAP

DEFAULT_SECONDS_PER_ENTITY = 30.0 / 450.0


@dataclass
class Run:
    processor: str
    game_date: date | None
    scope: str
    at: datetime | None
    trigger_id: str | None
    status: str | None
    requested: int | None
    universe: int | None
    needed: int | None
    latency_ms: float | None = None
    completion: CompletionRow | None = None
    full_date_rows: int | None = None  # measured size of a full-date run (completions)

    @property
    def failed(self) -> bool:
        return self.status is not None and self.status in FAILED_STATUSES

    @property
    def processed(self) -> int | None:
        if self.completion is not None:
            return self.completion.records_processed
        return self.requested

    @property
    def useful(self) -> int | None:
        c = self.completion
        if c is not None and c.entities_changed is not None:
            return c.entities_changed
        return self.needed

    @property
    def baseline(self) -> int | None:
        """Entity rows a full-date run would process (measured, else the universe)."""
        if self.full_date_rows is not None:
            return self.full_date_rows
        if self.universe is not None:
            return self.universe
        return self.processed if self.scope == "date" else None


def _needed_from_decisions(decs: Iterable[LogRow], universe: int | None) -> int | None:
    ids: set[str] = set()
    extra = 0
    seen = False
    for d in decs:
        seen = True
        if d.scope == "entities" and d.entity_ids is not None:
            ids.update(d.entity_ids)
        elif d.entities_mapped is not None:
            extra += d.entities_mapped
        else:
            return None
    if not seen:
        return None
    total = len(ids) + extra
    return min(total, universe) if universe is not None else total


def build_runs(data: LogData) -> tuple[list[Run], bool]:
    """Runs from dispatch rows (final outcome per trigger), else from run decisions."""
    runs: list[Run] = []
    if data.dispatches:
        by_key: dict[tuple[str, date | None, str], list[LogRow]] = defaultdict(list)
        for d in data.decisions:
            if d.action == "run" and d.event_id is not None:
                by_key[(d.processor, d.game_date, d.event_id)].append(d)
        final: dict[str, LogRow] = {}
        for x in data.dispatches:
            if x.trigger_id is None:
                continue
            cur = final.get(x.trigger_id)
            if cur is None or _outcome_key(x) >= _outcome_key(cur):
                final[x.trigger_id] = x
        for tid, x in final.items():
            decs = [d for ev in x.caused_by for d in by_key.get((x.processor, x.game_date, ev), ())]
            universe = x.entities_universe
            if universe is None:
                universe = next(
                    (d.entities_universe for d in decs if d.entities_universe is not None), None
                )
            if x.scope == "entities":
                requested: int | None = len(x.entity_ids or ()) or x.entities_requested
                needed: int | None = requested
            else:
                requested = x.entities_requested if x.entities_requested is not None else universe
                # a hot window's capped caused_by names only some of its events: the rest's
                # decisions are out of reach, so what it needed is unknown (not measurable)
                capped = len(x.caused_by) >= CAUSED_BY_CAP
                needed = None if capped else _needed_from_decisions(decs, universe)
            runs.append(
                Run(
                    x.processor,
                    x.game_date,
                    x.scope or "date",
                    x.decided_at or x.dispatched_at,
                    tid,
                    x.dispatch_status,
                    requested,
                    universe,
                    needed,
                    x.latency_ms,
                )
            )
        return runs, True
    for d in data.decisions:
        if d.action != "run":
            continue
        if d.scope == "entities":
            n: int | None = len(d.entity_ids or ())
            need: int | None = n
        else:
            n = d.entities_requested if d.entities_requested is not None else d.entities_universe
            need = d.entities_mapped
            if need is not None and d.entities_universe is not None:
                need = min(need, d.entities_universe)
        runs.append(
            Run(
                d.processor,
                d.game_date,
                d.scope or "date",
                d.decided_at,
                d.trigger_id,
                None,
                n,
                d.entities_universe,
                need,
            )
        )
    return runs, False


def _outcome_key(x: LogRow) -> tuple[bool, float, int]:
    """The latest outcome is a trigger's final one (its time first: a redriven dead trigger
    starts again at attempt 1, ``StateStore.redrive_dead``); the attempt count breaks ties
    and orders outcomes without a time."""
    at = x.dispatched_at
    return (at is not None, at.timestamp() if at is not None else 0.0, x.attempts or 0)


def attach_completions(runs: list[Run], completions: Iterable[CompletionRow]) -> int:
    """Give each run its completion (by trigger_id, else the next unmatched run of the same
    processor and date, runs whose dispatch failed last). A completion naming a trigger
    that no run has (its dispatch rows pruned, or never logged) is unmatched: given to
    another run it would measure that run with this one's rows. Returns how many
    completions matched no run."""
    by_tid = {r.trigger_id: r for r in runs if r.trigger_id is not None}
    by_pd: dict[tuple[str, date | None], list[Run]] = defaultdict(list)
    for r in sorted(runs, key=lambda r: (r.at is None, r.at or datetime.min)):
        by_pd[(r.processor, r.game_date)].append(r)
    unmatched = 0
    pending: list[CompletionRow] = []
    for c in completions:
        run = by_tid.get(c.trigger_id) if c.trigger_id else None
        if run is not None and run.completion is None:
            run.completion = c
        elif c.trigger_id and run is None:
            unmatched += 1  # its trigger is not in the log: no other run is its
        else:
            pending.append(c)
    for c in pending:
        cands = [r for r in by_pd.get((c.processor, c.game_date), ()) if r.completion is None]
        # a run whose dispatch failed (dead-lettered) is the last to take a completion
        # naming no trigger: given to it, the run that did go out lost its measurement
        cands.sort(key=lambda r: r.failed)  # stable: the earliest of each kind first
        if cands:
            cands[0].completion = c
        else:
            unmatched += 1
    return unmatched


@dataclass(frozen=True)
class CostModel:
    """Seconds a run takes: ``overhead_s + seconds_per_entity x records``."""

    overhead_s: float
    seconds_per_entity: float
    source: str


def fit_cost(completions: Iterable[CompletionRow], fallback: float | None = None) -> CostModel:
    """Least-squares fit of duration = overhead + per_entity x records over the completions
    with a finite ``duration_s > 0`` (both clamped >= 0); needs two distinct record counts, else
    ``fallback`` (routes.yaml ``report.seconds_per_entity``, else 30 s / 450) with no overhead."""
    pts = [
        (float(c.records_processed), c.duration_s)
        for c in completions
        if 0 < c.duration_s < math.inf and c.records_processed >= 0  # inf: no measurement
    ]
    if len({x for x, _ in pts}) < 2:
        if fallback is not None:
            return CostModel(0.0, fallback, "routes.yaml report.seconds_per_entity")
        return CostModel(0.0, DEFAULT_SECONDS_PER_ENTITY, "default")
    n = len(pts)
    mx = sum(x for x, _ in pts) / n
    my = sum(y for _, y in pts) / n
    sxx = sum((x - mx) ** 2 for x, _ in pts)
    sxy = sum((x - mx) * (y - my) for x, y in pts)
    slope = sxy / sxx
    intercept = my - slope * mx
    if slope < 0:  # duration does not grow with records: all overhead
        slope, intercept = 0.0, my
    elif intercept < 0:  # best fit through the origin
        intercept = 0.0
        slope = sum(x * y for x, y in pts) / sum(x * x for x, _ in pts)
    return CostModel(intercept, slope, f"measured (least squares over {n} completions)")


def full_date_sizes(runs: Iterable[Run]) -> dict[tuple[str, date | None], int]:
    """Per (processor, date): median records_processed of its completed date-scope runs."""
    sizes: dict[tuple[str, date | None], list[int]] = defaultdict(list)
    for r in runs:
        if (
            r.scope == "date"
            and not r.failed
            and r.completion is not None
            and r.completion.records_processed > 0
        ):
            sizes[(r.processor, r.game_date)].append(r.completion.records_processed)
    return {k: int(statistics.median_low(v)) for k, v in sizes.items()}


def measured_runs(data: LogData) -> tuple[list[Run], bool, int]:
    """The log's runs with their completions attached and each run's full-date size set
    (:func:`full_date_sizes`, else the universe): what the report's figures and rollout's
    savings both read, so that they agree. Returns (runs, coalesced, unmatched)."""
    runs, coalesced = build_runs(data)
    unmatched = attach_completions(runs, data.completions)
    sizes = full_date_sizes(runs)
    for r in runs:
        r.full_date_rows = sizes.get((r.processor, r.game_date))
    return runs, coalesced, unmatched

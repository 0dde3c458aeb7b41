"""The cost of a backfill before it starts: runs, entity rows and processing hours per
processor, from the execution log's fitted cost model (the one ``report`` uses:
:func:`scoperouter.execution_log.runs.fit_cost`).

Invariants: pure (the log is read by the caller into :class:`LogData`). Rows of one run
(P, D) are, first found: the measured full-date size of P on D (median records of its
date-scope completions that day), else the median of P's date-scope completions on any
day, else the relation data's entity universe of P's granularity on D, else unknown
(counted, never guessed). A backfill run is a date-scope run: completions of entity-scope
or failed runs (matched to their dispatch as ``report`` does) are no full-date size; a
completion whose trigger is not in the log (a backfill's own runs) counts as date scope.
Only the runs still to run are estimated: a resumed backfill's runs stored ``done`` (passed
in ``done``) are never run again, so they count in ``runs_done`` only and the wall clock
starts from them done. Processors in ``shadow`` (those the executor marks done at once and
sends nothing: :class:`~scoperouter.backfill.daemon_executor.TargetExecutor`) are not run
either: their runs still to run count in ``runs_shadow`` only (no rows, no hours, no
range-only figures; in the wall clock they take no time, as in the runner) -- except a run
whose first attempt stored its mode (``modes``), which is run by that mode whatever its
processor's now: one first sent live is estimated as any run, one first attempted in
shadow counts in ``runs_shadow``. Hours =
``overhead_s + seconds_per_entity x rows`` per run (rows unknown: the overhead only); wall
hours = the makespan of those durations on the scheduler with each target's concurrency
(:mod:`scoperouter.backfill.simulate`). Next to the plan, the same figures for the *range
only* (every selected processor on every requested date, no lookback dates): what a
per-processor backfill script runs, and what it misses.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from scoperouter.backfill.plan import BackfillPlan, PlannedRun
from scoperouter.backfill.schedule import Policy
from scoperouter.backfill.simulate import simulate
from scoperouter.execution_log.reader import CompletionRow, LogData
from scoperouter.execution_log.runs import CostModel, attach_completions, build_runs, fit_cost
from scoperouter.processor_registry.compiled import CompiledRegistry
from scoperouter.processor_registry.relations import RelationStore


@dataclass(frozen=True)
class ProcessorEstimate:
    processor: str
    phase: int
    runs: int
    rows: int
    rows_unknown_runs: int
    hours: float
    range_runs: int  # range only (no lookback dates)
    range_rows: int
    range_hours: float
    cost: CostModel
    rows_source: str
    done: int = 0  # runs stored done (a resumed backfill): not run again, not estimated
    shadow_runs: int = 0  # runs of a shadow processor: done at once, sent nothing, not estimated

    def to_json(self) -> dict[str, Any]:
        return {
            "processor": self.processor,
            "phase": self.phase,
            "runs": self.runs,
            "runs_done": self.done,
            "runs_shadow": self.shadow_runs,
            "entity_rows": self.rows,
            "runs_with_unknown_rows": self.rows_unknown_runs,
            "hours": round(self.hours, 4),
            "range_only": {
                "runs": self.range_runs,
                "entity_rows": self.range_rows,
                "hours": round(self.range_hours, 4),
            },
            "overhead_s": self.cost.overhead_s,
            "seconds_per_entity": self.cost.seconds_per_entity,
            "cost_source": self.cost.source,
            "rows_source": self.rows_source,
        }


@dataclass(frozen=True)
class Estimate:
    processors: tuple[ProcessorEstimate, ...]
    wall_hours: float = 0.0  # makespan: the plan on the scheduler with the targets' concurrency

    @property
    def runs(self) -> int:
        return sum(p.runs for p in self.processors)

    @property
    def rows(self) -> int:
        return sum(p.rows for p in self.processors)

    @property
    def rows_unknown_runs(self) -> int:
        return sum(p.rows_unknown_runs for p in self.processors)

    @property
    def done(self) -> int:
        return sum(p.done for p in self.processors)

    @property
    def shadow_runs(self) -> int:
        return sum(p.shadow_runs for p in self.processors)

    @property
    def shadow_processors(self) -> tuple[str, ...]:
        """The shadow processors with runs still to run (sorted)."""
        return tuple(sorted(p.processor for p in self.processors if p.shadow_runs))

    @property
    def hours(self) -> float:
        return sum(p.hours for p in self.processors)

    def to_json(self) -> dict[str, Any]:
        return {
            "runs": self.runs,
            "runs_done": self.done,
            "runs_shadow": self.shadow_runs,
            "entity_rows": self.rows,
            "runs_with_unknown_rows": self.rows_unknown_runs,
            "hours": round(self.hours, 4),
            "wall_hours": round(self.wall_hours, 4),
            "shadow_processors": list(self.shadow_processors),
            "range_only": {
                "runs": sum(p.range_runs for p in self.processors),
                "entity_rows": sum(p.range_rows for p in self.processors),
                "hours": round(sum(p.range_hours for p in self.processors), 4),
            },
            "processors": [p.to_json() for p in self.processors],
        }


def estimate(
    plan: BackfillPlan,
    registry: CompiledRegistry,
    log: LogData | None,
    relations: RelationStore | None = None,
    *,
    policies: Mapping[str, Policy] | None = None,
    max_running: int = 8,
    done: Collection[int] = frozenset(),
    shadow: Collection[str] = frozenset(),
    modes: Mapping[int, str] | None = None,
) -> Estimate:
    """The cost of the runs of ``plan`` still to run (``done``: indexes of runs stored done;
    ``shadow``: processors the executor skips; ``modes``: the mode stored with a run's
    first attempt, by index, which it is run by instead -- module docstring)."""
    modes = modes or {}
    skip = {
        i
        for i, r in enumerate(plan.runs)
        if modes.get(i, "shadow" if r.processor in shadow else "live") == "shadow"
    }
    fallback = registry.spec.report.seconds_per_entity
    comps: dict[str, list[CompletionRow]] = defaultdict(list)
    for c in log.completions if log is not None else ():
        comps[c.processor].append(c)
    full = _full_date(log)
    per: dict[str, list[PlannedRun]] = defaultdict(list)
    n_done: dict[str, int] = defaultdict(int)
    n_shadow: dict[str, int] = defaultdict(int)
    for i, r in enumerate(plan.runs):
        if i in done:
            n_done[r.processor] += 1
        elif i in skip:
            n_shadow[r.processor] += 1
        else:
            per[r.processor].append(r)
    out: list[ProcessorEstimate] = []
    seconds: dict[str, float] = {}  # run key -> duration; a shadow run: none (0)
    for name in plan.processors:
        proc = registry.processors[name]
        cost = fit_cost(comps.get(name, ()), fallback)
        by_day, overall = _sizes(full.get(name, ()))
        rows = unknown = 0
        r_runs = r_rows = 0
        r_hours = 0.0
        hours_f = 0.0
        sources: set[str] = set()
        for r in per[name]:
            n, src = _rows(r.day, by_day, overall, proc.granularity, relations)
            sources.add(src)
            secs = cost.overhead_s + cost.seconds_per_entity * (n or 0)
            seconds[r.key] = secs
            if n is None:
                unknown += 1
            rows += n or 0
            hours_f += secs / 3600.0
            if r.day <= plan.request.end:
                r_runs += 1
                r_rows += n or 0
                r_hours += secs / 3600.0
        out.append(
            ProcessorEstimate(
                name,
                proc.phase,
                len(per[name]),
                rows,
                unknown,
                hours_f,
                r_runs,
                r_rows,
                r_hours,
                cost,
                "+".join(sorted(sources)) or ("shadow" if n_shadow[name] else "done"),
                n_done[name],
                n_shadow[name],
            )
        )
    wall = simulate(
        plan,
        policies or {},
        lambda r: 0.0 if plan.index[r.key] in skip else seconds[r.key],
        max_running=max_running,
        restored={i: ("done", 1) for i in done},
    )
    return Estimate(tuple(out), wall.makespan / 3600.0)


def _full_date(log: LogData | None) -> dict[str, list[CompletionRow]]:
    """Per processor: the completions of full-date runs (module docstring)."""
    if log is None:
        return {}
    runs, _ = build_runs(log)
    attach_completions(runs, log.completions)
    partial = {
        id(r.completion)
        for r in runs
        if r.completion is not None and (r.scope != "date" or r.failed)
    }
    out: dict[str, list[CompletionRow]] = defaultdict(list)
    for c in log.completions:
        if id(c) not in partial:
            out[c.processor].append(c)
    return out


def _sizes(comps: Iterable[CompletionRow]) -> tuple[dict[date, int], int | None]:
    by_day: dict[date, list[int]] = defaultdict(list)
    every: list[int] = []
    for c in comps:
        if c.records_processed > 0:
            every.append(c.records_processed)
            if c.game_date is not None:
                by_day[c.game_date].append(c.records_processed)
    med = {d: int(statistics.median_low(v)) for d, v in by_day.items()}
    return med, (int(statistics.median_low(every)) if every else None)


def _rows(
    day: date,
    by_day: dict[date, int],
    overall: int | None,
    granularity: str,
    relations: RelationStore | None,
) -> tuple[int | None, str]:
    if day in by_day:
        return by_day[day], "measured"
    if overall is not None:
        return overall, "measured-median"
    if relations is not None and granularity != "date":
        u = relations.universe(granularity, day)
        if u is not None:
            return u, "universe"
    return None, "unknown"

"""The demo's virtual-clock simulation: updates and completion events on one heap, the
router's jobs executed by the reference processors, costs from :class:`CostModel`.

Invariant: at equal times a window deadline fires before an event; runs execute when they
start (reading the state at that instant) and their completion events arrive ``duration``
later.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from scoperouter.examples.nba.processors import (
    BY_NAME,
    run,
)
from scoperouter.examples.nba.routers import Job, PlannedRouter, Router
from scoperouter.examples.nba.stream import Update, apply_update, produced_at
from scoperouter.examples.nba.warehouse import Warehouse
from scoperouter.processor_registry.compiled import CompiledRegistry
from scoperouter.sdk.change_detection import ChangeDetector

FULL_PHASE3_PLAYERS = 450
FULL_PHASE3_SECONDS = 30.0


@dataclass(frozen=True)
class CostModel:
    seconds_per_row: float = FULL_PHASE3_SECONDS / FULL_PHASE3_PLAYERS
    overhead_s: float = 0.5

    def seconds(self, rows: int) -> float:
        return self.overhead_s + rows * self.seconds_per_row



@dataclass
class ModeStats:
    processor_runs: int = 0
    entity_rows: int = 0
    simulated_seconds: float = 0.0
    changed_rows: int = 0  # rows this mode's runs changed (a date-granularity run: its date)
    by_processor: dict[str, list[int]] = field(default_factory=dict)  # name -> [runs, rows]
    rejected_events: int = 0
    end_time: float = 0.0

    def entity_processor_rows(self) -> int:
        """Entity rows processed by processors whose granularity is not ``date``."""
        return sum(
            v[1] for name, v in self.by_processor.items() if BY_NAME[name].granularity != "date"
        )

    def to_json(self) -> dict[str, object]:
        return {
            "processor_runs": self.processor_runs,
            "entity_rows": self.entity_rows,
            "simulated_seconds": round(self.simulated_seconds, 1),
        }



def simulate(
    wh: Warehouse,
    updates: Iterable[Update],
    router: Router,
    registry: CompiledRegistry,
    game_date: date,
    cost: CostModel,
    *,
    date_level: bool = False,
    on_run: Callable[[Job, float, float, int, frozenset[str]], None] | None = None,
) -> ModeStats:
    """Drive ``updates`` through ``router`` on a virtual clock, executing every job."""
    stats = ModeStats()
    seq = itertools.count()
    heap: list[tuple[float, int, str, Any]] = []
    for u in updates:
        heapq.heappush(heap, (u.at, next(seq), "update", u))
    # source -> dates of the writes that changed it. Processors read their inputs on dates
    # <= the date they compute, so (processor, d) is unchanged while no input changed on or
    # before d: that is the date-level memo key.
    changes_at: dict[str, list[date]] = {}

    def version(sources: Iterable[str], d: date) -> tuple[int, ...]:
        return tuple(sum(1 for x in changes_at.get(s, ()) if x <= d) for s in sources)

    memo: dict[tuple[str, date], tuple[tuple[int, ...], int]] = {}

    def execute(job: Job, now: float) -> None:
        ref = BY_NAME[job.processor]
        proc = registry.processors.get(job.processor)
        publishes = proc.publishes if proc is not None and proc.publishes else ref.publishes
        detector = ChangeDetector(publishes, ref.entity_type)
        rows = changed = 0
        changed_ids: set[str] = set()
        ids = frozenset(job.ids) if job.ids is not None else None
        for day in job.dates:
            key = (job.processor, day)
            watched = (*sorted(ref.reads), ref.publishes)
            vkey = version(watched, day)
            if date_level and key in memo and memo[key][0] == vkey:
                rows += memo[key][1]  # inputs unchanged since the last run: same output
                continue
            res = run(wh, ref, day, ids, detector)
            rows += res.rows
            changed_ids.update(res.changes.entities)
            if res.changes.entities:
                changes_at.setdefault(ref.publishes, []).append(day)
                changed += res.rows if ref.granularity == "date" else len(res.changes.entities)
            if ids is None:
                memo[key] = (version(watched, day), res.rows)
        dur = cost.seconds(rows)
        stats.processor_runs += 1
        stats.entity_rows += rows
        stats.changed_rows += changed
        stats.simulated_seconds += dur
        stats.end_time = max(stats.end_time, now + dur)
        agg = stats.by_processor.setdefault(job.processor, [0, 0])
        agg[0] += 1
        agg[1] += rows
        if on_run is not None:
            on_run(job, now, dur, rows, frozenset(changed_ids))
        if isinstance(router, PlannedRouter):
            router.completed(job, rows, len(changed_ids), dur)
        done = produced_at(game_date, now + dur)
        if date_level:  # date level: every run announces the whole date, changed or not
            for day in job.dates:
                ev: dict[str, Any] = {
                    "event_id": f"dl-{next(seq)}",
                    "source": publishes,
                    "game_date": day.isoformat(),
                    "status": "success",
                    "priority": job.priority,
                    "produced_at": done.isoformat(),
                }
                if job.correlation_id is not None:
                    ev["correlation_id"] = job.correlation_id
                heapq.heappush(heap, (now + dur, next(seq), "event", ev))
            return
        for ev in detector.events(
            run_id=job.run_id,
            priority=job.priority,
            correlation_id=job.correlation_id,
            produced_at=done,
        ):
            heapq.heappush(heap, (now + dur, next(seq), "event", ev))

    while True:
        t_ev = heap[0][0] if heap else None
        t_dl = router.next_deadline()
        if t_ev is None and t_dl is None:
            break
        if t_dl is not None and (t_ev is None or t_dl <= t_ev):
            now = t_dl
            jobs = router.due(now)
        else:
            now, _, kind, payload = heapq.heappop(heap)
            if kind == "update":
                msg = apply_update(wh, payload, game_date)
                changes_at.setdefault(payload.source, []).append(payload.day)
                if msg is None:
                    continue
                jobs = router.route(msg, now)
            else:
                jobs = router.route(payload, now)
        for job in sorted(jobs, key=lambda j: (j.processor, j.dates)):
            execute(job, now)
    return stats

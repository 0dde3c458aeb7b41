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

from scoperouter.examples.nba.faults import NO_FAULTS, Faults
from scoperouter.examples.nba.processors import (
    BY_NAME,
    run,
)
from scoperouter.examples.nba.routers import Job, PlannedRouter, Router
from scoperouter.examples.nba.stream import Update, apply_update, produced_at
from scoperouter.examples.nba.warehouse import Warehouse
from scoperouter.processor_registry.compiled import CompiledRegistry, plural_of
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
    # the closed loop (issue 14): faults injected and what the router did about them
    failed_runs: int = 0  # runs that reported failed (wrote nothing)
    lost_runs: int = 0  # runs whose messages never arrived (wrote their output)
    reruns: int = 0  # runs of a trigger already run (attempt > 1)
    half_updated_runs: int = 0  # runs started while an upstream had open work on the date
    redriven: int = 0  # dead letters redriven at the end (the operator's step)
    last_update_at: float = 0.0
    quiet_at: float = 0.0  # when nothing was left to do (no message, window or timer)

    def entity_processor_rows(self) -> int:
        """Entity rows processed by processors whose granularity is not ``date``."""
        return sum(
            v[1] for name, v in self.by_processor.items() if BY_NAME[name].granularity != "date"
        )

    @property
    def quiescence_s(self) -> float:
        """Seconds from the last Phase 2 update until nothing was left to do."""
        return max(0.0, self.quiet_at - self.last_update_at)

    def to_json(self) -> dict[str, object]:
        return {
            "processor_runs": self.processor_runs,
            "entity_rows": self.entity_rows,
            "simulated_seconds": round(self.simulated_seconds, 1),
        }

    def loop_json(self) -> dict[str, object]:
        """The closed loop's figures (faults, re-runs, half-updated runs, quiescence)."""
        return {
            "failed_runs": self.failed_runs,
            "lost_runs": self.lost_runs,
            "reruns": self.reruns,
            "half_updated_runs": self.half_updated_runs,
            "redriven": self.redriven,
            "quiescence_s": round(self.quiescence_s, 1),
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
    faults: Faults = NO_FAULTS,
    redrive_dead: bool = True,
) -> ModeStats:
    """Drive ``updates`` through ``router`` on a virtual clock, executing every job.

    With ``faults`` (routed runs only), runs fail, lose their messages or report late
    (:mod:`scoperouter.examples.nba.faults`). With the router's closed loop on, every run
    reports its completion naming its trigger id and its attempt (a bare report when nothing
    changed; the attempt as an HTTP target's processor copies it: the push messageId
    ``<trigger_id>-<n>`` as ``trigger_message_id``, without which a success after a failure
    could be the failed run's and closes nothing, docs/ledger.md), a
    processor that receives a trigger id it already ran republishes that run's changes
    (idempotency), and at the end an operator redrives the dead letters (``redrive_dead``)."""
    stats = ModeStats()
    seq = itertools.count()
    heap: list[tuple[float, int, str, Any]] = []
    for u in updates:
        heapq.heappush(heap, (u.at, next(seq), "update", u))
        stats.last_update_at = max(stats.last_update_at, u.at)
    planned = router if isinstance(router, PlannedRouter) else None
    loop = planned.engine.loop if planned is not None else None
    faulty = faults.any and not date_level
    published: dict[str, list[dict[str, Any]]] = {}  # trigger id -> its change events
    # source -> dates of the writes that changed it. Processors read their inputs on dates
    # <= the date they compute, so (processor, d) is unchanged while no input changed on or
    # before d: that is the date-level memo key.
    changes_at: dict[str, list[date]] = {}

    def version(sources: Iterable[str], d: date) -> tuple[int, ...]:
        return tuple(sum(1 for x in changes_at.get(s, ()) if x <= d) for s in sources)

    memo: dict[tuple[str, date], tuple[tuple[int, ...], int]] = {}

    def attempt_id(job: Job) -> str:
        return f"{job.run_id}-{job.attempt}"

    def report(job: Job, status: str, rows: int, error: str | None = None) -> dict[str, Any]:
        msg: dict[str, Any] = {
            "trigger_id": job.run_id,
            "trigger_message_id": attempt_id(job),
            "processor": job.processor,
            "game_date": job.dates[0].isoformat(),
            "status": status,
            "record_count": rows,
            "execution_id": f"{job.run_id}#{job.attempt}",
        }
        if error is not None:
            msg["error_message"] = error
        return msg

    def deliver(job: Job, at: float, msgs: list[dict[str, Any]]) -> None:
        for i, m in enumerate(msgs):
            late = faults.delay(job.run_id, job.attempt, i) if faulty else 0.0
            heapq.heappush(heap, (at + late, next(seq), "event", m))

    def execute(job: Job, now: float) -> None:
        if job.attempt > 1:
            stats.reruns += 1
        if job.upstream_busy:
            stats.half_updated_runs += 1
        fate = faults.fate(job.run_id, job.attempt) if faulty else "ok"
        if fate == "fail":  # fails early: writes nothing, reports failed
            stats.failed_runs += 1
            stats.processor_runs += 1
            stats.simulated_seconds += cost.overhead_s
            stats.end_time = max(stats.end_time, now + cost.overhead_s)
            if loop is not None:
                deliver(job, now + cost.overhead_s, [report(job, "failed", 0, "simulated failure")])
            return
        ref = BY_NAME[job.processor]
        proc = registry.processors.get(job.processor)
        publishes = proc.publishes if proc is not None and proc.publishes else ref.publishes
        # the registry's key for several ids of the type (players), as production sends it
        plural = (
            plural_of(ref.entity_type, registry.spec)
            if ref.entity_type in registry.spec.entities
            else None
        )
        detector = ChangeDetector(publishes, ref.entity_type, entity_plural=plural)
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
        events = detector.events(
            run_id=job.run_id,
            priority=job.priority,
            correlation_id=job.correlation_id,
            produced_at=done,
        )
        if loop is not None:
            # idempotent on the trigger id: a re-run republishes what the trigger changed
            prev = published.get(job.run_id, [])
            have = {e["event_id"] for e in events}
            events = [*(e for e in prev if e["event_id"] not in have), *events]
            published[job.run_id] = events
            events = [
                {**e, "trigger_id": job.run_id, "trigger_message_id": attempt_id(job)}
                for e in events
            ]
            if not events:
                events = [report(job, "success", rows)]
        if fate == "lost":
            stats.lost_runs += 1
            return
        deliver(job, now + dur, events)

    now = 0.0
    redrives = 0
    while True:
        t_ev = heap[0][0] if heap else None
        t_dl = router.next_deadline()
        if t_ev is None and t_dl is None:
            if planned is not None and loop is not None and redrive_dead and redrives < 5:
                jobs = planned.redrive_dead(now)
                redrives += 1
                if jobs:
                    stats.redriven += len(jobs)
                    for job in jobs:
                        execute(job, now)
                    continue
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
    stats.quiet_at = max(now, stats.end_time)
    return stats

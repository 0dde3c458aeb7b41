"""The scheduler on a virtual clock: when each run would start and finish, given its
duration and which attempts fail. Pure (no clock, no I/O).

Used for the dry-run's wall-clock estimate (the makespan with each target's concurrency,
durations from the cost model) and to check that failures hold up only the runs that read
the failing one.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from scoperouter.backfill.plan import BackfillPlan, PlannedRun
from scoperouter.backfill.schedule import Policy, Scheduler, State


@dataclass(frozen=True)
class Timeline:
    starts: Mapping[int, tuple[float, ...]]  # run index -> start time of each attempt
    finished: Mapping[int, float]  # run index -> when it ended (done or failed for good)
    makespan: float
    states: tuple[str, ...]


def simulate(
    plan: BackfillPlan,
    policies: Mapping[str, Policy],
    duration: Callable[[PlannedRun], float],
    *,
    fails: Callable[[PlannedRun, int], bool] = lambda _r, _a: False,
    max_running: int = 1_000_000,
    restored: Mapping[int, tuple[State, int]] | None = None,
) -> Timeline:
    """``restored``: run states to start from, as the runner's (its runs stored done are
    not run again)."""
    sched = Scheduler(plan, policies, max_running=max_running, restored=restored)
    now = 0.0
    events: list[tuple[float, int, int]] = []  # (end time, seq, run index)
    starts: dict[int, list[float]] = {}
    finished: dict[int, float] = {}
    seq = 0
    while True:
        for i in sched.take(now):
            starts.setdefault(i, []).append(now)
            seq += 1
            heapq.heappush(events, (now + max(0.0, duration(plan.runs[i])), seq, i))
        nxt = sched.next_retry()
        if not events and nxt is None:
            break
        if events and (nxt is None or events[0][0] <= nxt):
            now, _s, i = heapq.heappop(events)
            if fails(plan.runs[i], sched.attempts[i]):
                sched.fail(i, "simulated", now)
                if sched.state[i] == "failed":
                    finished[i] = now
            else:
                sched.complete(i)
                finished[i] = now
        else:
            assert nxt is not None
            now = nxt
    return Timeline(
        starts={k: tuple(v) for k, v in starts.items()},
        finished=finished,
        makespan=max(finished.values(), default=0.0),
        states=tuple(sched.state),
    )

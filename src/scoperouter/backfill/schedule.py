"""The backfill scheduler: a pure state machine over a :class:`BackfillPlan`.

Run states: ``waiting`` (an upstream run it reads is not done) -> ``ready`` -> ``running``
-> ``done``; a failed attempt goes to ``retrying`` (ready again at ``retry_at``) until the
processor's ``max_attempts``, then ``failed``; a run whose upstream failed is ``blocked``.
No clock, no I/O: the caller passes ``now`` (seconds) and persists the states.

Invariants:

* A run is handed out (``take``) only when every run it depends on is ``done``.
* A failure blocks exactly the runs that read the failed run, transitively; every other
  run keeps going ("unrelated branches are not held up").
* ``done`` is final: ``complete`` on a done run is ignored, and nothing done is handed out
  again (resume restores done runs as done; every other run starts over, so a re-run
  retries what failed).
* A run's attempts are numbered across invocations: restored with N attempts, its next
  one is N + 1, so no two attempts of a run ever share a number (the targets executor
  derives each attempt's trigger id from it). ``max_attempts`` and the backoff count the
  attempts of this invocation: a re-run gets the processor's attempts afresh.
* Each processor has at most ``concurrency[processor]`` runs ``running`` at once (its
  target's concurrency), and the whole backfill at most ``max_running``.

Readiness is tracked by "watching": a waiting run watches the first not-done run it
depends on and is re-examined only when that run finishes -- O(total edge intervals)
work for a whole season instead of re-scanning every waiting run on every completion.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left, insort
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from scoperouter.backfill.plan import BackfillPlan

State = Literal["waiting", "ready", "running", "retrying", "done", "failed", "blocked"]
STATES: tuple[State, ...] = (
    "waiting", "ready", "running", "retrying", "done", "failed", "blocked",
)  # fmt: skip
FINAL: frozenset[str] = frozenset({"done", "failed", "blocked"})


@dataclass(frozen=True, slots=True)
class Policy:
    """Per processor: attempts before a run fails, and runs in flight at once."""

    max_attempts: int = 3
    concurrency: int = 4
    backoff_s: float = 1.0  # first retry after backoff_s, doubling, capped at 60 s

    def delay(self, attempt: int) -> float:
        return float(min(60.0, self.backoff_s * (2 ** max(0, attempt - 1))))


@dataclass(frozen=True, slots=True)
class Transition:
    """One state change (the runner persists and reports these)."""

    index: int
    state: State
    attempts: int
    error: str | None = None
    retry_at: float | None = None


class Scheduler:
    """Hands out ready runs in plan order (date, then upstream first)."""

    def __init__(
        self,
        plan: BackfillPlan,
        policies: Mapping[str, Policy],
        *,
        max_running: int = 8,
        restored: Mapping[int, tuple[State, int]] | None = None,
    ) -> None:
        # a limit under 1 starts nothing: the runner would end at once, every run waiting
        if max_running < 1:
            raise ValueError(f"max_running must be at least 1, got {max_running}")
        low = sorted(n for n, p in policies.items() if p.concurrency < 1)
        if low:
            raise ValueError(f"concurrency must be at least 1 (processors {', '.join(low)})")
        self.plan = plan
        self.policies = dict(policies)
        self.max_running = max_running
        n = len(plan.runs)
        self.state: list[State] = ["waiting"] * n
        self.attempts = [0] * n  # attempts of each run, earlier invocations' included
        self._before = [0] * n  # ... of those, made before this invocation (restored)
        self.retry_at: dict[int, float] = {}
        self._ready: list[int] = []  # heap of indexes (plan order)
        self._running_per: dict[str, int] = {}
        self.running = 0
        # per processor: sorted planned days not yet done, and day -> run index
        self._undone: dict[str, list[int]] = {p: [] for p in plan.processors}
        self._at: dict[tuple[str, int], int] = {}
        self._watchers: dict[int, list[int]] = {}
        for i, r in enumerate(plan.runs):
            self._at[(r.processor, r.day.toordinal())] = i
        restored = restored or {}
        for i, r in enumerate(plan.runs):
            st, att = restored.get(i, ("waiting", 0))
            self.attempts[i] = self._before[i] = att
            if st == "done":  # final; anything else starts over with fresh attempts
                self.state[i] = "done"
            else:
                insort(self._undone[r.processor], r.day.toordinal())
        for i, _r in enumerate(plan.runs):  # plan order: upstreams are examined first
            if self.state[i] == "waiting":
                self._examine(i)

    # ------------------------------------------------------------------ readiness
    def _blocker(self, i: int) -> int | None:
        """The first not-done run ``i`` depends on, or None when it can run."""
        for dep in self.plan.runs[i].deps:
            days = self._undone.get(dep.upstream, [])
            k = bisect_left(days, dep.lo.toordinal())
            if k < len(days) and days[k] <= dep.hi.toordinal():
                return self._at[(dep.upstream, days[k])]
        return None

    def _examine(self, i: int) -> list[Transition]:
        """Re-evaluate a waiting run: ready, blocked, or watch its next blocker."""
        b = self._blocker(i)
        if b is None:
            self.state[i] = "ready"
            heapq.heappush(self._ready, i)
            return []
        if self.state[b] in ("failed", "blocked"):
            return self._block(i)
        self._watchers.setdefault(b, []).append(i)
        return []

    def _block(self, i: int) -> list[Transition]:
        out: list[Transition] = []
        todo = [i]
        while todo:
            j = todo.pop()
            if self.state[j] in FINAL:
                continue
            self.state[j] = "blocked"
            out.append(Transition(j, "blocked", self.attempts[j], "upstream_failed"))
            todo.extend(self._watchers.pop(j, ()))
        return out

    # ------------------------------------------------------------------ driver API
    def take(self, now: float) -> list[int]:
        """Runs to start now (marked running), within the concurrency limits."""
        for i, at in list(self.retry_at.items()):
            if at <= now:
                del self.retry_at[i]
                self.state[i] = "ready"
                heapq.heappush(self._ready, i)
        out: list[int] = []
        skipped: list[int] = []
        while self._ready and self.running < self.max_running:
            i = heapq.heappop(self._ready)
            if self.state[i] != "ready":
                continue
            p = self.plan.runs[i].processor
            if self._running_per.get(p, 0) >= self.policy(p).concurrency:
                skipped.append(i)
                continue
            self.state[i] = "running"
            self.attempts[i] += 1
            self._running_per[p] = self._running_per.get(p, 0) + 1
            self.running += 1
            out.append(i)
        for i in skipped:
            heapq.heappush(self._ready, i)
        return out

    def policy(self, processor: str) -> Policy:
        return self.policies.get(processor, Policy())

    def _stop(self, i: int) -> None:
        p = self.plan.runs[i].processor
        self._running_per[p] -= 1
        self.running -= 1

    def complete(self, i: int) -> list[Transition]:
        """Run ``i`` finished successfully; returns the state changes it caused."""
        if self.state[i] != "running":
            return []
        self._stop(i)
        self.state[i] = "done"
        r = self.plan.runs[i]
        days = self._undone[r.processor]
        k = bisect_left(days, r.day.toordinal())
        if k < len(days) and days[k] == r.day.toordinal():
            days.pop(k)
        out = [Transition(i, "done", self.attempts[i])]
        for w in self._watchers.pop(i, ()):
            if self.state[w] == "waiting":
                out.extend(self._examine(w))
        return out

    def fail(self, i: int, error: str, now: float) -> list[Transition]:
        """Run ``i`` failed: retry after a backoff, or fail for good and block its readers."""
        if self.state[i] != "running":
            return []
        self._stop(i)
        pol = self.policy(self.plan.runs[i].processor)
        tried = self.attempts[i] - self._before[i]  # attempts of this invocation
        if tried < pol.max_attempts:
            at = now + pol.delay(tried)
            self.state[i] = "retrying"
            self.retry_at[i] = at
            return [Transition(i, "retrying", self.attempts[i], error, at)]
        self.state[i] = "failed"
        out = [Transition(i, "failed", self.attempts[i], error)]
        for w in self._watchers.pop(i, ()):
            out.extend(self._block(w))
        return out

    # ------------------------------------------------------------------ queries
    @property
    def finished(self) -> bool:
        return all(s in FINAL for s in self.state)

    def next_retry(self) -> float | None:
        return min(self.retry_at.values()) if self.retry_at else None

    def counts(self, indexes: Iterable[int] | None = None) -> dict[str, int]:
        c: dict[str, int] = dict.fromkeys(STATES, 0)
        for i in indexes if indexes is not None else range(len(self.state)):
            c[self.state[i]] += 1
        return c

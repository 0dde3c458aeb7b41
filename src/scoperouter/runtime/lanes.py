"""Per-target lanes of the dispatcher and what the pump asks the store for (pure: no
I/O, times passed in).

Invariant: a lane never asks for rows it holds (in flight or buffered: ``exclude``), asks
only when it has room (or a half-open breaker wants its one probe, which may take a row
not yet due), and keeps what changed while a page was being read (``fresh``,
``local_due``, ``started``), so no waiting row is forgotten and none starts twice.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from scoperouter.processor_registry.model_targets import TargetSpec
from scoperouter.runtime.backlog import LanePage, LaneRequest
from scoperouter.runtime.breaker import Breaker
from scoperouter.runtime.sinks import Sink
from scoperouter.runtime.store import PendingTrigger

PAGE_ROWS = 256  # rows paged per target at once (started as slots free up, no store trip)


@dataclass
class Lane:
    """One processor's target: its in-flight rows, breaker and what waits in the store."""

    name: str
    target: TargetSpec
    sink: Sink | None
    breaker: Breaker
    horizon_s: float
    inflight: set[int] = field(default_factory=set)  # rows being delivered
    batch: int = 1  # rows one delivery may carry (a batching sink: the outbox)
    busy: int = 0  # deliveries in flight (each holds one slot, carrying 1..batch rows)
    has_due: bool = False  # rows may be due now in the store
    next_due: float | None = None  # the next later availability of a waiting row
    last_expire: float = float("-inf")
    fresh: bool = False  # rows were left in the store since the last page request
    local_due: float | None = None  # earliest retry deferred since the last page request
    # rows started since the last page request: the page may still show them pending
    # (their outcome mark is not written yet), they must not start twice
    started: set[int] = field(default_factory=set)
    buffer: deque[PendingTrigger] = field(default_factory=deque)  # paged, not started yet

    @property
    def free(self) -> int:
        return self.target.concurrency - self.busy

    def take_page(self, pg: LanePage) -> None:
        """A page came back: what changed while it was read (new rows, deferred
        attempts) is kept; its rows join the buffer unless started meanwhile."""
        self.has_due = (pg.more if pg.asked else self.has_due) or self.fresh
        nd = [t for t in (pg.next_due, self.local_due) if t is not None]
        self.next_due = min(nd) if nd else None
        known = {r.row_id for r in self.buffer}
        for r in pg.rows:
            rid = r.row_id
            if rid not in self.inflight and rid not in self.started and rid not in known:
                self.buffer.append(r)

    def wants_rows(self, slots: int) -> bool:
        """Room to start deliveries and too few paged rows to fill it."""
        return slots > 0 and len(self.buffer) < self.target.concurrency * self.batch


def pump_delay(lanes: Iterable[Lane], now: float, interval: float) -> float:
    """Seconds the pump may sleep: 0 when a lane has room and due rows; else until the
    next breaker probe or deferred row, at most ``interval``."""
    delay = interval
    for ln in lanes:
        slots = ln.breaker.slots(now, ln.free)
        if ln.breaker.state == "open":
            delay = min(delay, ln.breaker.open_until - now)
        elif ln.wants_rows(slots):
            if ln.has_due:
                return 0.0
            if ln.next_due is not None:
                delay = min(delay, ln.next_due - now)
    return max(0.0, delay)


def requests(lanes: Iterable[Lane], now: float, interval: float) -> list[LaneRequest]:
    """What to page now, per lane (and every 60 intervals a sweep of each lane)."""
    out = []
    for ln in lanes:
        slots = ln.breaker.slots(now, ln.free)
        # a sweep now and then: rows past the horizon, rows redriven from outside
        sweep = now - ln.last_expire >= interval * 60
        due = ln.has_due or (ln.next_due is not None and ln.next_due <= now) or sweep
        probe = ln.breaker.state == "half_open"
        wants = ln.wants_rows(slots)
        if (wants and (due or probe)) or sweep:
            if sweep:
                ln.last_expire = now
            ln.fresh, ln.local_due = False, None
            out.append(
                LaneRequest(
                    ln.name,
                    (1 if probe else PAGE_ROWS - len(ln.buffer)) if wants and (due or probe) else 0,
                    frozenset(ln.inflight.union(r.row_id for r in ln.buffer)),
                    now - ln.horizon_s if sweep else None,
                    float("inf") if probe else now,  # a probe takes the oldest row
                )
            )
    return out

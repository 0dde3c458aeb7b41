"""Per-target lanes of the dispatcher and what the pump asks the store for (pure: no
I/O, times passed in).

Invariant: a lane never asks for rows it holds (in flight or buffered: ``exclude``) nor
rows done or dead whose mark another state job is writing (``unwritten``), asks only
when it has room (or a half-open breaker wants its one probe, which may take a row not
yet due), keeps what changed while a page was being read (``fresh``, ``local_due``,
``started``) and, when a page asks no rows, what the clock made due, so no waiting row
is forgotten and none starts twice.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from scoperouter.processor_registry.model_targets import TargetSpec
from scoperouter.runtime.backlog import LanePage, LaneRequest
from scoperouter.runtime.breaker import Breaker
from scoperouter.runtime.marks import NOTHING_UNWRITTEN, Unwritten
from scoperouter.runtime.sinks import Sink
from scoperouter.runtime.store import PendingTrigger

PAGE_ROWS = 256  # rows paged per target at once (started as slots free up, no store trip)
# a page that left due rows another transaction held (a state store's row lock, skipped):
# the lane asks again after this pause, doubled per such page in a row, at most the pump
# interval -- the lock is a short transaction's (a lease renewal, another replica's page),
# and a replica frozen inside one is not paged in a tight loop
HELD_RETRY_S = 0.05

# What a lane knows of its rows in the store, event by event ("page out": a page job between
# ``requests`` and ``take_page``; "-": unchanged):
#
#   event                                   has_due             next_due      fresh, local_due
#   fired, lane has room and nothing due    -                   -             - (row in flight)
#   fired, slots busy, nothing due, room    -                   -             - (row buffered)
#   fired otherwise, rows_waiting           True (rows_left)    -             fresh = True
#   breaker opens (_park gives buffer back) True (rows_left)    -             fresh = True
#   page answers while breaker open (_park) True (rows_left)    -             fresh = True
#   breaker closes (Redrive mark)           True (rows_left)    -             fresh = True
#   attempt failed, due again at t          -                   min(., t)     local_due min(., t)
#   request that asks rows                  -                   -             reset (*)
#   request that asks none (a busy sweep)   |= next_due <= now  -             reset (*)
#   page answers, rows asked                more or fresh       min(page, local_due)
#   page answers, none asked                has_due or fresh    min(page, local_due)
#   page answers, rows asked, rows held     (as asked)          (as asked)    held += 1
#   page answers, rows asked, none held     (as asked)          (as asked)    held = 0
#   attempt done or dead                    -                   -             - (row leaves)
#
# (*) what another state job took and has not written yet (``unwritten``) the page cannot
# see in the store: local_due is reset to the lane's earliest such retry, and fresh stays
# True while such a Redrive of the lane is out.
#
# A page reports only rows due at its ``now`` (``more``), later ones (``next_due`` >
# now) and due rows it skipped because another transaction held them (``held``: the lane
# asks again after ``held_pause``, however the clock moves), so the rule that keeps
# ``quiet`` honest is: every row of the target pending in the store and not held by the
# lane (in flight, buffered) is covered by has_due, held, or by a next_due no later than it
# comes due (tests/runtime/test_lane_liveness.py checks it in every interleaving).


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
    held: int = 0  # pages in a row that left due rows another transaction held
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
        if pg.asked:
            self.held = self.held + 1 if pg.held else 0
        nd = [t for t in (pg.next_due, self.local_due) if t is not None]
        self.next_due = min(nd) if nd else None
        known = {r.row_id for r in self.buffer}
        for r in pg.rows:
            rid = r.row_id
            if rid not in self.inflight and rid not in self.started and rid not in known:
                self.buffer.append(r)

    def rows_left(self) -> None:
        """Rows of this lane wait due in the store (new, given back, redriven): due now, and
        a page out now (which did not see them, or excluded them) must not clear that."""
        self.has_due = self.fresh = True

    def deferred(self, at: float) -> None:
        """A row of this lane failed and waits in the store until ``at``."""
        self.next_due = at if self.next_due is None else min(self.next_due, at)
        self.local_due = at if self.local_due is None else min(self.local_due, at)

    def wants_rows(self, slots: int) -> bool:
        """Room to start deliveries and too few paged rows to fill it."""
        return slots > 0 and len(self.buffer) < self.target.concurrency * self.batch


def holds_fired(lane: Lane) -> bool:
    """A trigger fired here while every slot of ``lane`` is busy waits in the lane's buffer
    for the next free slot, instead of going back to the store to be paged again (a state
    transaction, and a store round trip for the row), when nothing of the lane waits in the
    store before it and the buffer holds less than a full round of deliveries."""
    return (
        not lane.has_due
        and lane.breaker.state == "closed"
        and len(lane.buffer) < lane.target.concurrency * lane.batch
    )


def held_pause(held: int, interval: float) -> float:
    """Seconds before a lane whose last ``held`` pages left locked due rows asks again."""
    return min(interval, HELD_RETRY_S * float(2 ** min(held - 1, 16)))


def pump_delay(lanes: Iterable[Lane], now: float, interval: float) -> float:
    """Seconds the pump may sleep: 0 when a lane has room and due rows; else until the
    next breaker probe, deferred row or retry of rows another transaction held, at most
    ``interval``."""
    delay = interval
    for ln in lanes:
        slots = ln.breaker.slots(now, ln.free)
        if ln.breaker.state == "open":
            delay = min(delay, ln.breaker.open_until - now)
        elif ln.wants_rows(slots):
            if ln.has_due:
                return 0.0
            if ln.held:
                delay = min(delay, held_pause(ln.held, interval))
            if ln.next_due is not None:
                delay = min(delay, ln.next_due - now)
    return max(0.0, delay)


def requests(
    lanes: Iterable[Lane],
    now: float,
    interval: float,
    unwritten: Unwritten = NOTHING_UNWRITTEN,
    horizon_now: Callable[[float, float], float] = lambda now, horizon: now,
) -> list[LaneRequest]:
    """What to page now, per lane (and every 60 intervals a sweep of each lane: rows
    created before ``horizon_now(now, lane horizon) - horizon`` are past it; the
    dispatcher's is its :class:`~scoperouter.runtime.bounded_clock.BoundedClock`'s);
    ``unwritten``: outcomes decided but still being written by another state job, which
    the page cannot see in the snapshot + journal store: rows done or dead are excluded
    like the rows a lane holds, a deferred row's time stays known (``local_due``) and a
    redriven lane stays due (``fresh``)."""
    out = []
    for ln in lanes:
        slots = ln.breaker.slots(now, ln.free)
        # a sweep now and then: rows past the horizon, rows redriven from outside
        sweep = now - ln.last_expire >= interval * 60
        due_now = ln.has_due or (ln.next_due is not None and ln.next_due <= now)
        probe = ln.breaker.state == "half_open"
        asks = ln.wants_rows(slots) and (due_now or ln.held > 0 or sweep or probe)
        if asks or sweep:
            if sweep:
                ln.last_expire = now
            # a page that asks no rows says nothing of rows due now and reports only later
            # ones (``next_due`` > now): rows that came due by the clock stay known as due
            if not asks:
                ln.has_due = due_now
            ln.fresh = ln.name in unwritten.redriven
            ln.local_due = unwritten.due.get(ln.name)
            out.append(
                LaneRequest(
                    ln.name,
                    (1 if probe else PAGE_ROWS - len(ln.buffer)) if asks else 0,
                    frozenset(ln.inflight.union((r.row_id for r in ln.buffer), unwritten.rows)),
                    horizon_now(now, ln.horizon_s) - ln.horizon_s if sweep else None,
                    float("inf") if probe else now,  # a probe takes the oldest row
                    ln.breaker.state != "closed",  # untried rows wait on a failing target
                )
            )
    return out

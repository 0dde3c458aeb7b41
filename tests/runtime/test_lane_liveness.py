"""The dispatcher never reports quiet while work it knows of is unfinished: outcome marks
still being written, a page still out, or a lane's row waiting due in the store (driven
step by step: no sleeps, no wall clock)."""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Callable, Coroutine
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from runtime_support import RouterFactory, date_trigger, load, write_registry

from scoperouter.errors import DispatchError
from scoperouter.messages.models import Trigger
from scoperouter.processor_registry.loader import LoadedConfig
from scoperouter.runtime.backlog import LanePage, LaneRequest, page
from scoperouter.runtime.dispatcher import Dispatcher
from scoperouter.runtime.lanes import HELD_RETRY_S, Lane, pump_delay, requests
from scoperouter.runtime.log_bridge import LogBridge
from scoperouter.runtime.marks import Dead, Done, DoneMany, Mark, MarkQueue, write_marks
from scoperouter.runtime.metrics import Metrics
from scoperouter.runtime.options import RouterOptions
from scoperouter.runtime.payloads import trigger_bytes
from scoperouter.runtime.store import Store

SPINS = 50  # event-loop turns that let a task run as far as it can without the state thread


async def test_idle_waits_for_marks_a_state_job_is_still_writing(
    tmp_path: Path, make_router: RouterFactory
) -> None:
    """idle() returns only once outcome marks taken by an earlier job (the mark flusher's write) are in the store."""
    r = make_router(load(write_registry(tmp_path / "r", default_target={"outbox": {}})))
    with r.store.transaction():
        row = r.store.insert_trigger("t1", "p", "{}", 1.0)
    gate = threading.Event()
    r._state.submit(gate.wait)  # the state thread is busy: jobs queue behind this one
    r.marks.append(Done(row, 1, 2.0))
    flusher = asyncio.create_task(r._flush_marks())  # takes the mark; its write waits
    idle = asyncio.create_task(r.idle(timeout=60))
    for _ in range(SPINS):
        await asyncio.sleep(0)
    early = idle.done()
    counts_then = r.store.trigger_counts()
    gate.set()
    assert await idle
    await flusher
    assert not early, f"idle() returned while the mark was unwritten: {counts_then}"
    assert r.store.trigger_counts() == {"done": 1}


# ---------------------------------------------------------------- lanes, step by step
T0 = 1_763_000_000.0
DAY = date(2025, 11, 19)


def make_dispatcher(cfg: LoadedConfig, clock: Callable[[], float], **options: Any) -> Stepped:
    reg = cfg.registry
    return Stepped(reg, {p: FLAKY for p in reg.processors}, None, Metrics(),
                   RouterOptions(**options), Finishing(), LogBridge(None, reg), None, clock,
                   random.Random(7))  # fmt: skip


def trigger(n: int, processor: str) -> Trigger:
    return date_trigger(n, processor)


def insert(store: Store, n: int, processor: str, now: float) -> tuple[int, Trigger, bytes]:
    t = trigger(n, processor)
    body = trigger_bytes(t)
    with store.transaction():
        return store.insert_trigger(t.trigger_id, processor, body.decode(), now), t, body


def knows(lane: Lane, store: Store, now: float) -> bool:
    """The oracle: the lane will page every row of its target waiting in the store (not in
    flight, not paged) -- it holds it due now, or is woken no later than it comes due."""
    held = lane.inflight | {r.row_id for r in lane.buffer}
    waiting = [
        at
        for rid, at in store._db.execute(
            "SELECT id, available_at FROM triggers WHERE status = 'pending' AND processor = ?",
            (lane.name,),
        )
        if rid not in held
    ]
    if not waiting:
        return True
    return lane.has_due or (lane.next_due is not None and lane.next_due <= max(min(waiting), now))


def test_a_sweep_that_asks_no_rows_keeps_rows_due_by_the_clock(
    tmp_path: Path, zero_cfg: LoadedConfig
) -> None:
    """A lane with every slot busy gets a sweep page (no rows asked) after its deferred row came due: the lane still holds that row due and pages it once a slot frees."""
    now = T0
    d = make_dispatcher(zero_cfg, lambda: now)
    store = Store(tmp_path / "s.sqlite3", sync="normal")
    proc = next(iter(zero_cfg.registry.processors))
    lane = d.lane(proc)
    a, _, _ = insert(store, 1, proc, now)
    with store.transaction():
        store.defer(a, 1, now + 5.0, "boom")  # a failed once: due again at +5 s
    lane.deferred(now + 5.0)
    lane.last_expire = now  # the first sweep was just now
    lane.inflight |= set(range(100, 100 + lane.target.concurrency))  # every slot busy
    lane.busy = lane.target.concurrency
    now += 60.0  # past a's availability, and a sweep is due (60 pump intervals)
    [rq] = requests([lane], now, 1.0)
    assert rq.slots == 0 and rq.expire_before is not None  # a sweep, no rows asked
    [pg] = page(store, [], [rq], now)
    lane.take_page(pg)
    assert knows(lane, store, now), (lane.has_due, lane.next_due)
    lane.inflight.clear()  # the busy deliveries end: a slot frees
    lane.busy = 0
    [rq] = requests([lane], now + 0.1, 1.0)
    [pg] = page(store, [], [rq], now + 0.1)
    assert [r.row_id for r in pg.rows] == [a]


@pytest.mark.parametrize(
    ("held_pages", "pause"),
    [(1, HELD_RETRY_S), (2, 2 * HELD_RETRY_S), (3, 4 * HELD_RETRY_S), (40, 1.0)],
)
def test_a_lane_whose_due_rows_were_held_elsewhere_asks_again_after_a_pause(
    zero_cfg: LoadedConfig, held_pages: int, pause: float
) -> None:
    """Pages that left due rows another transaction held keep the lane due with the clock standing still: it asks again after a pause doubling per such page (at most the pump interval), is not quiet meanwhile, and one page with none held ends it."""
    now = T0
    d = make_dispatcher(zero_cfg, lambda: now)
    lane = d.lane(next(iter(zero_cfg.registry.processors)))
    lane.last_expire = now  # no sweep due
    for _ in range(held_pages):
        lane.take_page(LanePage(lane.name, [], False, None, [], asked=True, held=True))
    assert (lane.has_due, lane.next_due, lane.held) == (False, None, held_pages)
    assert pump_delay([lane], now, 1.0) == pytest.approx(pause)
    assert not d.quiet
    [rq] = requests([lane], now, 1.0)  # the clock stood still: it asks all the same
    assert rq.slots > 0
    lane.take_page(LanePage(lane.name, [], False, None, [], asked=True))
    assert (lane.held, pump_delay([lane], now, 1.0), requests([lane], now, 1.0), d.quiet) == (
        0,
        1.0,
        [],
        True,
    )


def test_a_sweep_page_keeps_what_the_last_asked_page_held(zero_cfg: LoadedConfig) -> None:
    """A page that asked no rows (a sweep) says nothing of held rows: the lane still asks again."""
    d = make_dispatcher(zero_cfg, lambda: T0)
    lane = d.lane(next(iter(zero_cfg.registry.processors)))
    lane.take_page(LanePage(lane.name, [], False, None, [], asked=True, held=True))
    lane.take_page(LanePage(lane.name, [], False, None, [], asked=False))
    assert lane.held == 1 and [rq.slots > 0 for rq in requests([lane], T0, 1.0)] == [True]


def test_a_page_reports_more_when_it_left_due_rows_out(tmp_path: Path) -> None:
    """Rows held by the lane that are not due (a probe's row) make the page fetch fewer than it allows: rows it leaves out still count as more."""
    store = Store(tmp_path / "s.sqlite3", sync="normal")
    ids = [insert(store, n, "p", T0)[0] for n in range(4)]
    with store.transaction():
        for rid in ids[2:]:
            store.defer(rid, 1, T0 + 60.0, "boom")  # held by the lane, due later
    rq = LaneRequest("p", 1, frozenset(ids[2:]), None, T0)
    [pg] = page(store, [], [rq], T0)
    assert [r.row_id for r in pg.rows] == ids[:1]
    assert pg.more


# ------------------------------------------------- a state machine against the oracle
class FlakySink:
    """Fails (retryable) while ``down``; the test steps each delivery by hand."""

    name = "flaky"
    down = False

    async def send(self, trigger: Trigger, *, message_id: str, body: bytes | None = None) -> None:
        if self.down:
            raise DispatchError(trigger.processor, self.name, "target down")

    async def close(self) -> None:
        return None


FLAKY = FlakySink()


class Finishing(MarkQueue):
    """The dispatcher's marks, remembering every row a Done or Dead mark finished."""

    def __init__(self) -> None:
        super().__init__()
        self.finished: set[int] = set()

    def append(self, mark: Mark) -> None:
        if isinstance(mark, DoneMany):
            self.finished.update(mark.row_ids)
        elif isinstance(mark, Done | Dead):
            self.finished.add(mark.row_id)
        super().append(mark)


class Stepped(Dispatcher):
    """The dispatcher with its delivery tasks held: the test runs each when it chooses."""

    marks: Finishing

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.held: list[Coroutine[Any, Any, None]] = []

    def _spawn(self, coro: Any) -> None:
        self.held.append(coro)

    def _start_rows(self, lane: Lane, rows: list[Any], mode: str) -> None:
        ids = [r[0] for r in rows]
        assert len(set(ids)) == len(ids) and not lane.inflight.intersection(ids), (
            f"a row started twice at once: {ids} / {sorted(lane.inflight)}"
        )
        again = self.marks.finished.intersection(ids)
        assert not again, f"a row started again after its outcome: {sorted(again)}"
        super()._start_rows(lane, rows, mode)


class LaneMachine(RuleBasedStateMachine):
    """The pump's steps (drain, request, the state thread's page, apply), deliveries that
    succeed or fail, new and outside rows, mark flushes and the clock, in any order."""

    cfg: LoadedConfig

    def __init__(self) -> None:
        super().__init__()
        self.now = T0
        self.d = make_dispatcher(
            self.cfg, lambda: self.now, breaker_threshold=2, backoff_base_s=1.0,
            backoff_cap_s=4.0, pump_interval_s=0.02,
        )  # fmt: skip
        self.d._run_state = lambda *a: None  # type: ignore[assignment,return-value]  # pump on
        self.store = Store(":memory:", sync="off")
        self.procs = sorted(self.cfg.registry.processors)[:2]
        self.n = 0
        self.jobs: list[tuple[str, Any]] = []  # the state thread's queue (FIFO)
        self.page_out: tuple[float, list[LanePage] | None] | None = None

    def teardown(self) -> None:
        for c in self.d.held:
            c.close()
        self.store._db.close()

    @rule(which=st.integers(0, 1), outside=st.booleans())
    def new_row(self, which: int, outside: bool) -> None:
        """A window fired here (``fired``), or another replica's row is announced."""
        self.n += 1
        proc = self.procs[which]
        committed = insert(self.store, self.n, proc, self.now)
        if outside:
            self.d.rows_waiting([proc])
        else:
            self.d.fired([committed])

    @rule(dt=st.sampled_from([0.01, 0.3, 1.0, 3.0]))  # a sweep every 1.2 s
    def tick(self, dt: float) -> None:
        self.now += dt

    # the steps, each a rule when it can happen (no no-op steps: the search goes deeper)
    def _request(self) -> None:
        for ln in self.d.lanes.values():
            self.d._drain(ln)
        rqs = requests(
            self.d.lanes.values(), self.now, self.d.options.pump_interval_s,
            self.d.marks.unwritten(),
        )  # fmt: skip
        if rqs:
            self.d._paging = True
            self.page_out = (self.now, None)
            self.jobs.append(("page", (self.d.marks.take(), rqs, self.now)))

    def _run_job(self) -> None:
        kind, job = self.jobs.pop(0)
        if kind == "marks":
            with self.store.transaction():
                write_marks(self.store, job)
            self.d.marks.written(job)
        elif kind == "failing marks":  # its transaction fails: the marks go back to the queue
            self.d.marks.put_back(job)
        else:
            assert self.page_out is not None
            self.page_out = (self.page_out[0], page(self.store, *job))
            self.d.marks.written(job[0])

    def _apply(self) -> None:
        assert self.page_out is not None and self.page_out[1] is not None
        at, pages = self.page_out
        self.page_out = None
        self.d._paging = False
        for pg in pages:
            self.d._apply_page(pg, at)
        for ln in self.d.lanes.values():
            ln.started.clear()

    @precondition(lambda self: self.page_out is None)
    @rule()
    def pump_request(self) -> None:
        """The pump's top: drain, then send its requests and marks to the state thread."""
        self._request()

    @precondition(lambda self: bool(self.d.marks))
    @rule(fails=st.booleans())
    def flush_marks(self, fails: bool) -> None:
        """The mark flusher's write goes to the state thread (``fails``: its transaction
        will fail, as on a full disk, while a page that writes nothing succeeds)."""
        self.jobs.append(("failing marks" if fails else "marks", self.d.marks.take()))

    @precondition(lambda self: bool(self.jobs))
    @rule()
    def state_thread(self) -> None:
        """The state thread runs its oldest job."""
        self._run_job()

    @precondition(lambda self: self.page_out is not None and self.page_out[1] is not None)
    @rule()
    def pump_apply(self) -> None:
        """The pump takes the page's answer."""
        self._apply()

    @precondition(lambda self: self.page_out is None)
    @rule()
    def pump_round(self) -> None:
        """A whole pump turn with nothing in between: request, the state thread, apply."""
        self._request()
        while self.jobs:
            self._run_job()
        if self.page_out is not None:
            self._apply()

    @precondition(lambda self: bool(self.d.marks or self.jobs))
    @rule()
    def flush_round(self) -> None:
        """The mark flusher's write, done before anything else happens."""
        if self.d.marks:
            self.jobs.append(("marks", self.d.marks.take()))
        while self.jobs:
            self._run_job()

    @precondition(lambda self: bool(self.d.held))
    @rule(pick=st.integers(0, 10**6), down=st.booleans())
    def deliver(self, pick: int, down: bool) -> None:
        """One held delivery runs to its end (the target up or down)."""
        coro = self.d.held.pop(pick % len(self.d.held))
        FLAKY.down = down
        try:
            coro.send(None)
        except StopIteration:
            return
        raise AssertionError("a delivery awaited something besides its sink")  # pragma: no cover

    @invariant()
    def no_row_is_held_twice(self) -> None:
        for ln in self.d.lanes.values():
            held = [r.row_id for r in ln.buffer]
            assert len(set(held)) == len(held) and not ln.inflight.intersection(held), (
                ln.name,
                held,
                sorted(ln.inflight),
            )

    @invariant()
    def no_lane_forgets_a_waiting_row(self) -> None:
        if self.page_out is not None or self.jobs or self.d.marks:
            return  # the store is not settled: marks are queued or a page is out
        for ln in self.d.lanes.values():
            assert knows(ln, self.store, self.now), (ln.name, ln.has_due, ln.next_due)


# step sequences the search found once a mark flusher's write could fail (its marks put
# back): each step is a rule of LaneMachine, with the invariants checked after it
FAILED_WRITES = {
    "a delivered row whose Done mark failed is not paged again": [
        ("new_row", {"outside": False, "which": 0}), ("deliver", {"down": False, "pick": 0}),
        ("flush_marks", {"fails": True}), ("pump_round", {}), ("flush_round", {}),
    ],
    "a retried row whose Retry mark failed stays known when due": [
        ("new_row", {"outside": False, "which": 0}), ("deliver", {"down": True, "pick": 0}),
        ("flush_marks", {"fails": True}), ("pump_round", {}), ("flush_round", {}),
    ],
    "a busy lane's sweep keeps the time of a row whose Retry mark failed": [
        ("new_row", {"outside": False, "which": 0}), ("new_row", {"outside": False, "which": 0}),
        ("deliver", {"down": True, "pick": 0}), ("new_row", {"outside": False, "which": 0}),
        ("flush_marks", {"fails": True}), ("pump_round", {}), ("flush_round", {}),
    ],
    "a lane whose Redrive mark failed stays due": [
        ("new_row", {"outside": False, "which": 0}), ("pump_request", {}),
        ("deliver", {"down": True, "pick": 0}), ("flush_round", {}), ("pump_apply", {}),
        ("new_row", {"outside": False, "which": 0}), ("new_row", {"outside": False, "which": 0}),
        ("deliver", {"down": True, "pick": 0}), ("deliver", {"down": False, "pick": 0}),
        ("flush_marks", {"fails": True}), ("pump_round", {}), ("flush_round", {}),
    ],
    "a retried row whose Retry mark is out, then redriven, is paged when due": [
        ("new_row", {"outside": False, "which": 1}), ("pump_request", {}),
        ("new_row", {"outside": False, "which": 0}), ("flush_round", {}), ("pump_apply", {}),
        ("new_row", {"outside": True, "which": 1}), ("pump_request", {}),
        ("deliver", {"down": False, "pick": 1}), ("deliver", {"down": True, "pick": 0}),
        ("new_row", {"outside": False, "which": 0}), ("new_row", {"outside": False, "which": 1}),
        ("flush_marks", {"fails": True}), ("flush_round", {}),
        ("deliver", {"down": False, "pick": 0}), ("pump_apply", {}),
        ("flush_marks", {"fails": False}), ("deliver", {"down": True, "pick": 0}),
        ("deliver", {"down": False, "pick": 0}), ("pump_round", {}),
    ],
}  # fmt: skip


@pytest.mark.parametrize("steps", FAILED_WRITES.values(), ids=list(FAILED_WRITES))
def test_a_failed_mark_write_neither_restarts_nor_hides_a_row(
    tmp_path: Path, steps: list[tuple[str, dict[str, Any]]]
) -> None:
    """Outcome marks a failed write put back: no row starts again after its outcome, and no lane forgets a row that waits (the state machine's invariants after each step)."""
    LaneMachine.cfg = load(
        write_registry(tmp_path, default_target={"outbox": {}, "concurrency": 2})
    )
    m = LaneMachine()
    try:
        for rule_name, kwargs in steps:
            getattr(m, rule_name)(**kwargs)
            m.no_row_is_held_twice()
            m.no_lane_forgets_a_waiting_row()
    finally:
        m.teardown()


@pytest.mark.timeout(600)  # ~10 s on an idle core
def test_lanes_never_forget_a_waiting_row(tmp_path: Path) -> None:
    """In any interleaving of pump steps, deliveries, new rows, flushes and time, no lane is idle while the store holds a row of its target that it does not hold."""
    # two slots per target: a few rows fill them (the busy lane's sweep)
    LaneMachine.cfg = load(
        write_registry(tmp_path, default_target={"outbox": {}, "concurrency": 2})
    )
    run_state_machine_as_test(
        LaneMachine,
        settings=settings(max_examples=500, stateful_step_count=80, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow]),
    )  # fmt: skip

"""Batch delivery (issue 16): a batching sink (the outbox) carries up to ``batch_max``
triggers per delivery, one slot of its lane each; every row still gets its own mark."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from runtime_support import date_trigger, game_day_stream, load, write_registry
from test_outage import Switch, submit_all, wait_until
from test_outage_state import counts, make_shared  # noqa: F401 (a fixture)

from scoperouter.errors import DispatchError
from scoperouter.messages.models import Trigger
from scoperouter.runtime.backlog import LanePage, LaneRequest
from scoperouter.runtime.dispatcher import Dispatcher
from scoperouter.runtime.log_bridge import LogBridge
from scoperouter.runtime.marks import Done, DoneMany, Mark, MarkQueue, Release, Retry, write_marks
from scoperouter.runtime.metrics import Metrics
from scoperouter.runtime.options import RouterOptions
from scoperouter.runtime.outbox import OutboxSink
from scoperouter.runtime.payloads import trigger_bytes
from scoperouter.runtime.store import Store

DAY = date(2025, 11, 19)
PROC = "player_game_summary"
STREAM = game_day_stream()


def _done(m: Mark) -> list[Done]:
    """``m``'s Done marks (a delivery's DoneMany: one per row)."""
    return m.each() if isinstance(m, DoneMany) else [m] if isinstance(m, Done) else []


def trigger(n: int) -> Trigger:
    return date_trigger(n, PROC, fired_at=datetime(2025, 11, 19, 12, tzinfo=UTC), width=4)


class Gate:
    """A sink that records each call and answers when ``open`` is set (``fail``: raises)."""

    def __init__(self, batch_max: int | None, fail: bool = False) -> None:
        self.name = "gate"
        self.calls: list[list[str]] = []
        self.open = asyncio.Event()
        self.fail = fail
        if batch_max is not None:
            self.batch_max = batch_max
            self.send_batch = self._send_batch

    async def _send_batch(self, items: list[tuple[Trigger, bytes | None]]) -> None:
        self.calls.append([t.trigger_id for t, _b in items])
        await self.open.wait()
        if self.fail:
            t = items[0][0]
            raise DispatchError(t.processor, self.name, "disk full", trigger_id=t.trigger_id)

    async def send(self, trigger: Trigger, *, message_id: str, body: bytes | None = None) -> None:
        await self._send_batch([(trigger, body)])

    async def close(self) -> None:
        return None


def dispatcher(tmp_path: Path, sink: Gate, concurrency: int) -> tuple[Dispatcher, MarkQueue]:
    cfg = load(write_registry(tmp_path, default_target={"outbox": {}, "concurrency": concurrency}))
    marks = MarkQueue()
    d = Dispatcher(cfg.registry, {PROC: sink}, None, Metrics(), RouterOptions(), marks,
                   LogBridge(None, cfg.registry), None, lambda: 1_763_560_000.0,
                   random.Random(1))  # fmt: skip
    return d, marks


async def _run(fn: Any, *args: Any) -> Any:
    await asyncio.sleep(0)
    return fn(*args)


class NoPages:
    """The store's pager: no rows wait; keeps the marks the pump writes with each page."""

    def __init__(self) -> None:
        self.marks: list[Any] = []

    def __call__(self, marks: Any, requests: list[LaneRequest], now: float) -> list[LanePage]:
        self.marks.extend(marks)
        return [LanePage(rq.processor, [], False, None, [], asked=rq.slots > 0) for rq in requests]


@pytest.mark.parametrize(
    ("batch_max", "concurrency", "fired", "calls", "held", "later"),
    [
        # a sink without send_batch: one trigger per delivery; 2 held for the next
        # free slots (one round of deliveries), the 5th waits in the store
        (None, 2, 5, [1, 1], 2, [1, 1]),
        (4, 2, 5, [4, 1], 0, []),  # one full delivery, then one with the rest
        (4, 2, 12, [4, 4], 4, [4]),  # both slots full: the other 4 wait for a free slot
        (4, 2, 20, [4, 4], 8, [4, 4]),  # one round (2 x 4) held, the last 4 in the store
        (64, 4, 10, [10], 0, []),  # one delivery carries the whole commit
    ],
)
async def test_fired_triggers_share_deliveries(
    tmp_path: Path,
    batch_max: int | None,
    concurrency: int,
    fired: int,
    calls: list[int],
    held: int,
    later: list[int],
) -> None:
    """Committed triggers start in deliveries of at most batch_max, one slot each; one more round waits in memory for free slots, the rest are released to the store; each delivered row is marked done."""
    sink = Gate(batch_max)
    d, marks = dispatcher(tmp_path, sink, concurrency)
    pager = NoPages()
    pump = d.start(_run, pager, [])
    try:
        d.fired([(i, trigger(i), trigger_bytes(trigger(i))) for i in range(fired)])
        await asyncio.sleep(0)
        assert [len(c) for c in sink.calls] == calls
        started = sum(calls)
        lane = d.lanes[PROC]
        assert lane.busy == len(calls) and len(lane.inflight) == started
        assert [r.row_id for r in lane.buffer] == list(range(started, started + held))
        for _ in range(5):  # a page the pump sent out meanwhile carries the marks
            await asyncio.sleep(0)
        for _ in range(100):  # ... once it wrote them (a page out holds the marks it took)
            if not d._paging:
                break
            await asyncio.sleep(0.01)
        written = pager.marks + marks.take()
        assert written == [Release(i) for i in range(started + held, fired)]
        pager.marks.clear()
        sink.open.set()
        for _ in range(100):  # (no page out: it holds the marks it took until it writes them)
            if not d.tasks and not d._paging:
                break
            await asyncio.sleep(0.01)
        assert lane.busy == 0 and not lane.inflight and not lane.buffer
        assert [len(c) for c in sink.calls] == calls + later
        done = [d for m in pager.marks + marks.take() for d in _done(m)]
        delivered = started + held
        assert sorted(m.row_id for m in done) == list(range(delivered))
        assert all(m.attempts == 1 for m in done)
    finally:
        await d.stop_pump()
        pump.cancel()


async def test_failed_batch_defers_each_row_naming_its_trigger(tmp_path: Path) -> None:
    """A batch the sink refuses (retryable) leaves each of its rows a Retry mark whose error names that row's trigger."""
    sink = Gate(8, fail=True)
    d, marks = dispatcher(tmp_path, sink, 1)
    pager = NoPages()
    pump = d.start(_run, pager, [])
    try:
        d.fired([(i, trigger(i), trigger_bytes(trigger(i))) for i in range(3)])
        sink.open.set()
        for _ in range(100):  # (no page out: it holds the marks it took until it writes them)
            if not d.tasks and not d._paging:
                break
            await asyncio.sleep(0.01)
        retries = [m for m in pager.marks + marks.take() if isinstance(m, Retry)]
        assert [m.row_id for m in retries] == [0, 1, 2]
        assert all(m.attempts == 1 for m in retries)
        assert [f"trigger t-{i:04d} " in m.error for i, m in enumerate(retries)] == [True] * 3
    finally:
        await d.stop_pump()
        pump.cancel()


@pytest.mark.parametrize("fsync", [True, False])
async def test_outbox_send_batch_appends_in_order(tmp_path: Path, fsync: bool) -> None:
    """send_batch writes one line per trigger in order (with fsync: one flush for the batch)."""
    sink = OutboxSink(tmp_path / "outbox.jsonl", fsync=fsync)
    ts = [trigger(i) for i in range(5)]
    await sink.send_batch([(t, trigger_bytes(t) if i % 2 else None) for i, t in enumerate(ts)])
    await sink.close()
    got = (tmp_path / "outbox.jsonl").read_bytes().splitlines()
    assert got == [trigger_bytes(t) for t in ts]
    assert sink.flushes == (1 if fsync else 0)


class BatchSwitch(Switch):
    """:class:`Switch` with ``send_batch``: down (retryable failure) until ``up`` is set."""

    def __init__(self, batch_max: int) -> None:
        super().__init__()
        self.batch_max = batch_max
        self.sizes: list[int] = []

    async def send_batch(self, items: list[tuple[Trigger, bytes | None]]) -> None:
        self.sizes.append(len(items))
        if not self.up:
            t = items[0][0]
            raise DispatchError(t.processor, self.name, "target down", trigger_id=t.trigger_id)
        await asyncio.sleep(0)
        self.received.extend(t.trigger_id for t, _b in items)


async def test_batched_outage_parks_and_redrives_every_trigger_once(
    tmp_path: Path,
    make_shared: Any,  # noqa: F811 (test_outage_state's fixture)
) -> None:
    """A batching target that is down: nothing dies and deliveries stay under the cap; back up, each trigger is delivered once, in batches of at most batch_max."""
    cfg = load(write_registry(tmp_path / "r", default_target={"outbox": {}, "concurrency": 2}))
    sink = BatchSwitch(8)
    r = make_shared(cfg, sink)
    await r.start()
    fired = await submit_all(r, STREAM[:200])
    assert fired > 50
    peak = 0
    for _ in range(40):  # a while of outage
        peak = max(peak, len(r.dispatcher.tasks))
        await asyncio.sleep(0.02)
    c = await counts(r)
    assert c.get("dead", 0) == 0 and sum(c.values()) == fired
    assert peak <= 2 * len(cfg.registry.processors)
    sink.up = True
    assert await wait_until(lambda: len(sink.received) >= fired, 30)
    assert await r.idle(timeout=30)
    assert sorted(sink.received) == sorted(set(sink.received)) and len(sink.received) == fired
    assert await counts(r) == {"done": fired}
    assert max(sink.sizes) <= 8 and max(sink.sizes) > 1


@pytest.mark.parametrize(
    ("rows", "attempts"), [((1,), (1,)), ((1, 2, 3), (1, 1, 1)), ((2, 3), (4, 1))]
)
def test_done_many_writes_what_its_done_marks_write(
    tmp_path: Path, rows: tuple[int, ...], attempts: tuple[int, ...]
) -> None:
    """write_marks of one DoneMany leaves the snapshot + journal store's outbox as its Done marks one by one."""
    many = DoneMany(rows, attempts, 7.0)
    stores = []
    for name, marks in (("many", [many]), ("each", many.each())):
        s = Store(tmp_path / f"{name}.db")
        with s.transaction():
            for i in range(1, 5):
                s.insert_trigger(f"t{i}", "p", "{}", 1.0)
            write_marks(s, marks)  # type: ignore[arg-type]
        stores.append(s)
    try:
        rows_of = [s._db.execute("SELECT * FROM triggers ORDER BY id").fetchall() for s in stores]
        assert rows_of[0] == rows_of[1]
        assert stores[0].trigger_counts() == {"pending": 4 - len(rows), "done": len(rows)}
    finally:
        for s in stores:
            s.close()


@pytest.mark.parametrize("pattern", ["AAAAA", "ABABAB", "AABBBAAAB", "ABBBBBBBA", "BAAAAAAAAAAB"])
async def test_interleaved_processors_fill_their_own_deliveries(
    tmp_path: Path, pattern: str
) -> None:
    """Triggers of two processors in any order: each lane's deliveries carry its own triggers, in order, batch_max at a time."""
    gates = {"A": Gate(3), "B": Gate(3)}
    procs = {"A": PROC, "B": "other_processor"}
    cfg = load(write_registry(tmp_path, default_target={"outbox": {}, "concurrency": 4}))
    d = Dispatcher(cfg.registry, {procs[k]: g for k, g in gates.items()}, None, Metrics(),
                   RouterOptions(), MarkQueue(), LogBridge(None, cfg.registry), None,
                   lambda: 1_763_560_000.0, random.Random(1))  # fmt: skip
    pump = d.start(_run, NoPages(), [])
    try:
        fired = [
            (i, date_trigger(i, procs[k], fired_at=trigger(0).fired_at, width=4))
            for i, k in enumerate(pattern)
        ]
        d.fired([(i, t, trigger_bytes(t)) for i, t in fired])
        await asyncio.sleep(0)
        for k, gate in gates.items():
            ids = [t.trigger_id for i, t in fired if pattern[i] == k]
            assert gate.calls == [ids[j : j + 3] for j in range(0, len(ids), 3)]
            gate.open.set()
        for _ in range(100):
            if not d.tasks:
                break
            await asyncio.sleep(0.01)
        assert not d.tasks
    finally:
        await d.stop_pump()
        pump.cancel()

"""A delivery's outcome mark taken by another state job (the mark flusher's write, an ingest
batch) whose write fails goes back to the queue (:class:`MarkQueue.put_back`) and is written
later; meanwhile the snapshot + journal store still shows the row pending. The dispatcher's
pump must not page that row again (a second delivery, a second dead letter counted and
published) nor let its horizon sweep dead-letter it: the row's outcome is decided, only its
write waits. The state stores lease the row until its mark is written (their contract suite:
``test_finished_rows_never_change``; and here, on SQLite and PostgreSQL); the old store has
no lease, so the pump excludes it.
The state thread is held by the test, so the jobs run in the order production queues them."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from runtime_support import RouterFactory, date_trigger, load, write_registry
from test_outage_state import make_shared  # noqa: F401 (a fixture)

from scoperouter.errors import DispatchError
from scoperouter.messages.models import Trigger
from scoperouter.runtime.marks import (
    Dead,
    DeadLetter,
    Done,
    DoneMany,
    MarkQueue,
    Redrive,
    Release,
    Retry,
    Unwritten,
)
from scoperouter.runtime.metrics import Metrics
from scoperouter.runtime.payloads import trigger_bytes
from scoperouter.runtime.router import Router
from scoperouter.runtime.shared_router import SharedRouter
from scoperouter.state.model import Released

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "state"))
from state_support import batch, contrib

PROC = "player_game_summary"
T0 = 1_763_560_000.0
DAY = 86_400.0


class Target:
    """Answers every call at once: delivered, refused (permanent) or down (retryable); each
    call takes a second of the router's clock ``now``."""

    name = "target"

    def __init__(self, answer: str, now: list[float]) -> None:
        self.answer = answer
        self.now = now
        self.calls: list[str] = []

    async def send(self, trigger: Trigger, *, message_id: str, body: bytes | None = None) -> None:
        self.calls.append(trigger.trigger_id)
        self.now[0] += 1.0
        if self.answer == "refused":
            raise DispatchError(PROC, self.name, "HTTP 400: bad", retryable=False)
        if self.answer == "down":
            raise DispatchError(PROC, self.name, "HTTP 503: down")

    async def close(self) -> None:
        return None


async def _until(cond: Callable[[], bool]) -> None:
    for _ in range(2000):
        if cond():
            return
        await asyncio.sleep(0.001)
    raise AssertionError("the router did not get there")


def _dead_lettered(m: Metrics) -> float:
    return sum(s.value for s in m.dead_lettered.collect()[0].samples if s.name.endswith("_total"))


# answer, how long before the clock the row fired (the 24 h horizon passes during its
# call: its failure is dead-lettered, and the pump's next horizon sweep finds the row too),
# what the store ends with
CASES = {
    "delivered": ("ok", 0.0, {"done": 1}, 0),
    "refused: a dead letter": ("refused", 0.0, {"dead": 1}, 1),
    "down past the horizon: a dead letter, the sweep comes": ("down", DAY - 0.5, {"dead": 1}, 1),
}


@pytest.mark.parametrize(("answer", "age", "counts", "letters"), CASES.values(), ids=list(CASES))
async def test_a_row_whose_mark_write_failed_is_not_paged_again(
    tmp_path: Path,
    make_router: RouterFactory,
    answer: str,
    age: float,
    counts: dict[str, int],
    letters: int,
) -> None:
    """The flusher's write of a delivered or dead row's mark fails while the pump pages (and sweeps): the row is neither delivered again nor dead-lettered by the sweep; once the mark is written the store holds one outcome and the metric counts each dead letter once."""
    cfg = load(write_registry(tmp_path / "r", default_target={"outbox": {}}))
    now = [T0]
    sink = Target(answer, now)
    r: Router = make_router(cfg, sink, clock=lambda: now[0], pump_interval_s=3600.0,
                            mark_flush_interval_s=3600.0)  # fmt: skip
    t = date_trigger(1, PROC)
    with r.store.transaction():
        r.store.insert_trigger(t.trigger_id, PROC, trigger_bytes(t).decode(), T0 - age)
    # the target's second is real time: the horizon's monotonic time goes with it
    r.dispatcher.horizon_clock.monotonic = lambda: now[0]
    await r.start()
    d = r.dispatcher
    await _until(lambda: len(sink.calls) == 1 and not d.tasks and not d._paging)
    assert d.marks  # the outcome waits to be written

    gate = threading.Event()
    r._state.submit(gate.wait)  # the state thread is busy: the jobs below queue behind it
    write = r._write_marks_tx
    fails = [sqlite3.OperationalError("disk I/O error")]

    def write_once_failing(marks: list[Any]) -> None:
        if fails:
            raise fails.pop()
        write(marks)

    r._write_marks_tx = write_once_failing  # type: ignore[method-assign]
    flush = asyncio.create_task(r._flush_marks())  # takes the marks; its write will fail
    await asyncio.sleep(0)
    assert not d.marks
    d.lane(PROC).last_expire = float("-inf")  # the pump's next page sweeps the horizon too
    d.rows_waiting([PROC])  # the pump pages the lane (queued after the flusher's write)
    await _until(lambda: d._paging)
    gate.set()
    with pytest.raises(sqlite3.OperationalError):
        await flush
    await _until(lambda: not d._paging and not d.tasks)
    assert d.marks  # put back: written by the next job
    await r._flush_marks()
    assert sink.calls == [t.trigger_id]  # delivered once
    assert await r._in_state(r.store.trigger_counts) == counts
    assert len(await r._in_state(r.store.dead_letters)) == letters
    assert _dead_lettered(r.metrics) == letters


@pytest.mark.parametrize(("answer", "counts", "letters"), [("ok", {"done": 1}, 0),
                                                         ("refused", {"dead": 1}, 1)])  # fmt: skip
async def test_a_state_store_keeps_the_row_leased_while_its_mark_write_fails(
    tmp_path: Path,
    make_shared: Any,  # noqa: F811 (test_outage_state's fixture)
    answer: str,
    counts: dict[str, int],
    letters: int,
) -> None:
    """The same race on a state store (SQLite, PostgreSQL): the row stays leased until its mark is written, so the pump's page does not claim it again; one outcome, each dead letter counted once."""
    cfg = load(write_registry(tmp_path / "r", default_target={"outbox": {}}))
    now = [T0]
    sink = Target(answer, now)
    r: SharedRouter = make_shared(cfg, sink, pump_interval_s=3600.0, mark_flush_interval_s=3600.0)
    fired = r.state.ingest(batch(contrib("e1", processor=PROC, critical=True)), r.clock()).fired
    [item] = fired
    r.state.apply_marks([Released(item.item_id)])  # pending: the started router claims it
    await r.start()
    d = r.dispatcher
    await _until(lambda: len(sink.calls) == 1 and not d.tasks and not d._paging)
    assert d.marks

    gate = threading.Event()
    r._state.submit(gate.wait)
    write = r._write_marks_tx
    fails = [RuntimeError("the store failed")]

    def write_once_failing(marks: list[Any]) -> None:
        if fails:
            raise fails.pop()
        write(marks)

    r._write_marks_tx = write_once_failing  # type: ignore[method-assign]
    flush = asyncio.create_task(r._flush_marks(barrier=True))
    await asyncio.sleep(0)
    assert not d.marks
    d.rows_waiting([PROC])
    await _until(lambda: d._paging)
    gate.set()
    with pytest.raises(RuntimeError):
        await flush
    await _until(lambda: not d._paging and not d.tasks)
    await r._flush_marks(barrier=True)
    assert sink.calls == [item.trigger.trigger_id]
    assert await r._in_state(r.state.outbox_counts) == counts
    assert len(await r._in_state(r.state.dead_letters)) == letters
    assert _dead_lettered(r.metrics) == letters


NONE = Unwritten(frozenset(), {})


@pytest.mark.parametrize(
    ("marks", "out"),
    [
        ([Done(1, 1, T0)], Unwritten(frozenset({1}), {})),
        ([DoneMany((2, 3), (1, 4), T0), Dead(4, 2, T0, "x")], Unwritten(frozenset({2, 3, 4}), {})),
        (
            [
                Retry(5, 1, T0 + 9, "x", "p"),
                Retry(6, 1, T0 + 5, "x", "p"),
                Retry(7, 1, T0 + 1, "x", "q"),
            ],
            Unwritten(frozenset(), {"p": T0 + 5, "q": T0 + 1}),
        ),
        ([Redrive("p", T0), Redrive("q", T0)], Unwritten(frozenset(), {}, frozenset({"p", "q"}))),
        ([DeadLetter("trigger", "t#4", "r", None, None, T0), Release(8)], NONE),
    ],
)
def test_unwritten_outcomes_are_those_a_job_took_until_written_or_put_back(
    marks: list[Any], out: Unwritten
) -> None:
    """Rows a job's Done or Dead marks finish, each processor's earliest retry and the processors it redrives count as unwritten until the job writes them or puts them back (the next job that takes them writes them first)."""
    q = MarkQueue()
    for m in marks:
        q.append(m)
    assert q.unwritten() == NONE  # queued: the taker writes them before it reads
    taken = q.take()
    assert q.unwritten() == out
    q.put_back(taken)
    assert q.unwritten() == NONE
    again = q.take()
    assert again == marks and q.unwritten() == out
    q.written(again)
    assert q.unwritten() == NONE and not q

"""What a target's breaker counts (docs/registry.md ``breaker_threshold``: failed attempts in
a row): one failed call is one failure however many rows a batching sink carried in it, and
a failure of a delivery that started before the breaker last closed says nothing of the
target since (it must not reopen a breaker the probe just closed: a flap). Time is a
virtual clock; each call of the target is answered by the test."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from runtime_support import date_trigger, load, write_registry

from scoperouter.errors import DispatchError
from scoperouter.messages.models import Trigger
from scoperouter.runtime.backlog import LanePage, LaneRequest
from scoperouter.runtime.breaker import Breaker
from scoperouter.runtime.dispatcher import Dispatcher
from scoperouter.runtime.log_bridge import LogBridge
from scoperouter.runtime.marks import MarkQueue
from scoperouter.runtime.metrics import Metrics
from scoperouter.runtime.options import RouterOptions
from scoperouter.runtime.payloads import trigger_bytes
from scoperouter.runtime.store import PendingTrigger

PROC = "player_game_summary"
T0 = 1_763_560_000.0


class Held:
    """A target whose every call waits until the test answers it (``batch_max``: a
    batching sink, one call per delivery of up to that many rows)."""

    name = "held"

    def __init__(self, batch_max: int | None = None) -> None:
        self.calls: list[tuple[list[str], asyncio.Future[None]]] = []
        if batch_max is not None:
            self.batch_max = batch_max
            self.send_batch = self._send_batch

    async def _send_batch(self, items: list[tuple[Trigger, bytes | None]]) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.calls.append(([t.trigger_id for t, _b in items], fut))
        await fut

    async def send(self, trigger: Trigger, *, message_id: str, body: bytes | None = None) -> None:
        await self._send_batch([(trigger, body)])

    def answer(self, call: int, fail: bool) -> None:
        ids, fut = self.calls[call]
        if fail:
            fut.set_exception(DispatchError(PROC, self.name, "HTTP 503: down", trigger_id=ids[0]))
        else:
            fut.set_result(None)

    async def close(self) -> None:
        return None


class Backlog:
    """The store's pager: hands out the rows put in ``rows`` when a lane asks; keeps the
    marks written with each page."""

    def __init__(self) -> None:
        self.rows: list[PendingTrigger] = []
        self.marks: list[Any] = []

    def __call__(self, marks: Any, requests: list[LaneRequest], now: float) -> list[LanePage]:
        self.marks.extend(marks)
        out = []
        for rq in requests:
            mine = [r for r in self.rows if r.processor == rq.processor]
            take = [r for r in mine if r.row_id not in rq.exclude][: rq.slots]
            for r in take:
                self.rows.remove(r)
            out.append(LanePage(rq.processor, take, False, None, [], asked=rq.slots > 0))
        return out


async def _run(fn: Any, *args: Any) -> Any:
    await asyncio.sleep(0)
    return fn(*args)


async def _until(cond: Callable[[], bool]) -> None:
    """Let the event loop run until ``cond`` holds (a bounded number of turns)."""
    for _ in range(500):
        if cond():
            return
        await asyncio.sleep(0)
    raise AssertionError("the dispatcher did not get there")


def _dispatcher(
    tmp_path: Path, sink: Held, concurrency: int, now: list[float], threshold: int
) -> Dispatcher:
    cfg = load(write_registry(tmp_path, default_target={"outbox": {}, "concurrency": concurrency}))
    options = RouterOptions(breaker_threshold=threshold, backoff_base_s=1.0, backoff_cap_s=8.0)
    return Dispatcher(cfg.registry, {PROC: sink}, None, Metrics(), options, MarkQueue(),
                      LogBridge(None, cfg.registry), None, lambda: now[0],
                      random.Random(1))  # fmt: skip


def _committed(n: int) -> tuple[int, Trigger, bytes]:
    t = date_trigger(n, PROC)
    return n, t, trigger_bytes(t)


def _pending(n: int) -> PendingTrigger:
    t = date_trigger(n, PROC)
    return PendingTrigger(n, t.trigger_id, PROC, trigger_bytes(t).decode(), 0)


@pytest.mark.parametrize("rows", [1, 3, 8])
async def test_a_failed_batch_counts_one_breaker_failure(tmp_path: Path, rows: int) -> None:
    """A batching target's failed call counts one failure whatever the rows it carried: threshold 2 opens on the second failed call, not the first."""
    sink, now = Held(batch_max=8), [T0]
    d = _dispatcher(tmp_path, sink, 1, now, threshold=2)
    pump = d.start(_run, Backlog(), [])
    lane = d.lane(PROC)
    try:
        d.fired([_committed(i) for i in range(rows)])
        await _until(lambda: len(sink.calls) == 1)
        assert len(sink.calls[0][0]) == rows  # one call carries them all
        sink.answer(0, fail=True)
        await _until(lambda: not d.tasks)
        assert (lane.breaker.state, lane.breaker.failures) == ("closed", 1)
        d.fired([_committed(100 + i) for i in range(rows)])  # the next call fails too
        await _until(lambda: len(sink.calls) == 2)
        sink.answer(1, fail=True)
        await _until(lambda: not d.tasks)
        assert lane.breaker.state == "open"
    finally:
        await d.stop_pump()
        pump.cancel()


# (threshold, steps, state): "start x" a delivery x starts (the dispatcher asks the breaker
# for slots first), "fail x" / "ok x" its answer, "wait" the clock reaches the probe time
FLAPS = {
    "a delivery started before the circuit opened fails after the probe closed it": (
        1, ["start a", "start b", "fail a", "wait", "start p", "ok p", "fail b"], "closed"),
    "two such, threshold 2": (
        2, ["start a", "start b", "start c", "start d", "fail a", "fail b", "wait", "start p",
            "ok p", "fail c", "fail d"], "closed"),
    "the probe fails after an older delivery's success closed the breaker": (
        1, ["start a", "start b", "fail a", "wait", "start p", "ok b", "fail p"], "closed"),
    "a delivery started after the close still counts": (
        1, ["start a", "fail a", "wait", "start p", "ok p", "start n", "fail n"], "open"),
    "a failed probe still reopens it": (
        1, ["start a", "fail a", "wait", "start p", "fail p"], "open"),
}  # fmt: skip


@pytest.mark.parametrize(("threshold", "steps", "state"), FLAPS.values(), ids=list(FLAPS))
def test_only_failures_since_the_breaker_closed_count(
    threshold: int, steps: list[str], state: str
) -> None:
    """A failure of a delivery that started before the breaker last closed (a probe too) neither counts nor reopens it; later failures and a failed probe do."""
    b = Breaker(threshold=threshold, base_s=1.0, cap_s=8.0)
    now = 0.0
    held: dict[str, Any] = {}
    for step in steps:
        op, _, name = step.partition(" ")
        if op == "start":
            assert b.slots(now, 4) > 0
            held[name] = b.started()
        elif op == "fail":
            b.failed(now, held[name])
        elif op == "ok":
            b.succeeded()
        else:
            now = b.open_until
    assert b.state == state


async def test_a_stale_failure_does_not_reopen_a_lane_the_probe_closed(tmp_path: Path) -> None:
    """Through a lane: a delivery in flight when the circuit opened fails after the probe closed it; the circuit stays closed (a later failure opens it)."""
    sink, now = Held(), [T0]
    d = _dispatcher(tmp_path, sink, 2, now, threshold=1)
    backlog = Backlog()
    pump = d.start(_run, backlog, [])
    lane = d.lane(PROC)
    try:
        d.fired([_committed(1), _committed(2)])  # both slots: a and b in flight
        await _until(lambda: len(sink.calls) == 2)
        sink.answer(0, fail=True)  # a fails: the circuit opens, b still in flight
        await _until(lambda: lane.busy == 1)
        assert lane.breaker.state == "open"
        backlog.rows.append(_pending(3))
        now[0] = lane.breaker.open_until  # the probe's time: the pump sends row 3 as the probe
        d._wake.set()
        await _until(lambda: len(sink.calls) == 3)
        sink.answer(2, fail=False)  # the probe succeeds: closed
        await _until(lambda: lane.busy == 1)
        assert lane.breaker.state == "closed"
        sink.answer(1, fail=True)  # b, started before the circuit opened, fails now
        await _until(lambda: lane.busy == 0)
        assert lane.breaker.state == "closed"
        assert d.metrics.circuit_open.labels(PROC)._value.get() == 0
        backlog.rows.append(_pending(4))  # a delivery started since the close fails: it counts
        d.rows_waiting([PROC])
        await _until(lambda: len(sink.calls) == 4)
        sink.answer(3, fail=True)
        await _until(lambda: lane.busy == 0)
        assert lane.breaker.state == "open"
    finally:
        await d.stop_pump()
        pump.cancel()

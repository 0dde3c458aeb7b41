"""Rows a replica leased and hands straight to its dispatcher -- fired here (``fired``,
with or without a pump, through a batching sink or one row per delivery) or started by a
caller that pages rows itself (``dispatch``) -- start only while their lease is confirmed
by the dispatcher's clock; the others leave unstarted (counted, forgotten in the lease
book), like a queued row whose lease is gone (docs/deploy-replicas.md). Time is a
virtual clock."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from runtime_support import date_trigger, load, write_registry

from scoperouter.messages.models import Trigger
from scoperouter.runtime.backlog import LanePage, LaneRequest
from scoperouter.runtime.dispatcher import Dispatcher
from scoperouter.runtime.leases import LEASE_LOST, LEASE_UNCONFIRMED, LeaseBook
from scoperouter.runtime.log_bridge import LogBridge
from scoperouter.runtime.marks import MarkQueue
from scoperouter.runtime.metrics import Metrics
from scoperouter.runtime.options import RouterOptions
from scoperouter.runtime.payloads import trigger_bytes

PROC = "player_game_summary"
T0 = 1_763_560_000.0
LEASE_S = 0.3


class Recorder:
    """A target that records every trigger it is sent (``batch_max``: a batching sink)."""

    name = "recorder"

    def __init__(self, batch_max: int | None) -> None:
        self.sent: list[str] = []
        if batch_max is not None:
            self.batch_max = batch_max
            self.send_batch = self._send_batch

    async def _send_batch(self, items: list[tuple[Trigger, bytes | None]]) -> None:
        self.sent.extend(t.trigger_id for t, _b in items)

    async def send(self, trigger: Trigger, *, message_id: str, body: bytes | None = None) -> None:
        self.sent.append(trigger.trigger_id)

    async def close(self) -> None:
        return None


def _no_rows(marks: Any, requests: list[LaneRequest], now: float) -> list[LanePage]:
    """The store's pager: nothing waits in the store."""
    return [LanePage(rq.processor, [], False, None, [], asked=rq.slots > 0) for rq in requests]


async def _run(fn: Any, *args: Any) -> Any:
    await asyncio.sleep(0)
    return fn(*args)


async def _settled(d: Dispatcher) -> None:
    """Let the event loop run until no delivery task is left (a bounded number of turns)."""
    for _ in range(500):
        await asyncio.sleep(0)
        if not d.tasks:
            return
    raise AssertionError("the deliveries did not end")


def _committed(n: int) -> tuple[int, Trigger, bytes]:
    t = date_trigger(n, PROC)
    return n, t, trigger_bytes(t)


# rows 1-4 leased at T0 (confirmed until T0 + LEASE_S by the dispatcher's clock), row 5 not
# leased here (a renewal said another replica holds it); the clock reads `after` past T0
CASES = [
    (0.1, [1, 2, 3, 4], {LEASE_LOST: 1}),  # a stall shorter than the lease: all but 5 start
    (LEASE_S, [], {LEASE_LOST: 1, LEASE_UNCONFIRMED: 4}),  # the lease ended by this clock
    (5.0, [], {LEASE_LOST: 1, LEASE_UNCONFIRMED: 4}),  # a long stall: another may have them
]


PATHS = [("pump", None), ("pump", 8), ("no_pump", None), ("dispatch", None)]  # 8: batching


@pytest.mark.parametrize(("path", "batch_max"), PATHS)
@pytest.mark.parametrize(("after", "started", "dropped"), CASES)
async def test_rows_leased_here_start_only_while_their_lease_is_confirmed(
    tmp_path: Path,
    path: str,
    batch_max: int | None,
    after: float,
    started: list[int],
    dropped: dict[str, int],
) -> None:
    """Fired or dispatched rows whose lease is unconfirmed by the dispatcher's clock are not sent."""
    cfg = load(write_registry(tmp_path, default_target={"outbox": {}, "concurrency": 8}))
    sink, now = Recorder(batch_max), [T0]
    d = Dispatcher(cfg.registry, {PROC: sink}, None, Metrics(), RouterOptions(), MarkQueue(),
                   LogBridge(None, cfg.registry), None, lambda: now[0],
                   random.Random(1))  # fmt: skip
    book = d.leases = LeaseBook(LEASE_S)
    rows = [_committed(n) for n in range(1, 6)]
    book.held([1, 2, 3, 4], T0)
    if path == "pump":
        pump = d.start(_run, _no_rows, [])
    now[0] = T0 + after  # the event loop stalled this long after the commit that leased them
    if path == "dispatch":
        for row_id, t, body in rows:
            d.dispatch(row_id, t, body)
    else:
        d.fired(rows)
    await _settled(d)
    if path == "pump":
        await d.stop_pump()
        assert pump.done()
    assert sorted(sink.sent) == sorted(date_trigger(n, PROC).trigger_id for n in started)
    for why in (LEASE_LOST, LEASE_UNCONFIRMED):
        assert d.metrics.leases_dropped.labels(why)._value.get() == dropped.get(why, 0)
    # the refused rows are forgotten (no longer renewed: their lease runs out, a rescue
    # makes them claimable again); the started ones are still held until their mark
    assert book.ids() == started


@pytest.mark.parametrize(
    ("at", "refused"),
    [
        (T0, {}),
        (T0 + LEASE_S - 0.01, {}),
        (T0 + LEASE_S, {1: LEASE_UNCONFIRMED, 2: LEASE_UNCONFIRMED, 3: LEASE_LOST}),
    ],
)
def test_lease_book_refuses_a_list_of_rows_at_once(at: float, refused: dict[int, str]) -> None:
    """``refused`` names each row of a list that must not start, with its reason."""
    book = LeaseBook(LEASE_S)
    book.held([1, 2], T0)
    always = {3: LEASE_LOST}  # never leased here
    assert book.refused([1, 2, 3], at) == {**always, **refused}


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 20), st.integers(0, 8)), max_size=15),
    st.lists(st.integers(0, 25), max_size=20),
    st.integers(0, 12),
)
def test_refused_is_refusal_for_each_row(
    holds: list[tuple[int, int]], ids: list[int], at: int
) -> None:
    """``refused`` of a list is exactly ``refusal`` of each of its rows (the brute-force oracle)."""
    book = LeaseBook(3.0)  # whole seconds: a lease's end and the clock meet exactly
    for row, t in holds:
        book.held([row], T0 + t)
    want = {i: why for i in ids if (why := book.refusal(i, T0 + at)) is not None}
    assert book.refused(ids, T0 + at) == want

"""A page that answers after its lane's circuit opened: the rows it brings wait in the store
(given back, as :meth:`Outcomes._park` gave back what the lane held when the circuit opened),
not in the lane's memory -- where they were out of the retry-horizon sweep's reach (it
excludes rows a lane holds) and, on a state store, leased here until the next probe."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

from runtime_support import GAME_DAY, load, write_registry
from test_outage import STREAM, Switch, submit_all

from scoperouter.processor_registry.loader import LoadedConfig
from scoperouter.runtime import lanes
from scoperouter.runtime.backlog import LanePage
from scoperouter.runtime.breaker import Start
from scoperouter.runtime.dispatcher import Dispatcher
from scoperouter.runtime.log_bridge import LogBridge
from scoperouter.runtime.marks import MarkQueue, Release
from scoperouter.runtime.metrics import Metrics
from scoperouter.runtime.router import Router, RouterOptions
from scoperouter.runtime.store import PendingTrigger, Store


def test_rows_paged_after_the_circuit_opened_go_back_to_the_store(
    zero_cfg: LoadedConfig,
) -> None:
    """Rows of a page answered after the lane's breaker opened are released, not buffered, and the lane stays due."""
    reg = zero_cfg.registry
    marks = MarkQueue()
    d = Dispatcher(reg, {}, None, Metrics(), RouterOptions(), marks, LogBridge(None, reg), None,
                   lambda: 100.0, random.Random(1))  # fmt: skip
    lane = d.lane(next(iter(reg.processors)))
    lane.has_due = True
    [rq] = lanes.requests([lane], 100.0, 1.0)  # a page asking rows goes out
    assert rq.slots > 0
    # meanwhile the deliveries in flight fail: the circuit opens (and parks what the lane held)
    while not lane.breaker.failed(100.0, Start(False, lane.breaker.epoch)):
        pass
    d._breaker_opened(lane, 100.0, "boom")
    assert lane.breaker.state == "open"
    rows = [PendingTrigger(i, f"t{i}", lane.name, "{}", 0, 0, 50.0) for i in (7, 8)]
    d._apply_page(LanePage(lane.name, rows, False, None, []), 100.0)
    assert not lane.buffer
    assert marks.take() == [Release(7), Release(8)]
    assert lane.has_due  # paged again once the circuit lets a probe through


async def test_an_open_circuit_holds_no_row_past_the_horizon(tmp_path: Path) -> None:
    """With the circuit open far longer than the horizon, every trigger is dead-lettered by the sweep within a few sweeps, none held until the probe."""
    cfg = load(
        write_registry(
            tmp_path / "r",
            default_target={"outbox": {}, "retry_horizon": "200ms", "concurrency": 4},
        )
    )
    options = RouterOptions(
        as_of=GAME_DAY,
        backoff_base_s=30.0,  # the first probe 15-30 s after the circuit opens
        backoff_cap_s=60.0,
        breaker_threshold=1,
        pump_interval_s=0.005,  # a horizon sweep every 0.3 s
    )
    sink = Switch()
    r = Router(
        cfg.registry,
        cfg.relations,
        Store(tmp_path / "st.db", sync="normal"),
        {p: sink for p in cfg.registry.processors},
        options=options,
    )
    await r.start()
    try:
        fired = await submit_all(r, STREAM[:20])
        counts: dict[str, int] = {}
        for _ in range(500):  # 5 s: many sweeps, no probe
            counts = await r._in_state(r.store.trigger_counts)
            if counts == {"dead": fired}:
                break
            await asyncio.sleep(0.01)
        assert counts == {"dead": fired}
        assert all(not ln.buffer for ln in r.dispatcher.lanes.values())
    finally:
        await r.stop(timeout=1.0)

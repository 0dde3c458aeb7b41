"""Every dispatch outcome of a trigger reaches the execution log (SPEC section 5), the ones
decided in the store included: a trigger whose retry horizon passes while it waits there
(its target's circuit open) is swept dead by a page, not settled by a delivery."""

from __future__ import annotations

import asyncio
import json
import random
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from runtime_support import GAME_DAY, date_trigger, load, write_registry
from test_outage import STREAM, Switch, submit_all
from test_router import RecordingLog

from scoperouter.processor_registry.loader import LoadedConfig
from scoperouter.runtime.backlog import LanePage, LaneRequest
from scoperouter.runtime.dispatcher import Dispatcher
from scoperouter.runtime.log_bridge import LogBridge
from scoperouter.runtime.marks import MarkQueue
from scoperouter.runtime.metrics import Metrics
from scoperouter.runtime.payloads import trigger_bytes
from scoperouter.runtime.router import Router, RouterOptions
from scoperouter.runtime.state_jobs import StateThread, in_state
from scoperouter.runtime.store import PendingTrigger, Store

# the circuit opens at the first failure and stays open far past the horizon: every trigger
# dies in the store by the horizon sweep (every 60 page intervals: 0.3 s here)
SWEPT = {
    "backoff_base_s": 5.0,
    "backoff_cap_s": 10.0,
    "breaker_threshold": 1,
    "pump_interval_s": 0.005,
}


async def test_triggers_dead_by_the_horizon_sweep_are_logged_dead_letter(tmp_path: Path) -> None:
    """A trigger dead-lettered by the horizon sweep gets its dead_letter row in the execution log."""
    cfg = load(
        write_registry(
            tmp_path / "r",
            default_target={"outbox": {}, "retry_horizon": "200ms", "concurrency": 1},
        )
    )
    log = RecordingLog()
    sink = Switch()
    r = Router(
        cfg.registry,
        cfg.relations,
        Store(tmp_path / "st.db", sync="normal"),
        {p: sink for p in cfg.registry.processors},
        options=RouterOptions(as_of=GAME_DAY, **SWEPT),
        log=log,
    )
    await r.start()
    try:
        fired = await submit_all(r, STREAM[:20])
        # (not r.idle(): a lane whose circuit is open is not quiet until its probe)
        for _ in range(1000):
            if await r._in_state(r.store.trigger_counts) == {"dead": fired}:
                break
            await asyncio.sleep(0.01)
        assert await r._in_state(r.store.trigger_counts) == {"dead": fired}
    finally:
        await r.stop()
    dead = {t for t, status, _a in log.dispatches if status == "dead_letter"}
    rows = r.store._db.execute("SELECT trigger_id FROM triggers").fetchall()
    assert dead == {t for (t,) in rows}


async def test_stop_reports_what_the_page_out_dead_lettered(zero_cfg: LoadedConfig) -> None:
    """A stop while a page is out (it runs to its end on the state thread) still reports the rows that page dead-lettered."""
    reg = zero_cfg.registry
    proc = "player_game_summary"
    t = date_trigger(1, proc, fired_at=datetime(2025, 11, 19, 12, tzinfo=UTC))
    row = PendingTrigger(9, t.trigger_id, proc, trigger_bytes(t).decode(), 0, 3, 1.0)
    gate = threading.Event()

    def pager(marks: Any, requests: list[LaneRequest], now: float) -> list[LanePage]:
        gate.wait(10)  # the state thread is busy with this page when the stop comes
        return [
            LanePage(rq.processor, [], False, None, [row] if rq.processor == proc else [],
                     asked=rq.slots > 0)
            for rq in requests
        ]  # fmt: skip

    published: list[dict[str, Any]] = []

    async def publish(data: bytes, kind: str) -> None:
        published.append({**json.loads(data), "attribute_kind": kind})

    logged: list[tuple[Any, ...]] = []
    bridge = LogBridge(None, reg)
    bridge.dispatch = lambda *a: logged.append(a)  # type: ignore[method-assign]
    metrics = Metrics()
    d = Dispatcher(reg, {}, None, metrics, RouterOptions(), MarkQueue(), bridge, publish,
                   lambda: 1_763_560_000.0, random.Random(1))  # fmt: skip
    loop = asyncio.get_running_loop()
    state = StateThread("test-state")
    try:
        d.start(lambda fn, *a: in_state(loop, state, fn, *a), pager, [proc])
        for _ in range(500):
            if d._paging:
                break
            await asyncio.sleep(0.01)
        assert d._paging
        await d.stop_pump()
        gate.set()  # the page ends after the stop
        dead = metrics.dead_lettered.labels("trigger", "retry_horizon")
        for _ in range(100):  # reported once it answers; the dead-letter copy is a task
            if dead._value.get() and not d.tasks:
                break
            await asyncio.sleep(0.01)
    finally:
        gate.set()
        state.shutdown(wait=True)
    assert metrics.dead_lettered.labels("trigger", "retry_horizon")._value.get() == 1
    assert [(a[0].trigger_id, a[1]) for a in logged] == [(t.trigger_id, "dead_letter")]
    assert [p["trigger"]["trigger_id"] for p in published] == [t.trigger_id]
    assert [p["attribute_kind"] for p in published] == ["trigger"]

"""Every dispatch outcome of a trigger reaches the execution log (SPEC section 5), the ones
decided in the store included: a trigger whose retry horizon passes while it waits there
(its target's circuit open) is swept dead by a page, not settled by a delivery."""

from __future__ import annotations

import asyncio
from pathlib import Path

from runtime_support import GAME_DAY, load, write_registry
from test_outage import STREAM, Switch, submit_all
from test_router import RecordingLog

from scoperouter.runtime.router import Router, RouterOptions
from scoperouter.runtime.store import Store

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

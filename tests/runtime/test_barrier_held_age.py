"""``scoperouter_triggers_held_oldest_seconds``: how long the longest-held barrier window has
waited, read at scrape time -- a barrier waiting for an upstream whose completion never
comes shows a wait that keeps growing, with no event or timer in between."""

from __future__ import annotations

from pathlib import Path

from runtime_support import MemorySink, RouterFactory
from test_barrier_undeliverable_upstream import T0, _cfg, _event

from scoperouter.runtime.outcomes import Inbound

GAUGE = "scoperouter_triggers_held_oldest_seconds"


async def test_the_oldest_held_window_s_wait_grows_until_it_is_released(
    tmp_path: Path, make_router: RouterFactory
) -> None:
    """0 while nothing is held; the held window's age by the router's clock at each scrape; 0 once it is released."""
    cfg = _cfg(tmp_path, {"run_retries": 0, "completion_timeout": "1h"})
    now = [T0]
    upstream, downstream = MemorySink(), MemorySink()
    r = make_router(cfg, sinks={"u": upstream, "p": downstream}, clock=lambda: now[0])
    await r.start()
    gauge = r.metrics.registry.get_sample_value
    try:
        assert gauge(GAUGE) == 0.0
        assert (await r.submit(Inbound("test", obj=_event("e-u", "raw.a")))).ack
        assert (await r.submit(Inbound("test", obj=_event("e-p", "an.u")))).ack
        assert await r.idle()  # u's run is out and never reports: p waits at the barrier
        loop = r.windows.engine.loop
        assert loop is not None and len(loop.barrier.held) == 1
        held_at = loop.barrier.oldest_held_at()
        assert held_at is not None
        for later in (60.0, 1800.0):
            now[0] = held_at + later  # nothing runs in between: the scrape reads it
            assert gauge(GAUGE) == later
        for _ in range(5):  # u times out (completion_timeout) and is dead-lettered
            await r._flush_marks(barrier=True)
            now[0] += 3600.0
            await r.fire_due()
            assert await r.idle()
        assert len(loop.barrier.held) == 0 and downstream.received[0].processor == "p"
        assert gauge(GAUGE) == 0.0
    finally:
        await r.stop(timeout=1.0)

"""Shadow mode with the closed loop on: a shadow trigger is never sent, so no completion can
name it; it must not time out, be re-dispatched or dead-lettered."""

from __future__ import annotations

import json
from pathlib import Path

from runtime_support import INJURY_EVENT, MemorySink, RouterFactory, load, write_registry

from scoperouter.runtime.router import Inbound


def _total(r, name: str) -> float:  # type: ignore[no-untyped-def]
    return sum(
        s.value for fam in r.metrics.registry.collect() for s in fam.samples if s.name == name
    )


async def test_shadow_trigger_never_times_out_nor_is_redispatched(
    tmp_path: Path, make_router: RouterFactory
) -> None:
    """A shadow trigger is not held open in the ledger: no timeout, re-dispatch or dead letter."""
    cfg = load(
        write_registry(
            tmp_path, defaults={"mode": "shadow", "completion_timeout": "1m", "run_retries": 1}
        )
    )
    now = [1_000_000.0]
    sink = MemorySink()
    r = make_router(cfg, sink, clock=lambda: now[0])
    await r.start()
    out = await r.submit(Inbound("test", data=json.dumps(INJURY_EVENT).encode()))
    assert out.status == "accepted"
    assert await r.idle()
    shadowed = _total(r, "scoperouter_triggers_dispatched_total")
    assert shadowed > 0 and sink.calls == 0
    for _ in range(6):  # well past completion_timeout, its re-dispatch and the next timeout
        now[0] += 600.0
        await r.fire_due()
        assert await r.idle()
    assert sink.calls == 0
    assert _total(r, "scoperouter_triggers_timed_out_total") == 0
    assert _total(r, "scoperouter_dead_lettered_total") == 0
    assert _total(r, "scoperouter_triggers_dispatched_total") == shadowed
    assert r.metrics.triggers_open._value.get() == 0

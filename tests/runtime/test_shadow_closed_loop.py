"""Shadow mode with the closed loop on: a shadow trigger is never sent, so no completion can
name it; it must not time out, be re-dispatched or dead-lettered -- also one of a processor
no longer in routes.yaml (its window kept over the restart) that fires in shadow."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from runtime_support import (
    GAME_DAY,
    INJURY_EVENT,
    MemorySink,
    RouterFactory,
    load,
    write_registry,
)

from scoperouter.runtime.router import Inbound, Router, RouterOptions
from scoperouter.runtime.store import Store


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


def _with_removed(tmp: Path, name: str, extra: bool, mode: str) -> Path:
    """The NBA registry with open windows and the closed loop; ``extra``: with a processor
    ``injury_watch`` that a later routes.yaml removes."""
    path = write_registry(
        tmp / name,
        quiet="60s",
        max_wait="120s",
        defaults={"mode": mode, "completion_timeout": "1m", "run_retries": 1},
    )
    if extra:
        spec = yaml.safe_load(path.read_text())
        spec["processors"]["injury_watch"] = {
            "phase": 3,
            "granularity": "player",
            "inputs": [{"source": "nba_raw.nbac_injury_report"}],
        }
        path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


@pytest.mark.parametrize(
    ("mode", "serve_shadow"),
    [("live", True), ("shadow", False)],
    ids=["serve--shadow", "defaults.mode-shadow"],
)
async def test_a_removed_processors_shadow_trigger_is_never_tracked_nor_sent(
    tmp_path: Path, make_router: RouterFactory, mode: str, serve_shadow: bool
) -> None:
    """A removed processor's window fired in shadow opens no entry: no live re-dispatch."""
    now = [1_000_000.0]
    cfg1 = load(_with_removed(tmp_path, "a", True, mode))
    r1 = make_router(cfg1, MemorySink(), clock=lambda: now[0], shadow=serve_shadow)
    await r1.start()
    out = await r1.submit(Inbound("test", data=json.dumps(INJURY_EVENT).encode()))
    assert out.status == "accepted"
    await r1.stop(timeout=2.0)
    assert "injury_watch" in {w.processor for w in r1.windows.engine.book.states()}

    cfg2 = load(_with_removed(tmp_path, "b", False, mode))
    sink, fallback = MemorySink(), MemorySink()
    store = Store(tmp_path / "state.sqlite3", sync="normal")
    sinks = {p: sink for p in cfg2.registry.processors}
    options = RouterOptions(as_of=GAME_DAY, shadow=serve_shadow)
    r2 = Router(
        cfg2.registry, cfg2.relations, store, sinks, fallback_sink=fallback, options=options,
        clock=lambda: now[0],
    )  # fmt: skip
    await r2.start()
    try:
        for _ in range(6):  # the window fires, then well past completion_timeout and retries
            now[0] += 600.0
            await r2.fire_due()
            assert await r2.idle()
        loop = r2.windows.engine.loop
        assert loop is not None
        assert loop.ledger.open_count == 0
        assert (sink.calls, len(fallback.received)) == (0, 0)
        assert _total(r2, "scoperouter_triggers_timed_out_total") == 0
        modes = {t.mode for t in store.pending_triggers()}
        assert modes <= {"shadow"}
        rows = store._db.execute(
            "SELECT mode FROM triggers WHERE processor = 'injury_watch'"
        ).fetchall()
        assert rows == [("shadow",)]
    finally:
        await r2.stop(timeout=1.0)
        r2._state.shutdown(wait=True)
        store.close()

"""A rolling deploy that adds a processor, on one PostgreSQL store: a replica whose
routes.yaml lacks ``p_new`` leaves p_new's windows and triggers to the replicas that route
it (their heartbeat in the store), and takes them over for ``defaults.target`` only once
none has routed it for the grace (:data:`scoperouter.state.model.ORPHAN_AFTER_LEASES`
leases), with a WARNING and ``scoperouter_orphan_work_total``."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from runtime_support import MemorySink, stop_routers

from scoperouter.processor_registry.loader import load_config_text
from scoperouter.runtime.metrics import Metrics
from scoperouter.runtime.router import Inbound, RouterOptions
from scoperouter.runtime.shared_router import SharedRouter
from scoperouter.state import StoreOptions, open_state_store

OLD = """
version: 1
entities: {player: {}}
defaults:
  max_entities: 100
  window: {quiet: 0.3s, max_wait: 1s}
  target: {outbox: {}}
processors:
  p_old: {phase: 3, granularity: player, inputs: [{source: raw.a}]}
"""
NEW = OLD + "  p_new: {phase: 3, granularity: player, inputs: [{source: raw.a}]}\n"
EVENT = {
    "event_id": "e1",
    "source": "raw.a",
    "game_date": "2025-11-19",
    "affected_entities": {"players": ["lebronjames"]},
}

Make = Callable[..., SharedRouter]


@pytest.fixture
async def make(pg_schema: str) -> AsyncIterator[Make]:
    """Replicas on one PostgreSQL schema (``text``: routes.yaml); stopped at teardown."""
    made: list[SharedRouter] = []

    def factory(text: str, owner: str, sinks: dict[str, Any], fallback: MemorySink,
                lease_s: float = 30.0, metrics: Metrics | None = None) -> SharedRouter:  # fmt: skip
        cfg = load_config_text(text)
        st = open_state_store(pg_schema, StoreOptions(owner=owner, lease_s=lease_s))
        r = SharedRouter(cfg.registry, cfg.relations, st, sinks, fallback_sink=fallback,
                         options=RouterOptions(), metrics=metrics, poll_interval_s=0.05)  # fmt: skip
        made.append(r)
        return r

    yield factory
    await stop_routers(made)


async def _until(cond: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        await asyncio.sleep(0.02)
    return cond()


async def test_old_replica_leaves_new_processor_window(make: Make) -> None:
    """The new replica stops before p_new's window is due: the old one does not send it to
    defaults.target; the next new replica fires it to p_new's own target."""
    fallback, real = MemorySink("defaults.target"), MemorySink("p_new")
    old = make(OLD, "old", {"p_old": MemorySink()}, fallback)
    await old.start()
    new = make(NEW, "new", {"p_old": MemorySink(), "p_new": real}, fallback)
    await new.start()
    assert (await new.submit(Inbound("test", obj=EVENT))).status == "accepted"
    await new.stop(timeout=1.0)
    assert not await _until(lambda: bool(fallback.received), 1.5)
    windows = await old._in_state(old.state.open_windows)
    assert [w.processor for w in windows] == ["p_new"]
    again = make(NEW, "new2", {"p_old": MemorySink(), "p_new": real}, fallback)
    await again.start()
    assert await _until(lambda: bool(real.received), 5.0)
    assert [t.processor for t in real.received] == ["p_new"]
    assert fallback.received == []


async def test_orphan_after_grace_goes_to_default_target(
    make: Make, caplog: pytest.LogCaptureFixture
) -> None:
    """Once no replica has routed p_new for the grace, the old replica fires its window to
    defaults.target, with a WARNING and the orphan counter."""
    caplog.set_level(logging.WARNING, logger="scoperouter")
    fallback, m = MemorySink("defaults.target"), Metrics()
    old = make(OLD, "old", {"p_old": MemorySink()}, fallback, lease_s=0.3, metrics=m)
    await old.start()
    new = make(NEW, "new", {"p_old": MemorySink(), "p_new": MemorySink()}, fallback, 0.3)
    await new.start()
    assert (await new.submit(Inbound("test", obj=EVENT))).status == "accepted"
    await new.stop(timeout=1.0)
    t0 = time.monotonic()
    assert await _until(lambda: bool(fallback.received), 10.0)
    assert time.monotonic() - t0 >= 1.0  # not at the window's deadline: after the grace
    assert [t.processor for t in fallback.received] == ["p_new"]
    assert m.orphan_work.labels("windows")._value.get() == 1
    assert any("p_new" in r.getMessage() and "routes" in r.getMessage() for r in caplog.records)

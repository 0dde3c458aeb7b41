"""A rollback of a processor to ``granularity: date`` across a restart sends the triggers it
fired before the restart and that still wait in the outbox (behind a failing target) as
full-date triggers, with the id that content gives (docs/migration.md, Rolling back): on
the state stores (SQLite ``state.db``, PostgreSQL: ``location``) and on the per-process
router's store."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import yaml
from runtime_support import GAME_DAY, INJURY_EVENT, MemorySink, RouterFactory, load, write_registry

from scoperouter.processor_registry.loader import LoadedConfig
from scoperouter.runtime.outcomes import Inbound
from scoperouter.runtime.router import RouterOptions
from scoperouter.runtime.shared_router import SharedRouter
from scoperouter.state import StoreOptions, open_state_store

T0 = 1_763_568_000.0
PROC = "player_game_summary"


def _config(tmp: Path, granularity: str, **defaults: Any) -> LoadedConfig:
    """The repository's routes.yaml, zero-length windows, ``PROC`` at ``granularity``."""
    path = write_registry(tmp, quiet="0s", max_wait="0s", defaults=defaults or None)
    spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    proc = spec["processors"][PROC]
    if granularity != "player":
        proc["granularity"] = granularity
        for inp in proc["inputs"]:
            inp.pop("map", None)
            inp.pop("also_map", None)
        proc.pop("lookback", None)
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return load(path)


def _scopes(sink: MemorySink) -> set[tuple[str, str | None]]:
    return {(t.scope, t.entity_type) for t in sink.received if t.processor == PROC}


def _shared(cfg: LoadedConfig, location: str, sink: MemorySink, now: list[float]) -> SharedRouter:
    st = open_state_store(location, StoreOptions(owner="a"), sync="normal")
    return SharedRouter(
        cfg.registry,
        cfg.relations,
        st,
        {p: sink for p in cfg.registry.processors},
        options=RouterOptions(as_of=GAME_DAY),
        clock=lambda: now[0],
        poll_interval_s=0.02,
    )


async def _stop(r: SharedRouter) -> None:
    await r.stop(timeout=1.0)
    r._state.shutdown(wait=True)
    r.state.close()


async def test_state_store_sends_waiting_triggers_full_date(tmp_path: Path, location: str) -> None:
    """A player trigger waiting in the state store goes out full date after the rollback."""
    now = [T0]
    bad = MemorySink()
    bad.fail_first = 10**6
    r = _shared(_config(tmp_path / "a", "player"), location, bad, now)
    await r.start()
    assert (await r.submit(Inbound("t", obj=INJURY_EVENT))).ack
    for _ in range(5):
        await r.fire_due()
        await asyncio.sleep(0.05)
    assert bad.calls and not bad.received
    await _stop(r)

    good = MemorySink()
    r = _shared(_config(tmp_path / "b", "date"), location, good, now)
    await r.start()
    try:
        now[0] += 3600
        for _ in range(10):
            await r.claim()
            await r.fire_due()
            await asyncio.sleep(0.05)
        assert _scopes(good) == {("date", None)}
    finally:
        await _stop(r)


async def test_router_store_sends_waiting_triggers_full_date(
    tmp_path: Path, make_router: RouterFactory
) -> None:
    """The same on the per-process router's store (the closed loop on: its re-runs too)."""
    now = [T0]
    bad = MemorySink()
    bad.fail_first = 10**6
    r = make_router(_config(tmp_path / "a", "player", run_retries=1), bad,
                    clock=lambda: now[0], state_dir=tmp_path)  # fmt: skip
    await r.start()
    assert (await r.submit(Inbound("t", obj=INJURY_EVENT))).ack
    for _ in range(5):
        await r.fire_due()
    await asyncio.sleep(0.05)
    assert bad.calls and not bad.received
    await r.stop(timeout=1.0)

    good = MemorySink()
    r = make_router(_config(tmp_path / "b", "date", run_retries=1), good,
                    clock=lambda: now[0], state_dir=tmp_path)  # fmt: skip
    await r.start()
    now[0] += 3600
    for _ in range(5):
        await r.fire_due()
    await asyncio.sleep(0.05)
    assert _scopes(good) == {("date", None)}

"""The closed loop turned on or off across a restart: serve keeps its state in state.db with
the loop off and in state.sqlite3 with it on; the store the new routes.yaml does not use
hands its open windows, triggers and seen ids over to the one it uses, once
(runtime/state_handover.py)."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from runtime_support import GAME_DAY, game_day_stream, load, write_registry

from scoperouter.errors import ConfigError
from scoperouter.processor_registry.loader import LoadedConfig
from scoperouter.runtime.daemon import Daemon, DaemonSettings
from scoperouter.runtime.router import Inbound

CALM = [e for e in game_day_stream(300) if e.get("priority") != "critical"][:40]
HOUR, NOW = "3600s", "0s"  # windows that stay open during a test, or fire at once
LOGGER = "scoperouter.runtime.daemon"
Key = tuple[str, str]  # (processor, game date)
Configs = dict[tuple[bool, str], LoadedConfig]
Event = Mapping[str, Any]


@pytest.fixture(scope="module")
def cfgs(tmp_path_factory: pytest.TempPathFactory) -> Configs:
    """(loop on, window length) -> the NBA registry with outbox targets."""
    out = {}
    for loop in (False, True):
        for quiet in (HOUR, NOW):
            d = tmp_path_factory.mktemp("cfg")
            defaults = {"run_retries": 1} if loop else None
            path = write_registry(d, quiet=quiet, max_wait=quiet, defaults=defaults)
            out[(loop, quiet)] = load(path)
    return out


def daemon(cfg: LoadedConfig, state: Path) -> Daemon:
    settings = DaemonSettings(
        state_dir=state, port=0, as_of=GAME_DAY, sync="normal", http_enabled=False
    )
    return Daemon(cfg.registry, cfg.relations, settings)


async def run(
    cfg: LoadedConfig, state: Path, events: Sequence[Event] = (), *, settle: bool = False
) -> list[Key]:
    """One daemon's life: start, take ``events`` (``settle``: wait until every window fired
    and every trigger was sent), stop; the keys of the windows it left open."""
    d = daemon(cfg, state)
    await d.start()
    try:
        for e in events:
            assert (await d.router.submit(Inbound("test", obj=e))).ack
        assert not settle or await d.router.idle()
        if d.state_store is not None:
            windows = await d.router._in_state(d.state_store.open_windows)
            return sorted((w.processor, w.day.isoformat()) for w in windows)
        return sorted((w.processor, w.day.isoformat()) for w in d.router.book.states())
    finally:
        await d.stop()


def sent(state: Path) -> list[Key]:
    """The key of every trigger in the outbox (one per trigger), sorted."""
    out = state / "outbox.jsonl"
    lines = out.read_text().splitlines() if out.exists() else []
    return sorted((t["processor"], t["game_date"]) for t in map(json.loads, lines))


async def fire_after_switch(cfg: LoadedConfig, state: Path, want: int) -> list[Key]:
    """Start on ``cfg`` and wait (20 s at most) for ``want`` triggers in the outbox."""
    d = daemon(cfg, state)
    await d.start()
    try:
        for _ in range(400):
            if len(sent(state)) >= want:
                break
            await asyncio.sleep(0.05)
        assert await d.router.idle()
    finally:
        await d.stop()
    return sent(state)


def carried(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if "carried the work" in r.getMessage()]


def let_go(state: Path, loop_before: bool) -> None:
    """The store of the previous config holds nothing to route any more: the loop's is
    renamed (never read again), the per-window one drained in place."""
    if loop_before:
        assert not (state / "state.sqlite3").exists()
        assert (state / "state.sqlite3.imported").is_file()
        return
    with sqlite3.connect(state / "state.db") as c:
        assert c.execute("SELECT count(*) FROM sr_windows").fetchone() == (0,)
        assert c.execute("SELECT count(*) FROM sr_outbox WHERE status != 'done'").fetchone() == (0,)


@pytest.mark.parametrize("loop_before", [False, True], ids=["loop-turned-on", "loop-turned-off"])
async def test_open_windows_of_the_other_store_fire_after_the_switch(
    tmp_path: Path, cfgs: Configs, loop_before: bool, caplog: pytest.LogCaptureFixture
) -> None:
    """Windows left open in the previous config's store fire into the outbox, each once, after a restart that switched the loop (one WARNING with the count)."""
    state = tmp_path / "s"
    keys = await run(cfgs[(loop_before, HOUR)], state, CALM)
    assert keys and not sent(state)
    with caplog.at_level(logging.INFO, logger=LOGGER):
        assert await fire_after_switch(cfgs[(not loop_before, NOW)], state, len(keys)) == keys
    [said] = carried(caplog)
    assert said.levelno == logging.WARNING and getattr(said, "windows", None) == len(keys)
    let_go(state, loop_before)


@pytest.mark.parametrize("loop_first", [False, True], ids=["off-on-off", "on-off-on"])
async def test_switching_back_and_forth_carries_each_window_once(
    tmp_path: Path, cfgs: Configs, loop_first: bool, caplog: pytest.LogCaptureFixture
) -> None:
    """Restarts that switch the loop, or not, keep the same open windows (carried once per switch, never twice); each fires once at the end."""
    state = tmp_path / "s"
    keys = await run(cfgs[(loop_first, HOUR)], state, CALM)
    with caplog.at_level(logging.INFO, logger=LOGGER):
        for loop in (not loop_first, not loop_first, loop_first, loop_first):
            assert await run(cfgs[(loop, HOUR)], state) == keys
        assert not sent(state)
        assert await fire_after_switch(cfgs[(not loop_first, NOW)], state, len(keys)) == keys
    assert len(carried(caplog)) == 3  # one per switch
    if loop_first:  # the loop's store let go of twice: the earlier copy is kept
        assert {p.name for p in state.glob("state.sqlite3*")} == {
            "state.sqlite3.imported",
            "state.sqlite3.imported.2",
        }


@pytest.mark.parametrize(
    ("loop_before", "events"),
    [(False, []), (True, []), (False, CALM[:10])],
    ids=["loop-turned-on-empty", "loop-turned-off-empty", "loop-turned-on-drained"],
)
async def test_nothing_to_carry_says_nothing(
    tmp_path: Path,
    cfgs: Configs,
    loop_before: bool,
    events: Sequence[Event],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An empty or fully sent store of the previous config neither blocks the start nor logs a warning, and stays as it is."""
    state = tmp_path / "s"
    assert await run(cfgs[(loop_before, NOW)], state, events, settle=True) == []
    before = sorted(p.name for p in state.iterdir())
    with caplog.at_level(logging.INFO, logger=LOGGER):
        assert await run(cfgs[(not loop_before, NOW)], state) == []
    assert carried(caplog) == []
    warned = [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.WARNING
        and getattr(r, "code", None) != "polled_without_ready_file"  # serve's polling hint
    ]
    assert warned == []
    assert set(before) <= {p.name for p in state.iterdir()}


@pytest.mark.parametrize(
    ("loop_before", "failing"),
    [
        (False, "scoperouter.runtime.store.Store.carry_rows"),
        (True, "scoperouter.state.sqlite.SqliteStateStore.import_legacy"),
    ],
    ids=["loop-turned-on", "loop-turned-off"],
)
def test_a_carry_that_fails_refuses_to_start(
    tmp_path: Path,
    cfgs: Configs,
    loop_before: bool,
    failing: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A hand-over that fails is a ConfigError naming what the other store holds and what to do; that store keeps it, and the next start carries it."""
    state = tmp_path / "s"
    keys = asyncio.run(run(cfgs[(loop_before, HOUR)], state, CALM))

    def broken(*_a: object, **_k: object) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    with monkeypatch.context() as m:
        m.setattr(failing, broken)
        with pytest.raises(ConfigError) as err:
            daemon(cfgs[(not loop_before, HOUR)], state)
    msg = str(err.value)
    assert f"{len(keys)} windows" in msg and "disk I/O error" in msg
    assert "start once more with the routes.yaml" in msg
    assert asyncio.run(run(cfgs[(not loop_before, HOUR)], state)) == keys

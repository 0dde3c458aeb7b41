"""serve's default state (no ``--state``): the per-window SQLite store in the state dir
(``state.db``), one row per open window, read back at a restart; the old snapshot +
journal store imported once and renamed; a registry that asks for the closed loop keeps
the old store (the loop's state lives there only)."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from runtime_support import (
    GAME_DAY,
    MemorySink,
    RouterFactory,
    game_day_stream,
    load,
    write_registry,
)

from scoperouter.processor_registry.loader import LoadedConfig
from scoperouter.runtime.daemon import Daemon, DaemonSettings
from scoperouter.runtime.router import Inbound, Router
from scoperouter.runtime.shared_router import SharedRouter
from scoperouter.state.sqlite import SqliteStateStore

CALM = [e for e in game_day_stream(300) if e.get("priority") != "critical"][:60]


@pytest.fixture(scope="module")
def slow_cfg(tmp_path_factory: pytest.TempPathFactory) -> LoadedConfig:
    """Windows that stay open for an hour (nothing fires during a test)."""
    return load(write_registry(tmp_path_factory.mktemp("slow"), quiet="3600s", max_wait="3600s"))


def daemon(cfg: LoadedConfig, state_dir: Path) -> Daemon:
    settings = DaemonSettings(
        state_dir=state_dir, port=0, as_of=GAME_DAY, sync="normal", http_enabled=False
    )
    return Daemon(cfg.registry, cfg.relations, settings)


def tables(db: Path) -> set[str]:
    with sqlite3.connect(db) as c:
        return {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


async def test_default_serve_keeps_one_row_per_window_and_reads_them_back(
    tmp_path: Path, slow_cfg: LoadedConfig
) -> None:
    """No --state: a SharedRouter on <state_dir>/state.db; open windows are rows (no journal, no snapshot); a restart reads the same windows."""
    state = tmp_path / "s"
    d = daemon(slow_cfg, state)
    assert isinstance(d.router, SharedRouter) and d.store is None
    assert isinstance(d.state_store, SqliteStateStore) and d.state_store.path == state / "state.db"
    await d.start()
    outs = [await d.router.submit(Inbound("test", obj=e)) for e in CALM]
    assert {o.status for o in outs} == {"accepted"}
    windows = await d.router._in_state(d.state_store.open_windows)
    deadline = await d.router._in_state(d.state_store.next_deadline)
    await d.stop()
    assert windows and deadline is not None
    assert not (state / "state.sqlite3").exists()
    assert {"window_journal", "window_snapshot"}.isdisjoint(tables(state / "state.db"))
    again = daemon(slow_cfg, state)
    await again.start()
    try:
        st = again.state_store
        assert st is not None
        assert await again.router._in_state(st.open_windows) == windows
        assert await again.router._in_state(st.next_deadline) == deadline
    finally:
        await again.stop()


async def test_first_default_start_imports_the_old_store_once(
    tmp_path: Path, slow_cfg: LoadedConfig, make_router: RouterFactory
) -> None:
    """The snapshot + journal store of an older version is imported at the first start, then renamed state.sqlite3.imported (never read again)."""
    state = tmp_path / "s"
    old = make_router(slow_cfg, MemorySink(), state_dir=state)
    await old.start()
    for e in CALM[:40]:
        assert (await old.submit(Inbound("test", obj=e))).ack
    opened = old.book.open_count
    await old.stop(timeout=1.0)
    old.store.close()
    assert opened > 0
    for _ in range(2):  # the second start finds the old store renamed: nothing imported twice
        d = daemon(slow_cfg, state)
        await d.start()
        assert d.state_store is not None
        assert await d.router._in_state(d.state_store.open_window_count) == opened
        await d.stop()
        assert not (state / "state.sqlite3").exists()
        assert (state / "state.sqlite3.imported").is_file()
        assert not (state / "state.sqlite3-wal").exists()


def loop_cfg(tmp: Path, loop: dict[str, Any]) -> LoadedConfig:
    return load(write_registry(tmp, defaults=loop))


@pytest.mark.parametrize(
    "loop",
    [{"run_retries": 2}, {"completion_timeout": "1h"}, {"barrier": {"timeout": "2h"}}],
)
async def test_closed_loop_keeps_the_old_store(
    tmp_path: Path, loop: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    """A registry configuring the closed loop runs the old Router on state.sqlite3 (its state lives there only), with one INFO line saying why."""
    cfg = loop_cfg(tmp_path / "cfg", loop)
    state = tmp_path / "s"
    with caplog.at_level(logging.INFO, logger="scoperouter.runtime.daemon"):
        d = daemon(cfg, state)
    assert type(d.router) is Router and d.state_store is None
    assert d.store is not None and d.store.path == state / "state.sqlite3"
    why = [x for x in caplog.records if "closed loop" in x.getMessage()]
    assert len(why) == 1 and why[0].levelno == logging.INFO
    await d.start()
    await d.stop()
    assert not (state / "state.db").exists()
    assert "window_journal" in tables(state / "state.sqlite3")


@pytest.mark.parametrize(("sync", "pragma"), [("full", 2), ("normal", 1)])
def test_default_store_takes_the_sync_setting(
    tmp_path: Path, slow_cfg: LoadedConfig, sync: str, pragma: int
) -> None:
    """serve --sync reaches the default store's connection (FULL survives power loss, NORMAL a process crash)."""
    settings = DaemonSettings(state_dir=tmp_path / "s", port=0, sync=sync, http_enabled=False)  # type: ignore[arg-type]
    d = Daemon(slow_cfg.registry, slow_cfg.relations, settings)
    try:
        assert isinstance(d.state_store, SqliteStateStore)
        assert d.state_store.pragma("synchronous") == pragma
    finally:
        d.state_store.close()
        from scoperouter.runtime.state_open import release_state_lock

        assert d._lock_fd is not None
        release_state_lock(d._lock_fd)


async def test_default_store_logs_the_event_without_its_default_fields(
    tmp_path: Path, slow_cfg: LoadedConfig
) -> None:
    """The execution log's event_json on the default store omits default-valued fields (the
    old store's compact form: issue 16's <= 1 KB per event) and still reads back equal."""
    from scoperouter.execution_log import open_log
    from scoperouter.execution_log.reader import read_log

    log = open_log(tmp_path / "log.sqlite")
    settings = DaemonSettings(
        state_dir=tmp_path / "s", port=0, as_of=GAME_DAY, sync="normal", http_enabled=False
    )
    d = Daemon(slow_cfg.registry, slow_cfg.relations, settings, log=log)
    await d.start()
    assert (await d.router.submit(Inbound("test", obj=CALM[0]))).ack
    await d.stop()
    with sqlite3.connect(tmp_path / "log.sqlite") as c:
        (stored,) = c.execute("SELECT event_json FROM pipeline_execution_events").fetchone()
    for default in ('"skip_downstream":false', '"shape":"canonical"', ":null"):
        assert default not in stored
    (rec,) = read_log(tmp_path / "log.sqlite").events
    assert rec.event.event_id == CALM[0]["event_id"]
    assert rec.event.model_dump_json(exclude_defaults=True).endswith(stored[1:])


async def test_every_ingest_transaction_is_timed(tmp_path: Path, slow_cfg: LoadedConfig) -> None:
    """scoperouter_ingest_transaction_seconds counts one observation per ingest batch (the
    persistence pause its events saw: bench/state_daemon.py reads it), none for a failure."""
    d = daemon(slow_cfg, tmp_path / "s")
    await d.start()
    try:
        outs = [await d.router.submit(Inbound("test", obj=e)) for e in CALM[:7]]
        assert {o.status for o in outs} == {"accepted"}
    finally:
        await d.stop()
    reg = d.metrics.registry
    timed = reg.get_sample_value("scoperouter_ingest_transaction_seconds_count")
    batches = reg.get_sample_value("scoperouter_ingest_batch_size_count")
    assert timed == batches == 7  # one event per batch: submitted one after another
    total = reg.get_sample_value("scoperouter_ingest_transaction_seconds_sum")
    assert total is not None and total > 0

"""Fixtures of the daemon tests (helpers live in runtime_support.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from runtime_support import GAME_DAY, MemorySink, RouterFactory, load, write_registry

from scoperouter.processor_registry.loader import LoadedConfig
from scoperouter.runtime.router import Router, RouterOptions
from scoperouter.runtime.store import Store


@pytest.fixture(scope="session")
def zero_cfg(tmp_path_factory: pytest.TempPathFactory) -> LoadedConfig:
    """The NBA registry with zero-length windows and outbox targets."""
    return load(write_registry(tmp_path_factory.mktemp("zero")))


@pytest.fixture
def pg_schema(pg_schema_dsn: str) -> str:
    """A DSN whose search_path is a fresh schema, dropped afterwards (tests/conftest.py)."""
    return pg_schema_dsn


@pytest.fixture(params=["sqlite", "postgresql"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """One state location per store kind (the SQLite one where serve puts it by default)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    dsn: str = request.getfixturevalue("pg_schema")
    return dsn


@pytest.fixture
async def make_router(tmp_path: Path) -> AsyncIterator[RouterFactory]:
    """Builds routers on one state dir (same SQLite file); stops them at teardown."""
    made: list[Router] = []

    def factory(
        cfg: LoadedConfig,
        sink: Any = None,
        *,
        sinks: dict[str, Any] | None = None,
        clock: Callable[[], float] | None = None,
        state_dir: Path | None = None,
        dead_letter_publisher: Any = None,
        **options: Any,
    ) -> Router:
        store = Store((state_dir or tmp_path) / "state.sqlite3", sync="normal")
        if sinks is None:
            the = sink or MemorySink()
            sinks = {p: the for p in cfg.registry.processors}
        opts = RouterOptions(**{"as_of": GAME_DAY, **options})  # as_of=None: its clock's date
        kwargs: dict[str, Any] = {"options": opts}
        if clock is not None:
            kwargs["clock"] = clock
        if dead_letter_publisher is not None:
            kwargs["dead_letter_publisher"] = dead_letter_publisher
        r = Router(cfg.registry, cfg.relations, store, sinks, **kwargs)
        made.append(r)
        return r

    yield factory
    for r in made:
        # stop every router a test did not stop itself (close_intake alone is not a stop: its
        # dispatcher pump still runs state-thread jobs, and closing the database under one
        # crashes SQLite)
        if r._started and not r._stopping:
            await r.stop(timeout=1.0)
        # no state-thread job may run on a closed connection (SQLite segfaults): a router
        # left half-stopped still has its state thread; wait for its last job first
        r._state.shutdown(wait=True)
        r.store._db.close()

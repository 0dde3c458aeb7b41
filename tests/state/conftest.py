"""Fixtures of the state-store contract suite: every test taking ``make_store`` runs once on
SQLite and once on PostgreSQL (a fresh file / a fresh schema per test)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from state_support import StoreFactory

from scoperouter.state import StateStore, StoreOptions, open_state_store


@pytest.fixture(params=["sqlite", "postgresql"])
def store_location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where the store under test lives (one per implementation)."""
    if request.param == "sqlite":
        return str(tmp_path / "state.db")
    dsn: str = request.getfixturevalue("pg_schema_dsn")
    return dsn


@pytest.fixture
def make_store(store_location: str) -> Iterator[StoreFactory]:
    """Opens stores (replicas) on one location; closes them at teardown."""
    made: list[StateStore] = []

    def factory(owner: str = "a", lease_s: float = 30.0) -> StateStore:
        s = open_state_store(
            store_location, StoreOptions(owner=owner, lease_s=lease_s), sync="normal"
        )
        made.append(s)
        return s

    yield factory
    for s in made:
        with contextlib.suppress(Exception):  # already closed by the test
            s.close()


@pytest.fixture
def pg_location(pg_schema_dsn: str) -> str:
    """A PostgreSQL location only (concurrency tests)."""
    return pg_schema_dsn


@pytest.fixture
def replicas(pg_location: str) -> Iterator[Callable[..., StateStore]]:
    """Opens PostgreSQL stores on one schema, one per replica (``open_(owner, lease_s)``),
    closed after the test."""
    from scoperouter.state.postgres import PostgresStateStore

    made: list[PostgresStateStore] = []

    def open_(owner: str, lease_s: float = 30.0) -> PostgresStateStore:
        s = PostgresStateStore(pg_location, StoreOptions(owner=owner, lease_s=lease_s))
        made.append(s)
        return s

    yield open_
    for s in made:
        s.close()

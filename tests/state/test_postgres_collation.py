"""PostgreSQL only, on a database whose default collation is not C (ICU en-US, as Cloud SQL's
en_US.UTF8): what the store returns sorted, and the order ingest locks window rows in, are
code-point order (SQLite's and Python's), not the database's collation ('Beta' between
'b_x' and 'bx')."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import date

import pytest
from state_support import batch, contrib, need_psycopg

need_psycopg()

import psycopg  # noqa: E402

from scoperouter.state import StoreOptions  # noqa: E402
from scoperouter.state.api import StateStore  # noqa: E402
from scoperouter.state.model import Released  # noqa: E402
from scoperouter.state.pg_windows import LOCK_WINDOWS  # noqa: E402
from scoperouter.state.postgres import PostgresStateStore  # noqa: E402

T0 = 1_700_000_000.0
# code-point order (Beta, Zeta, alpha, b_x, bx) is not en-US's (alpha, b_x, Beta, bx, Zeta)
PROCESSORS = ["Zeta", "alpha", "Beta", "b_x", "bx"]


@pytest.fixture
def icu_dsn(postgres_dsn: str) -> Iterator[str]:
    """A DSN of a fresh database whose default collation is ICU en-US (dropped afterwards)."""
    name = "coll_" + uuid.uuid4().hex[:12]
    with psycopg.connect(postgres_dsn, autocommit=True) as c:
        c.execute(
            f"CREATE DATABASE {name} TEMPLATE template0 LOCALE_PROVIDER icu "
            "ICU_LOCALE 'en-US' LOCALE 'C.utf8'"
        )
    yield postgres_dsn.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(postgres_dsn, autocommit=True) as c:
        c.execute(f"DROP DATABASE {name} WITH (FORCE)")


def _windows_and_pending(s: StateStore) -> None:
    """Every processor with a row pending and a window open."""
    s.ingest(batch(*[contrib(f"c6e{i}", processor=p) for i, p in enumerate(PROCESSORS)]), T0)
    s.apply_marks([Released(t.item_id) for t in s.fire_due(T0 + 100)])
    s.ingest(batch(*[contrib(f"c6f{i}", processor=p) for i, p in enumerate(PROCESSORS)]), T0 + 200)


def _lock_order(s: PostgresStateStore) -> list[str]:
    """The processors in the order ingest's statement locks (creates) their window rows."""
    keys = sorted((p, date(2025, 11, 19)) for p in PROCESSORS)
    params = {"now": T0, "procs": [k[0] for k in keys], "days": [k[1] for k in keys]}
    with psycopg.connect(s.dsn, autocommit=True) as c, c.transaction(force_rollback=True):
        return [str(r[1]) for r in c.execute(LOCK_WINDOWS, params).fetchall()]


@pytest.mark.parametrize(
    "read",
    [
        lambda s: [w.processor for w in s.open_windows()],
        lambda s: s.pending_processors(),
        _lock_order,
    ],
    ids=["open_windows", "pending_processors", "ingest_lock_order"],
)
def test_processors_come_in_code_point_order(icu_dsn: str, read: Callable[..., list[str]]) -> None:
    """Processors the store sorts (or locks in order) come in code-point order, as in SQLite."""
    pg = PostgresStateStore(icu_dsn, StoreOptions(owner="a"))
    try:
        _windows_and_pending(pg)
        got = read(pg)
    finally:
        pg.close()
    assert got == sorted(PROCESSORS)

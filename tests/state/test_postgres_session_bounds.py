"""PostgreSQL only: the session bounds of every connection the daemon opens
(:mod:`scoperouter.state.pg_session`) -- a replica frozen (SIGSTOP, a paused VM) or cut off
in the middle of an ingest transaction holds its window row locks only until the server
ends its idle session, a statement blocked by a lock gives up after ``lock_timeout``, and a
store whose session the server ended works again. Timing only drives the interleavings;
nothing asserts on durations."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote, unquote

import pytest
from state_support import DAY, batch, contrib, need_psycopg, raw_connection

need_psycopg()

import psycopg  # noqa: E402

from scoperouter.backfill.shared_claim import SharedClaims  # noqa: E402
from scoperouter.state.model import StoreOptions  # noqa: E402
from scoperouter.state.pg_session import (  # noqa: E402
    SessionLimits,
    StoreBusy,
    connect,
    connect_params,
)
from scoperouter.state.postgres import PostgresStateStore  # noqa: E402

T0 = 1_700_000_000.0
WAIT_S = 120.0  # a generous bound on a wait that takes about a second
SETTINGS = (
    "lock_timeout",
    "idle_in_transaction_session_timeout",
    "tcp_keepalives_idle",
    "tcp_keepalives_interval",
    "tcp_keepalives_count",
    "tcp_user_timeout",
)


@pytest.fixture
def stores(pg_schema_dsn: str) -> Iterator[Callable[..., PostgresStateStore]]:
    made: list[PostgresStateStore] = []

    def open_(owner: str, dsn: str = pg_schema_dsn, **bounds: float) -> PostgresStateStore:
        s = PostgresStateStore(dsn, StoreOptions(owner=owner, **bounds))
        made.append(s)
        return s

    yield open_
    for s in made:
        s.close()


def _shown(conn: Any) -> dict[str, str]:
    return {n: str(conn.execute(f"SHOW {n}").fetchone()[0]) for n in SETTINGS}


def test_store_connections_carry_the_session_bounds(
    stores: Callable[..., PostgresStateStore], pg_schema_dsn: str
) -> None:
    """Defaults: lock_timeout 30 s, idle-in-transaction 60 s, keepalives both ways; the
    configured values replace them (0: off); the backfill claims' connection has them too."""
    s = stores("a")
    assert _shown(s._conn) == {
        "lock_timeout": "30s",
        "idle_in_transaction_session_timeout": "1min",
        "tcp_keepalives_idle": "30",
        "tcp_keepalives_interval": "10",
        "tcp_keepalives_count": "3",
        "tcp_user_timeout": "60000",
    }
    params = s._conn.info.get_parameters()
    assert (params["keepalives_idle"], params["keepalives_interval"]) == ("30", "10")
    assert (params["keepalives_count"], params["tcp_user_timeout"]) == ("3", "60000")
    tuned = stores("b", lock_timeout_s=2.5, idle_in_transaction_s=0.0)
    shown = _shown(tuned._conn)
    assert (shown["lock_timeout"], shown["idle_in_transaction_session_timeout"]) == ("2500ms", "0")
    # a connection the store reopens has them as well
    tuned._conn.close()
    tuned.ping()
    assert _shown(tuned._conn)["lock_timeout"] == "2500ms"
    claims = SharedClaims(pg_schema_dsn, "a", 30.0, session=SessionLimits(4.0, 5.0))
    try:
        with claims._lock:
            shown = _shown(claims._conn())
        assert (shown["lock_timeout"], shown["idle_in_transaction_session_timeout"]) == (
            "4s",
            "5s",
        )
        assert shown["tcp_keepalives_idle"] == "30"
    finally:
        claims.close()


def test_the_dsns_own_settings_win(
    stores: Callable[..., PostgresStateStore], pg_schema_dsn: str
) -> None:
    """A setting given in the DSN (its ``options``, a libpq parameter) is kept as given;
    the other bounds still apply, and the DSN's other options (its search_path) too."""
    base, _, query = pg_schema_dsn.partition("?options=")
    theirs = unquote(query) + " -c lock_timeout=7s"
    s = stores("a", f"{base}?options={quote(theirs)}&keepalives_idle=5")
    shown = _shown(s._conn)
    assert shown["lock_timeout"] == "7s"
    assert shown["idle_in_transaction_session_timeout"] == "1min"
    assert s._conn.info.get_parameters()["keepalives_idle"] == "5"
    schema = unquote(query).split("=", 1)[1]
    assert s._conn.execute("SHOW search_path").fetchone() == (schema,)


def test_pgoptions_settings_win(postgres_dsn: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A setting ``$PGOPTIONS`` gives is kept; the bounds it does not set are ours."""
    monkeypatch.setenv("PGOPTIONS", "-c lock_timeout=9s")
    with connect(postgres_dsn, SessionLimits(1.0, 2.0), autocommit=True) as c:
        shown = _shown(c)
    assert (shown["lock_timeout"], shown["idle_in_transaction_session_timeout"]) == ("9s", "2s")
    monkeypatch.delenv("PGOPTIONS")
    with connect(postgres_dsn, SessionLimits(1.0, 2.0), autocommit=True) as c:
        assert _shown(c)["lock_timeout"] == "1s"


def test_frozen_replicas_locks_are_released_and_its_store_works_again(
    stores: Callable[..., PostgresStateStore], pg_schema_dsn: str
) -> None:
    """Replica a's call locks a window row and stops (frozen between two statements of its
    transaction). The server ends its session after the idle-in-transaction timeout:
    replica b's ingest into that window, blocked meanwhile, commits. When a thaws, its call
    fails whole (its transaction is gone: its batch would be redelivered; it is not run
    again, it had begun), and a's next call opens a new connection and ingests."""
    a = stores("a", idle_in_transaction_s=1.0)
    b = stores("b")
    a.ingest(batch(contrib("e1", ("x",))), T0)
    locked, thaw = threading.Event(), threading.Event()
    calls: list[int] = []

    def frozen(c: psycopg.Connection[Any]) -> None:
        calls.append(c.info.backend_pid)
        c.execute(
            "SELECT processor FROM sr_windows WHERE processor = 'p' AND day = %s FOR UPDATE",
            (DAY,),
        )
        locked.set()
        thaw.wait(WAIT_S)  # ... and replica a does nothing more
        c.execute("INSERT INTO sr_seen(event_id, seen_at) VALUES ('frozen', %s)", (T0,))

    with ThreadPoolExecutor(2) as pool:
        call = pool.submit(a._run, frozen)
        assert locked.wait(WAIT_S)
        got = pool.submit(b.ingest, batch(contrib("e2", ("y",))), T0 + 1)
        try:
            res = got.result(timeout=WAIT_S)
        except TimeoutError:
            with raw_connection(pg_schema_dsn) as c:  # (no hang: end it, then fail)
                c.execute("SELECT pg_terminate_backend(%s)", (calls[0],))
            raise AssertionError("the frozen session still holds the window row") from None
        finally:
            thaw.set()
        assert res.accepted == ("e2",)
        with pytest.raises(psycopg.Error):  # the ended session: a's in-flight call fails
            call.result(timeout=WAIT_S)
    assert len(calls) == 1 and a._conn.closed
    again = a.ingest(batch(contrib("e3", ("z",))), T0 + 2)
    assert again.accepted == ("e3",)
    [w] = b.open_windows()
    assert w.entity_ids == frozenset({"x", "y", "z"})
    assert {e for e in ("e1", "e2", "e3") if b.seen_at(e) is not None} == {"e1", "e2", "e3"}
    assert b.seen_at("frozen") is None
    with raw_connection(pg_schema_dsn) as c:  # no session of a is left holding anything
        left = c.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'scoperouter' "
            "AND state LIKE 'idle in transaction%'"
        ).fetchone()
        assert left == (0,)


def test_an_ingest_blocked_past_lock_timeout_fails_as_store_busy(
    stores: Callable[..., PostgresStateStore], pg_schema_dsn: str
) -> None:
    """Another session holds the window row (idle-in-transaction off there, as on an
    operator's psql): b's ingest gives up after its lock_timeout with StoreBusy, nothing
    of its batch written; once the lock is gone the same batch commits."""
    a = stores("a")
    b = stores("b", lock_timeout_s=0.3)
    a.ingest(batch(contrib("e1", ("x",))), T0)
    with raw_connection(pg_schema_dsn) as holder:
        holder.execute("BEGIN")
        holder.execute("SELECT 1 FROM sr_windows FOR UPDATE").fetchall()
        with pytest.raises(StoreBusy, match="lock_timeout"):
            b.ingest(batch(contrib("e2", ("y",))), T0 + 1)
        assert b.seen_at("e2") is None  # rolled back whole
        holder.execute("ROLLBACK")
    res = b.ingest(batch(contrib("e2", ("y",))), T0 + 1)
    assert res.accepted == ("e2",)
    [w] = a.open_windows()
    assert w.entity_ids == frozenset({"x", "y"})


def test_both_bounds_off_set_nothing(postgres_dsn: str) -> None:
    """With both timeouts off no server setting is made (the role's and database's
    defaults apply); the client keepalives stay; no ``options`` parameter is ever sent."""
    params = connect_params(postgres_dsn)
    assert "options" not in params and params["keepalives_idle"] == "30"
    with raw_connection(postgres_dsn) as admin:
        admin.execute("ALTER ROLE CURRENT_USER SET idle_in_transaction_session_timeout = '42s'")
        try:
            with connect(postgres_dsn, SessionLimits(0.0, 0.0), autocommit=True) as c:
                shown = _shown(c)
                assert c.info.get_parameters()["keepalives_idle"] == "30"
            with connect(postgres_dsn, SessionLimits(0.0, 5.0), autocommit=True) as c:
                one_on = _shown(c)
        finally:
            admin.execute("ALTER ROLE CURRENT_USER RESET idle_in_transaction_session_timeout")
    assert shown["lock_timeout"] == "0" and shown["idle_in_transaction_session_timeout"] == "42s"
    assert shown["tcp_user_timeout"] == "0"  # the server's default: not ours
    assert (one_on["lock_timeout"], one_on["idle_in_transaction_session_timeout"]) == ("0", "5s")

"""PostgreSQL only: what the session bounds (:mod:`scoperouter.state.pg_session`) leave
alone -- a replica starting while another migrates waits for the migration lock whatever
its ``lock_timeout``, and settings a libpq service file gives (``options`` with its
``search_path``) are kept. Timing only drives the interleavings; nothing asserts on
durations."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from state_support import need_psycopg, raw_connection

need_psycopg()

from scoperouter.backfill.shared_claim import SharedClaims  # noqa: E402
from scoperouter.state.model import StoreOptions  # noqa: E402
from scoperouter.state.pg_schema import MIGRATION_LOCK  # noqa: E402
from scoperouter.state.pg_session import SessionLimits, connect  # noqa: E402
from scoperouter.state.postgres import PostgresStateStore  # noqa: E402

WAIT_S = 120.0  # a generous bound on a wait that takes about a second


def _schema(pg_schema_dsn: str) -> str:
    return unquote(pg_schema_dsn.partition("?options=")[2]).split("=", 1)[1]


def _wait_for_lock_waiter(dsn: str, done: Callable[[], bool], past_s: float) -> None:
    """Until a session has waited for an advisory lock longer than ``past_s`` (as the
    server counts it), or ``done()``; fails past :data:`WAIT_S`."""
    give_up = time.monotonic() + WAIT_S
    with raw_connection(dsn) as c:
        while not done():
            waited = c.execute(
                "SELECT max(extract(epoch FROM clock_timestamp() - a.state_change)) "
                "FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
                "WHERE l.locktype = 'advisory' AND NOT l.granted"
            ).fetchone()[0]
            if waited is not None and waited > past_s:
                return
            assert time.monotonic() < give_up, "the open never waited for the lock"
            time.sleep(0.02)


@pytest.mark.parametrize("opener", ["store", "claims"])
def test_an_open_waits_for_the_migration_lock_past_lock_timeout(
    pg_schema_dsn: str, opener: str
) -> None:
    """Another replica migrating (its transaction holding the migration lock) longer than
    this one's lock_timeout: the open waits for it, then succeeds."""

    def open_() -> Callable[[], None]:
        if opener == "store":
            s = PostgresStateStore(pg_schema_dsn, StoreOptions(owner="b", lock_timeout_s=0.2))
            s.ping()
            return s.close
        claims = SharedClaims(pg_schema_dsn, "b", 30.0, session=SessionLimits(0.2, 60.0))
        with claims._lock:
            claims._conn()
        return claims.close

    with raw_connection(pg_schema_dsn) as holder, ThreadPoolExecutor(1) as pool:
        holder.execute("BEGIN")
        holder.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        got = pool.submit(open_)
        try:
            _wait_for_lock_waiter(pg_schema_dsn, got.done, past_s=1.0)  # 5x its lock_timeout
        finally:
            holder.execute("ROLLBACK")
        close = got.result(timeout=WAIT_S)
    close()


def _service_file(tmp_path: Path, postgres_dsn: str, **services: str) -> Path:
    u = urlsplit(postgres_dsn)
    lines = []
    for name, options in services.items():
        lines += [
            f"[{name}]",
            f"host={u.hostname}",
            f"port={u.port}",
            f"dbname={u.path.lstrip('/')}",
            f"user={u.username}",
            f"options={options}",
        ]
    path = tmp_path / "pg_service.conf"
    path.write_text("\n".join(lines) + "\n")
    return path


def _show(conn: object, name: str) -> str:
    return str(conn.execute(f"SHOW {name}").fetchone()[0])  # type: ignore[attr-defined]


@pytest.fixture
def services(
    tmp_path: Path, postgres_dsn: str, pg_schema_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """A service file (``PGSERVICEFILE``): ``plain`` sets the schema's search_path,
    ``tuned`` that and lock_timeout 7s; yields the schema."""
    schema = _schema(pg_schema_dsn)
    path = _service_file(
        tmp_path,
        postgres_dsn,
        plain=f"-c search_path={schema}",
        tuned=f"-c search_path={schema} -c lock_timeout=7s",
    )
    monkeypatch.setenv("PGSERVICEFILE", str(path))
    monkeypatch.delenv("PGSERVICE", raising=False)
    monkeypatch.delenv("PGOPTIONS", raising=False)
    yield schema


def test_a_service_files_options_are_kept_and_the_bounds_still_apply(services: str) -> None:
    """``service=plain``: the service's search_path is the session's (the store's tables
    land in that schema), and our bounds apply."""
    s = PostgresStateStore("service=plain", StoreOptions(owner="a"))
    try:
        assert _show(s._conn, "search_path") == services
        assert _show(s._conn, "lock_timeout") == "30s"
        assert _show(s._conn, "idle_in_transaction_session_timeout") == "1min"
        assert _show(s._conn, "tcp_keepalives_idle") == "30"
        assert s._conn.execute("SELECT to_regclass('sr_windows')::text").fetchone() == (
            "sr_windows",
        )
        tables = s._conn.execute(
            "SELECT table_schema FROM information_schema.tables WHERE table_name = 'sr_windows'"
        ).fetchall()
        assert tables == [(services,)]
    finally:
        s.close()


def test_a_setting_the_service_gives_wins(services: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """``service=tuned`` (lock_timeout 7s there), also named by ``$PGSERVICE``: its
    lock_timeout and search_path are kept, the other bound is ours."""
    with connect("service=tuned", SessionLimits(), autocommit=True) as c:
        assert (_show(c, "search_path"), _show(c, "lock_timeout")) == (services, "7s")
        assert _show(c, "idle_in_transaction_session_timeout") == "1min"
    monkeypatch.setenv("PGSERVICE", "tuned")
    with connect("", SessionLimits(2.0, 3.0), autocommit=True) as c:
        assert (_show(c, "search_path"), _show(c, "lock_timeout")) == (services, "7s")
        assert _show(c, "idle_in_transaction_session_timeout") == "3s"

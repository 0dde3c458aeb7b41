"""PostgreSQL only: an event whose ingest is blocked by a lock another session holds (a
replica frozen or cut off mid-transaction) is answered ``unavailable`` / ``store_error``
once the store's lock_timeout has passed -- 503 / nack, its source redelivers it -- counted
(``scoperouter_ingest_failures_total{reason="lock_timeout"}``) and logged, the router
going on; once the lock is gone the redelivered event is accepted. Nothing asserts on
durations."""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import AsyncIterator, Callable

import pytest
from runtime_support import GAME_DAY, MemorySink, stop_routers
from test_shared_router import CALM, slow_cfg  # noqa: F401  (fixture)

from scoperouter.processor_registry.loader import LoadedConfig
from scoperouter.runtime.router import Inbound, RouterOptions
from scoperouter.runtime.shared_router import SharedRouter
from scoperouter.state import StoreOptions, open_state_store

psycopg = pytest.importorskip("psycopg")


Factory = Callable[[float], SharedRouter]


@pytest.fixture
async def make(
    slow_cfg: LoadedConfig,  # noqa: F811
    pg_schema: str,
) -> AsyncIterator[Factory]:
    """Replicas whose store waits at most ``lock_timeout_s`` for a lock."""
    made: list[SharedRouter] = []

    def factory(lock_timeout_s: float) -> SharedRouter:
        st = open_state_store(
            pg_schema,
            StoreOptions(
                owner="a", date_field=slow_cfg.registry.date_field, lock_timeout_s=lock_timeout_s
            ),
        )
        sink = MemorySink()
        r = SharedRouter(
            slow_cfg.registry,
            slow_cfg.relations,
            st,
            {p: sink for p in slow_cfg.registry.processors},
            poll_interval_s=0.02,
            options=RouterOptions(
                as_of=GAME_DAY, store_backoff_base_s=0.01, store_backoff_cap_s=0.05
            ),
        )
        made.append(r)
        return r

    yield factory
    await stop_routers(made)


@pytest.fixture
def router(make: Factory) -> SharedRouter:
    """A replica whose store waits at most 0.3 s for a lock."""
    return make(0.3)


def _failures(r: SharedRouter, reason: str) -> float:
    value = r.metrics.registry.get_sample_value(
        "scoperouter_ingest_failures_total", {"reason": reason}
    )
    return value or 0.0


async def test_an_ingest_blocked_past_lock_timeout_is_answered_unavailable(
    router: SharedRouter, pg_schema: str, caplog: pytest.LogCaptureFixture
) -> None:
    r = router
    await r.start()
    first = CALM[0]
    assert (await r.submit(Inbound("test", obj=first))).status == "accepted"
    again = copy.deepcopy(first) | {"event_id": "after-the-freeze"}  # the same windows
    holder = await asyncio.to_thread(psycopg.connect, pg_schema, autocommit=True)
    try:
        holder.execute("BEGIN")
        held = holder.execute("SELECT 1 FROM sr_windows FOR UPDATE").fetchall()
        assert held, "no window row to hold"
        with caplog.at_level(logging.ERROR, logger="scoperouter.runtime"):
            blocked = await r.submit(Inbound("test", obj=again))
        assert (blocked.status, blocked.reason) == ("unavailable", "store_error")
        assert _failures(r, "lock_timeout") == 1
        assert _failures(r, "store_error") == 0
        assert "lock_timeout" in caplog.text  # the store's error, logged
        assert await r._in_state(r.state.seen_at, "after-the-freeze") is None
        holder.execute("ROLLBACK")
    finally:
        holder.close()
    # the source redelivers it: accepted now, the router never stopped
    redelivered = await r.submit(Inbound("test", obj=again))
    assert redelivered.status == "accepted"
    assert await r._in_state(r.state.seen_at, "after-the-freeze") is not None
    assert r.health.ok


def _lock_waiters(dsn: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as c:
        row = c.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND application_name = 'scoperouter'"
        ).fetchone()
        return int(row[0]) if row else 0


async def stop_while_blocked(r: SharedRouter, pg_schema: str) -> str:
    """Start ``r``, commit one event, then submit another while a session holds the window
    row its ingest needs and stop ``r`` (deadline 0.2 s, far below lock_timeout) once the
    ingest waits on the lock; the blocked event's answer status (the lock released after)."""
    await r.start()
    first = CALM[0]
    assert (await r.submit(Inbound("test", obj=first))).status == "accepted"
    again = copy.deepcopy(first) | {"event_id": "blocked-at-stop"}
    holder = await asyncio.to_thread(psycopg.connect, pg_schema, autocommit=True)
    try:
        holder.execute("BEGIN")
        assert holder.execute("SELECT 1 FROM sr_windows FOR UPDATE").fetchall()
        answer = asyncio.ensure_future(r.submit(Inbound("test", obj=again)))
        for _ in range(600):  # the ingest waits on the row (a generous deadline)
            if await asyncio.to_thread(_lock_waiters, pg_schema):
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the ingest never waited on the lock")
        # only the cancel can end the batch before lock_timeout
        await asyncio.wait_for(r.stop(timeout=0.2), 20.0)
        return str((await answer).status)
    finally:
        holder.execute("ROLLBACK")
        holder.close()


async def test_stop_cancels_an_ingest_waiting_on_a_lock(make: Factory, pg_schema: str) -> None:
    """``--shutdown-timeout`` bounds a stop even while the batch in flight waits on a lock
    (lock_timeout 30 s here): past the stop's deadline its statement is cancelled, the
    event answered unavailable (redelivered), and the stop ends."""
    assert await stop_while_blocked(make(30.0), pg_schema) == "unavailable"
    with psycopg.connect(pg_schema, autocommit=True) as c:
        row = c.execute("SELECT 1 FROM sr_seen WHERE event_id = 'blocked-at-stop'").fetchone()
    assert row is None  # not committed: its source redelivers it


async def test_stop_repeats_a_cancel_the_server_ignored(make: Factory, pg_schema: str) -> None:
    """A cancel that lands while the backend is idle between two statements of the batch
    is ignored by PostgreSQL (here: the first interrupt does nothing): the stop cancels
    again while the batch still runs, and ends."""
    r = make(30.0)
    calls: list[int] = []
    forward = r.state.interrupt  # type: ignore[attr-defined]

    def interrupt() -> None:
        calls.append(1)
        if len(calls) > 1:
            forward()

    r.state.interrupt = interrupt  # type: ignore[attr-defined]
    assert await stop_while_blocked(r, pg_schema) == "unavailable"
    assert len(calls) >= 2


def test_interrupt_falls_back_to_cancel_without_cancel_safe(pg_schema: str) -> None:
    """On a psycopg without ``Connection.cancel_safe`` (3.1) ``interrupt`` uses
    ``cancel``, and a failing cancel does not escape."""
    st = open_state_store(pg_schema, StoreOptions(owner="a"))
    real = st._conn  # type: ignore[attr-defined]

    class OldConnection:
        cancelled = 0

        def cancel(self) -> None:
            self.cancelled += 1
            raise psycopg.OperationalError("server unreachable")

    try:
        st._conn = old = OldConnection()  # type: ignore[attr-defined]
        st.interrupt()  # type: ignore[attr-defined]
        assert old.cancelled == 1
    finally:
        st._conn = real  # type: ignore[attr-defined]
        st.close()

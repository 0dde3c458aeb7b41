"""PostgreSQL only: an event whose ingest is blocked by a lock another session holds (a
replica frozen or cut off mid-transaction) is answered ``unavailable`` / ``store_error``
once the store's lock_timeout has passed -- 503 / nack, its source redelivers it -- counted
(``scoperouter_ingest_failures_total{reason="lock_timeout"}``) and logged, the router
going on; once the lock is gone the redelivered event is accepted. Nothing asserts on
durations."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
from collections.abc import AsyncIterator

import pytest
from runtime_support import GAME_DAY, MemorySink
from test_shared_router import CALM, slow_cfg  # noqa: F401  (fixture)

from scoperouter.processor_registry.loader import LoadedConfig
from scoperouter.runtime.router import Inbound, RouterOptions
from scoperouter.runtime.shared_router import SharedRouter
from scoperouter.state import StoreOptions, open_state_store

psycopg = pytest.importorskip("psycopg")


@pytest.fixture
async def router(
    slow_cfg: LoadedConfig,  # noqa: F811
    pg_schema: str,
) -> AsyncIterator[SharedRouter]:
    """A replica whose store waits at most 0.3 s for a lock."""
    st = open_state_store(
        pg_schema,
        StoreOptions(owner="a", date_field=slow_cfg.registry.date_field, lock_timeout_s=0.3),
    )
    sink = MemorySink()
    r = SharedRouter(
        slow_cfg.registry,
        slow_cfg.relations,
        st,
        {p: sink for p in slow_cfg.registry.processors},
        poll_interval_s=0.02,
        options=RouterOptions(as_of=GAME_DAY, store_backoff_base_s=0.01, store_backoff_cap_s=0.05),
    )
    yield r
    if r._started and not r._stopping:
        await r.stop(timeout=1.0)
    r._state.shutdown(wait=True)
    with contextlib.suppress(Exception):
        st.close()


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

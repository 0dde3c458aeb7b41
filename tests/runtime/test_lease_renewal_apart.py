"""PostgreSQL only: a healthy replica keeps the leases of the triggers it is delivering
while its ingest waits on a row lock another session holds (a frozen replica, a long
transaction; within lock_timeout): its lease keeper renews them on a connection and a
thread of their own, not behind that ingest on the state thread, so no other replica
rescues them and no trigger is sent twice. Renewals are counted; the bounds waited are
liveness bounds, nothing asserts on durations."""

from __future__ import annotations

import asyncio
import contextlib
import copy
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import pytest
from runtime_support import GAME_DAY, stop_routers
from test_shared_router import CALM, slow_cfg  # noqa: F401  (fixture)

from scoperouter.messages.models import Trigger
from scoperouter.processor_registry.loader import LoadedConfig
from scoperouter.runtime.router import Inbound, RouterOptions
from scoperouter.runtime.shared_router import SharedRouter
from scoperouter.state import StateStore, StoreOptions, open_state_store

psycopg = pytest.importorskip("psycopg")

T = 1_763_000_000.0
LEASE_S = 0.3  # renewed every 0.1 s (real time); the leases run on the router's clock
# what another session holds while a's ingest of event "blocked" (day 2020-01-02) waits
HOLDS = {
    "window row": "SELECT 1 FROM sr_windows FOR UPDATE",
    "event id": "INSERT INTO sr_seen(event_id, seen_at) VALUES ('blocked', 0)",
}


class GateSink:
    """Holds every delivery until opened; records what it started and sent."""

    name = "gate"

    def __init__(self) -> None:
        self.open = asyncio.Event()
        self.started = 0
        self.received: list[Trigger] = []

    async def send(self, trigger: Trigger, *, message_id: str, body: bytes | None = None) -> None:
        self.started += 1
        await self.open.wait()
        self.received.append(trigger)

    async def close(self) -> None:
        return None


Replicas = tuple[Callable[[GateSink, list[float]], SharedRouter], Callable[[str], StateStore]]


@pytest.fixture
async def replicas(
    pg_schema: str,
    slow_cfg: LoadedConfig,  # noqa: F811
) -> AsyncIterator[Replicas]:
    """Router ``a`` (its clock ``now``, lock_timeout 60 s) and bare stores on one schema."""
    made: list[SharedRouter] = []
    stores: list[StateStore] = []

    def store(owner: str) -> StateStore:
        o = StoreOptions(
            owner=owner,
            lease_s=LEASE_S,
            date_field=slow_cfg.registry.date_field,
            lock_timeout_s=60.0,
        )
        stores.append(open_state_store(pg_schema, o))
        return stores[-1]

    def router(sink: GateSink, now: list[float]) -> SharedRouter:
        made.append(
            SharedRouter(
                slow_cfg.registry,
                slow_cfg.relations,
                store("a"),
                {p: sink for p in slow_cfg.registry.processors},
                options=RouterOptions(as_of=GAME_DAY),
                clock=lambda: now[0],
                poll_interval_s=0.02,
            )
        )
        return made[-1]

    yield router, store
    await stop_routers(made)
    for s in stores[len(made) :]:
        with contextlib.suppress(Exception):
            s.close()


async def _until(cond: Callable[[], bool], what: str) -> None:
    for _ in range(2000):  # 20 s: a liveness bound
        if cond():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def _lock_waiters(dsn: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as c:
        row = c.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND application_name = 'scoperouter'"
        ).fetchone()
        return int(row[0]) if row else 0


def _event(event_id: str, day: str, **more: Any) -> Inbound:
    return Inbound(
        "test", obj=copy.deepcopy(CALM[0]) | {"event_id": event_id, "game_date": day} | more
    )


@pytest.mark.parametrize("held", sorted(HOLDS))
async def test_replica_keeps_its_leases_while_its_ingest_waits_on_a_lock(
    replicas: Replicas, pg_schema: str, held: str
) -> None:
    """Rows a delivers stay leased to it (renewed) while its ingest waits; b rescues none."""
    router, store = replicas
    now, sink = [T], GateSink()
    a = router(sink, now)
    await a.start()
    assert (await a.submit(_event("open", "2020-01-02"))).status == "accepted"
    fire = _event("fire", "2020-01-01", priority="critical")  # its triggers go out at once
    assert (await a.submit(fire)).status == "accepted"
    lanes = a.dispatcher.lanes.values()
    await _until(lambda: sink.started > 0, "a delivery in flight")
    in_flight = {i for ln in lanes for i in ln.inflight}
    hold = await asyncio.to_thread(psycopg.connect, pg_schema, autocommit=True)
    try:
        hold.execute("BEGIN")
        hold.execute(HOLDS[held])
        blocked = asyncio.ensure_future(a.submit(_event("blocked", "2020-01-02")))
        for _ in range(400):  # a's ingest waits on the lock (a liveness bound)
            if await asyncio.to_thread(_lock_waiters, pg_schema):
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("a's ingest never waited on the lock")
        moved = now[0] = T + 10 * LEASE_S  # the lock wait lasts ten leases by a's clock
        renewed: list[Sequence[int]] = []
        extend = a.state.extend_leases

        def counting(ids: Sequence[int], at: float) -> frozenset[int]:
            kept = extend(ids, at)
            if at >= moved:
                renewed.append(sorted(kept))
            return kept

        a.state.extend_leases = counting  # type: ignore[method-assign]
        await _until(lambda: len(renewed) >= 2, "two renewals while a's ingest waits")
        assert not blocked.done(), "a's ingest no longer waits"
        assert set(renewed[-1]) >= in_flight
        b = store("b")  # another replica's rescue, by its clock half a lease on
        assert await asyncio.to_thread(b.rescue_expired, moved + LEASE_S / 2) == 0
        hold.execute("ROLLBACK")
        assert (await blocked).status == "accepted"
    finally:
        hold.close()
    sink.open.set()
    rows = await asyncio.to_thread(b.outbox_rows)  # the triggers event "fire" fired
    await _until(lambda: len(sink.received) >= len(rows), "a's deliveries")
    assert rows and all(r.rescues == 0 and r.claims == 1 for r in rows)
    sent = sorted(t.trigger_id for t in sink.received)
    assert sent == sorted(r.trigger_id for r in rows)  # each once, by a

"""PostgreSQL only: a due window whose row another session holds (a frozen replica's
transaction, an ingest in flight) is skipped by the fire (``SKIP LOCKED``) and the store's
next deadline stays in the past: the window timer then asks again once per poll interval,
not at once in a loop (a store transaction each, the state thread busy with nothing else),
and fires the window once the row is free. ``fire_due`` calls are counted against a
generous bound a slow machine only stays further below; no duration is asserted."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from runtime_support import GAME_DAY, MemorySink, stop_routers
from test_shared_router import CALM, slow_cfg  # noqa: F401  (fixture)

from scoperouter.processor_registry.loader import LoadedConfig
from scoperouter.runtime.router import Inbound, RouterOptions
from scoperouter.runtime.shared_router import SharedRouter
from scoperouter.state import StoreOptions, open_state_store

psycopg = pytest.importorskip("psycopg")

T = 1_763_000_000.0
POLL_S = 0.25
HELD_S = 1.0  # how long the row is held (real time): at most HELD_S / POLL_S polls + slack
# how another session holds the due window's row
HOLDS = {
    "select for update": "SELECT 1 FROM sr_windows FOR UPDATE",
    "ingest upsert": "UPDATE sr_windows SET rev = rev + 1",
}


@pytest.fixture
async def router(
    pg_schema: str,
    slow_cfg: LoadedConfig,  # noqa: F811
) -> AsyncIterator[Callable[[list[float]], SharedRouter]]:
    """A replica polling every POLL_S, its clock ``now``."""
    made: list[SharedRouter] = []

    def factory(now: list[float]) -> SharedRouter:
        o = StoreOptions(owner="a", date_field=slow_cfg.registry.date_field)
        sink = MemorySink()
        made.append(
            SharedRouter(
                slow_cfg.registry,
                slow_cfg.relations,
                open_state_store(pg_schema, o),
                {p: sink for p in slow_cfg.registry.processors},
                options=RouterOptions(as_of=GAME_DAY),
                clock=lambda: now[0],
                poll_interval_s=POLL_S,
            )
        )
        return made[-1]

    yield factory
    await stop_routers(made)


@pytest.mark.parametrize("held", sorted(HOLDS))
async def test_timer_polls_a_held_due_window_once_per_interval(
    router: Callable[[list[float]], SharedRouter], pg_schema: str, held: str
) -> None:
    """A due window held by another session is asked for once a poll interval, then fired."""
    now = [T]
    r = router(now)
    await r.start()
    event = copy.deepcopy(CALM[0]) | {"event_id": "x1", "game_date": "2020-01-01"}
    assert (await r.submit(Inbound("test", obj=event))).status == "accepted"
    calls = [0]
    fire_due = r.state.fire_due

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return fire_due(*args, **kwargs)

    hold = await asyncio.to_thread(psycopg.connect, pg_schema, autocommit=True)
    try:
        hold.execute("BEGIN")
        assert hold.execute(HOLDS[held]).rowcount >= 1
        r.state.fire_due = counting  # type: ignore[method-assign]
        now[0] += 7200.0  # every window is due, none can be fired
        await asyncio.sleep(HELD_S)
        during = calls[0]
        hold.execute("ROLLBACK")
    finally:
        hold.close()
    assert 1 <= during <= HELD_S / POLL_S + 3, f"{during} fires of a held window"
    for _ in range(2000):  # fired once free (a liveness bound)
        if r.fired_here:
            break
        await asyncio.sleep(0.01)
    assert r.fired_here and await asyncio.to_thread(r.state.open_window_count) == 0

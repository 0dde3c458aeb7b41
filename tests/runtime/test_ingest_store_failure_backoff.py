"""A failing store is retried by the ingest worker with backoff, not in a spin: a Pub/Sub
message nacked after a failed ingest transaction is redelivered at once, and the worker
used to try the store again the moment it came back -- every failing transaction followed
by a reload of the windows, as fast as the state thread ran them, for as long as the store
failed. Invariant (:mod:`scoperouter.runtime.store_health`): after a failed ingest
transaction the next one waits :meth:`StoreHealth.backoff`. Time is never measured here:
the state thread's job order (a barrier job) shows whether a second transaction was
started."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from runtime_support import GAME_DAY, MemorySink, RouterFactory, players_of

from scoperouter.processor_registry.loader import LoadedConfig
from scoperouter.runtime.pubsub import PubSubSource
from scoperouter.runtime.router import Router, RouterOptions
from scoperouter.runtime.shared_router import SharedRouter
from scoperouter.state import StoreOptions, open_state_store

SLOW_RETRY = {
    "ingest_linger_s": 0.0,
    "store_backoff_base_s": 3600.0,
    "store_backoff_cap_s": 3600.0,
}


@pytest.fixture(params=["snapshot store", "state store"])
async def router(
    request: pytest.FixtureRequest,
    zero_cfg: LoadedConfig,
    make_router: RouterFactory,
    tmp_path: Path,
) -> AsyncIterator[Router]:
    """A started router on the snapshot + journal store, or on the embedded SQLite state
    store (plain ``serve``), whose store backoff is an hour."""
    if request.param == "snapshot store":
        r = make_router(zero_cfg, MemorySink(), **SLOW_RETRY)
        await r.start()
        yield r
        return
    st = open_state_store(
        f"sqlite:///{tmp_path / 'state.db'}",
        StoreOptions(owner="a", date_field=zero_cfg.registry.date_field),
        sync="normal",
    )
    sink = MemorySink()
    shared = SharedRouter(
        zero_cfg.registry,
        zero_cfg.relations,
        st,
        {p: sink for p in zero_cfg.registry.processors},
        options=RouterOptions(as_of=GAME_DAY, **SLOW_RETRY),
    )
    await shared.start()
    yield shared
    if not shared._stopping:
        await shared.stop(timeout=1.0)
    shared._state.shutdown(wait=True)
    with contextlib.suppress(Exception):
        st.close()


class Redelivered:
    """A pulled message that Pub/Sub hands back at once when it is nacked (no retry
    policy), while ``redeliver`` holds (and at most 100 times: a spin ends)."""

    def __init__(self, source: PubSubSource) -> None:
        self.source = source
        self.data = json.dumps(
            {
                "event_id": "backoff-1",
                "source": "nba_raw.nbac_gamebook_player_stats",
                "game_date": GAME_DAY.isoformat(),
                "affected_entities": {"players": [players_of("BOS")[0]]},
                "changed_fields": ["minutes"],
            }
        ).encode()
        self.message_id = "m-1"
        self.attributes: dict[str, str] = {}
        self.nacks = 0
        self.redeliver = True

    def ack(self) -> None:
        raise AssertionError("acked although its transaction failed")

    def nack(self) -> None:
        self.nacks += 1
        if self.redeliver and self.nacks < 100:
            self.source._callback(self)


async def turns(n: int = 50) -> None:
    """Give the event loop ``n`` turns (hand-offs between its callbacks, not time)."""
    for _ in range(n):
        await asyncio.sleep(0)


@pytest.mark.parametrize("poll_succeeds", [False, True], ids=["store failing", "poll succeeds"])
async def test_a_failed_ingest_transaction_is_not_retried_before_the_backoff(
    router: Router, poll_succeeds: bool
) -> None:
    """After a failed commit the redelivered message waits the store backoff (one transaction, not a spin), even when another store operation succeeds meanwhile."""
    r = router
    attempts: list[int] = []

    def failing(batch: list[Any], marks: list[Any]) -> Any:
        attempts.append(len(batch))
        raise sqlite3.OperationalError("database or disk is full")

    r._process_batch = failing  # type: ignore[method-assign]
    if poll_succeeds:  # a read that works (the poll) makes the store healthy meanwhile
        reload = r._reload_windows

        async def reload_then_poll() -> None:
            await reload()
            r.health.succeeded()

        r._reload_windows = reload_then_poll  # type: ignore[method-assign]
    source = PubSubSource("projects/p/subscriptions/s", r)
    source._loop = asyncio.get_running_loop()
    message = Redelivered(source)
    source._callback(message)
    for _ in range(10_000):  # the first transaction fails and the message is nacked
        if message.nacks:
            break
        await asyncio.sleep(0)
    # (the state store's window timer polls every 0.2 s: on a busy machine a poll that
    # succeeds may already have made the store healthy again -- CI, stop 43)
    assert message.nacks == 1
    for _ in range(3):  # barriers: a transaction started before one runs before it
        await turns()
        await r._in_state(lambda: None)
    message.redeliver = False
    assert attempts == [1], f"{len(attempts)} transactions on a failing store"
    await r.stop(timeout=0.1)

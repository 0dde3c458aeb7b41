"""Issue 16: pulled messages settle by callback (no task or future per message). Each one is
acked only once its batch is committed -- checked from a second database connection at the
moment of the ack -- and nacked when the router refuses it or is stopped first; a failing
ack never keeps the rest of its batch from settling. The streaming pull itself is not
started: the client's callback is driven directly with stand-in messages (no network)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

import pytest
from runtime_support import GAME_DAY, MemorySink, RouterFactory, players_of

from scoperouter.processor_registry.loader import LoadedConfig
from scoperouter.runtime.pubsub import PubSubSource
from scoperouter.runtime.router import Router


def event(i: int) -> bytes:
    """A valid event that fires one trigger (zero-length windows)."""
    return json.dumps(
        {
            "event_id": f"settle-{i}",
            "source": "nba_raw.nbac_gamebook_player_stats",
            "game_date": GAME_DAY.isoformat(),
            "affected_entities": {"players": [players_of("BOS")[i % 15]]},
            "changed_fields": ["minutes"],
        }
    ).encode()


class Message:
    """Stands in for a pulled ``google.cloud.pubsub_v1`` message; at its ack it records
    whether its event id was committed, read from a second connection to the store."""

    def __init__(self, data: bytes, n: int, db: Path, *, ack_raises: bool = False) -> None:
        self.data = data
        self.message_id = f"m-{n}"
        self.attributes: dict[str, str] = {}
        self.db = db
        self.ack_raises = ack_raises
        self.settles: list[str] = []
        self.committed_at_ack: bool | None = None

    def ack(self) -> None:
        self.settles.append("ack")
        event_id = json.loads(self.data)["event_id"] if self.data.startswith(b"{") else None
        if event_id is not None:
            with sqlite3.connect(self.db) as c:
                row = c.execute("SELECT 1 FROM seen WHERE event_id = ?", (event_id,)).fetchone()
            self.committed_at_ack = row is not None
        if self.ack_raises:
            raise RuntimeError("ack failed")

    def nack(self) -> None:
        self.settles.append("nack")


def source_for(r: Router) -> PubSubSource:
    """A source whose streaming pull is never started: only its callback is used."""
    source = PubSubSource("projects/p/subscriptions/s", r)
    source._loop = asyncio.get_running_loop()
    return source


async def deliver(source: PubSubSource, messages: list[Message]) -> None:
    """As the client library does: the callback per message (here on the loop's thread)."""
    for m in messages:
        source._callback(m)
    await asyncio.sleep(0)  # the one wake-up of the burst


async def settled(messages: list[Message], timeout: float = 10.0) -> bool:
    for _ in range(int(timeout / 0.01)):
        if all(m.settles for m in messages):
            return True
        await asyncio.sleep(0.01)
    return False


CASES = [
    ("valid", [event(1), event(2), event(3)], ["ack", "ack", "ack"]),
    ("duplicates", [event(4), event(4)], ["ack", "ack"]),
    ("unparseable is dead-lettered, then acked", [b"not json", event(5)], ["ack", "ack"]),
]


@pytest.mark.parametrize(("case", "payloads", "expected"), CASES, ids=[c[0] for c in CASES])
async def test_a_burst_is_acked_only_after_its_commit(
    case: str,
    payloads: list[bytes],
    expected: list[str],
    zero_cfg: LoadedConfig,
    make_router: RouterFactory,
) -> None:
    """Every message of the burst is settled once, acked only when its event is committed."""
    r = make_router(zero_cfg, MemorySink())
    await r.start()
    source = source_for(r)
    messages = [Message(p, n, r.store.path) for n, p in enumerate(payloads)]
    await deliver(source, messages)
    assert await settled(messages)
    await r.idle(timeout=5)
    assert [m.settles for m in messages] == [[s] for s in expected]
    assert all(m.committed_at_ack for m in messages if m.data.startswith(b"{")), case
    assert source._unsettled == 0


async def test_a_closed_router_nacks_at_once(
    zero_cfg: LoadedConfig, make_router: RouterFactory
) -> None:
    """After close_intake the burst is nacked right away and nothing is left unsettled."""
    r = make_router(zero_cfg, MemorySink())
    await r.start()
    r.close_intake()
    source = source_for(r)
    messages = [Message(event(n), n, r.store.path) for n in range(3)]
    await deliver(source, messages)
    assert [m.settles for m in messages] == [["nack"]] * 3
    assert source._unsettled == 0


async def test_a_failing_ack_does_not_stop_the_rest_of_the_batch(
    zero_cfg: LoadedConfig, make_router: RouterFactory
) -> None:
    """The first ack raising (logged) leaves the others of the same batch acked."""
    r = make_router(zero_cfg, MemorySink())
    await r.start()
    source = source_for(r)
    messages = [Message(event(10 + n), n, r.store.path, ack_raises=n == 0) for n in range(4)]
    await deliver(source, messages)
    assert await settled(messages)
    assert [m.settles for m in messages] == [["ack"]] * 4
    assert source._unsettled == 0


async def test_messages_still_queued_when_the_router_stops_are_nacked(
    zero_cfg: LoadedConfig, make_router: RouterFactory
) -> None:
    """Queued but never committed (the router stops first): nacked, so Pub/Sub redelivers."""
    r = make_router(zero_cfg, MemorySink())
    await r.start()
    source = source_for(r)
    messages = [Message(event(20 + n), n, r.store.path) for n in range(3)]
    for m in messages:
        source._callback(m)
    for t in r._background:  # the ingest worker never takes them
        t.cancel()
    await asyncio.sleep(0)  # the burst's wake-up: queued in the router
    assert source._unsettled == 3 and not any(m.settles for m in messages)
    await r.stop(timeout=1.0)
    assert [m.settles for m in messages] == [["nack"]] * 3
    assert source._unsettled == 0

"""A push envelope's ``messageId`` is text from the request body: one that no store can keep
(a lone surrogate, ``"\\ud800"`` in its JSON) must not fail the dead-letter write of its
rejected message -- which failed the whole batch (503 to every event in it, the store
marked failing) and came back with every redelivery, for ever. It is kept escaped, on
each state store, and the batch commits."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path
from typing import Any

import pytest
from runtime_support import GAME_DAY, INJURY_EVENT, MemorySink, RouterFactory
from test_completions import completion, completion_rows, push
from test_shared_router import Factory, make_shared, slow_cfg  # noqa: F401  (fixtures)

from scoperouter.execution_log import open_log
from scoperouter.processor_registry.loader import LoadedConfig
from scoperouter.runtime.http_request import _from_envelope
from scoperouter.runtime.router import Inbound, Router, RouterOptions
from scoperouter.runtime.store import Store

SURROGATE_ID = json.loads('"m-\\ud800"')


def _pushed(data: bytes) -> Inbound:
    env = {
        "message": {"data": base64.b64encode(data).decode(), "messageId": SURROGATE_ID},
        "subscription": "projects/p/subscriptions/s",
    }
    inbound = _from_envelope(env)
    assert isinstance(inbound, Inbound)
    return inbound


NO_ID = {k: v for k, v in INJURY_EVENT.items() if k != "event_id"}
CASES = {
    "not_json": b"not json",  # rejected: dead-lettered under the message id
    "event_id_from_message_id": json.dumps(NO_ID).encode(),  # the id falls back to it
}


async def _poison_and_innocent(r: Any, case: str) -> None:
    await r.start()
    innocent = Inbound("test", obj={**INJURY_EVENT, "event_id": "innocent-1"})
    poison, fine = await asyncio.gather(r.submit(_pushed(CASES[case])), r.submit(innocent))
    assert (fine.status, fine.reason) == ("accepted", None)
    assert poison.ack, poison  # kept (dead-lettered or routed), acknowledged
    assert r.health.ok


@pytest.mark.parametrize("case", sorted(CASES))
async def test_surrogate_message_id_on_the_default_store(
    zero_cfg: LoadedConfig, make_router: RouterFactory, case: str
) -> None:
    """The router's store (state.sqlite3): the poison is kept, its batch commits."""
    await _poison_and_innocent(make_router(zero_cfg, MemorySink()), case)


@pytest.mark.parametrize("case", sorted(CASES))
async def test_surrogate_message_id_on_the_state_stores(
    slow_cfg: LoadedConfig,  # noqa: F811
    make_shared: Factory,  # noqa: F811
    case: str,
) -> None:
    """The per-window stores (SQLite, PostgreSQL): the poison is kept, its batch commits."""
    await _poison_and_innocent(make_shared(slow_cfg, MemorySink()), case)


async def test_surrogate_trigger_id_attribute_does_not_lose_its_batch_log(
    tmp_path: Path, zero_cfg: LoadedConfig
) -> None:
    """A pushed completion whose ``trigger_id`` attribute is a lone surrogate (no trigger
    the router issued) reads as having none: the execution log keeps every completion of
    its batch (the log's insert raised on it and lost the whole batch's rows)."""
    log = open_log(tmp_path / "log.sqlite")
    store = Store(tmp_path / "state.sqlite3", sync="normal")
    sink = MemorySink()
    r = Router(
        zero_cfg.registry, zero_cfg.relations, store, dict.fromkeys(zero_cfg.registry.processors, sink),
        options=RouterOptions(as_of=GAME_DAY), log=log,
    )  # fmt: skip
    await r.start()
    try:
        bad = _from_envelope(push(completion("c-bad"), "m-1", trigger_id=SURROGATE_ID))
        good = _from_envelope(push(completion("c-good", record_count=40), "m-2", trigger_id="t-2"))
        assert isinstance(bad, Inbound) and isinstance(good, Inbound)
        outcomes = await asyncio.gather(r.submit(bad), r.submit(good))  # one batch
        assert [o.status for o in outcomes] == ["accepted", "accepted"]
        assert await r.idle()
    finally:
        await r.stop(timeout=2.0)
        store._db.close()
        log.close()
    got = [(row[2], row[3]) for row in completion_rows(tmp_path / "log.sqlite")]
    assert got == [(None, 12), ("t-2", 40)]

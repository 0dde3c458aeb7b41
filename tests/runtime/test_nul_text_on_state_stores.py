"""Text PostgreSQL cannot keep (a NUL character) never reaches the state store: an event
carrying it where the store would write it (its correlation id opening a window, its id
taken from the message id, the message id of its dead letter) is rejected and
dead-lettered as on SQLite, and never fails the transaction of the batch it shares with
innocent events (which would answer them 503, mark the store failing and have the poison
redelivered for ever)."""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
from typing import Any

import pytest
from runtime_support import MemorySink
from test_shared_router import CALM, Factory, make_shared, slow_cfg  # noqa: F401  (fixtures)

from scoperouter.processor_registry.loader import LoadedConfig
from scoperouter.runtime.router import Inbound

_WITH_IDS = [e for e in CALM if e.get("event_id") and e.get("affected_entities")]


def _poison(case: str) -> Inbound:
    ev: dict[str, Any] = copy.deepcopy(_WITH_IDS[0])
    if case == "correlation_id":
        ev["correlation_id"] = "c\u0000"
        return Inbound("test", obj=ev, dead_letter_on_reject=True)
    if case == "event_id_from_message_id":
        ev.pop("event_id")
        return Inbound(
            "push", data=json.dumps(ev).encode(), message_id="m\u00001", dead_letter_on_reject=True
        )
    assert case == "dead_letter_ref"
    return Inbound("push", data=b"not json", message_id="m\u00002", dead_letter_on_reject=True)


@pytest.mark.parametrize("case", ["correlation_id", "event_id_from_message_id", "dead_letter_ref"])
async def test_nul_text_is_rejected_not_a_store_error(
    slow_cfg: LoadedConfig,  # noqa: F811
    make_shared: Factory,  # noqa: F811
    case: str,
) -> None:
    """A NUL where the store writes text: that message is dead-lettered, its batch commits."""
    r = make_shared(slow_cfg, MemorySink())
    await r.start()
    innocent = Inbound("test", obj=copy.deepcopy(_WITH_IDS[1]))
    poison, fine = await asyncio.gather(r.submit(_poison(case)), r.submit(innocent))
    assert (fine.status, fine.reason) == ("accepted", None)
    assert poison.status == "rejected" and poison.dead_lettered, (poison.status, poison.reason)
    letters = await r._in_state(r.state.dead_letters)
    assert [d.kind for d in letters] == ["event"]
    assert r.health.ok


async def test_nul_in_an_entity_id_routes_the_full_date_not_a_store_error(
    slow_cfg: LoadedConfig,  # noqa: F811
    make_shared: Factory,  # noqa: F811
) -> None:
    """A NUL inside an affected entity id (which the store would keep in a window's
    entity_ids) makes the event a full-date one: accepted, its batch commits."""
    r = make_shared(slow_cfg, MemorySink())
    await r.start()
    ev: dict[str, Any] = copy.deepcopy(_WITH_IDS[0])
    ev["affected_entities"] = {k: [f"{v[0]}\u0000"] for k, v in ev["affected_entities"].items()}
    innocent = Inbound("test", obj=copy.deepcopy(_WITH_IDS[1]))
    odd, fine = await asyncio.gather(r.submit(Inbound("test", obj=ev)), r.submit(innocent))
    assert (fine.status, fine.reason) == ("accepted", None)
    assert (odd.status, odd.reason) == ("accepted", None)
    assert r.health.ok


async def test_long_push_message_id_is_dead_lettered_not_a_store_error(
    slow_cfg: LoadedConfig,  # noqa: F811
    make_shared: Factory,  # noqa: F811
) -> None:
    """A push message whose ``messageId`` is long and incompressible (the envelope's text, no
    length limit) and whose data cannot be routed: its dead letter keeps the message, its
    batch commits. PostgreSQL's unique index on the dead letters' ``(kind, ref)`` takes at
    most ~2.7 kB a key: the message id written whole as the ref failed the insert, so the
    whole batch, answered 503 and redelivered for ever, innocent events included."""
    r = make_shared(slow_cfg, MemorySink())
    await r.start()
    long_id = hashlib.sha256(b"0").hexdigest()
    for i in range(1, 200):  # 12,800 hex digits: pglz finds nothing to compress
        long_id += hashlib.sha256(str(i).encode()).hexdigest()
    poison = Inbound("push", data=b"not json", message_id=long_id, dead_letter_on_reject=True)
    innocent = Inbound("test", obj=copy.deepcopy(_WITH_IDS[1]))
    bad, fine = await asyncio.gather(r.submit(poison), r.submit(innocent))
    assert (fine.status, fine.reason) == ("accepted", None)
    assert bad.status == "rejected" and bad.dead_lettered, (bad.status, bad.reason)
    assert r.health.ok
    # a second message with the same long id (its redelivery) is the same dead letter; one
    # whose id differs only past the kept prefix is another
    again = await r.submit(
        Inbound("push", data=b"not json", message_id=long_id, dead_letter_on_reject=True)
    )
    other = await r.submit(
        Inbound("push", data=b"not json", message_id=long_id + "x", dead_letter_on_reject=True)
    )
    assert again.dead_lettered and other.dead_lettered
    letters = await r._in_state(r.state.dead_letters)
    assert len(letters) == 2 and len({d.ref for d in letters}) == 2
    assert all(d.ref is not None and d.ref[:100] == long_id[:100] for d in letters)

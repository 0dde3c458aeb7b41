"""The dead-letter topic's copy of a rejected event is lossless: a publish that fails is
counted, the letter keeps the record it owes the topic, housekeeping never prunes it before
the topic took it, and the next pass sends it -- on the journal store and on the SQLite and
PostgreSQL state stores."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import Callable
from typing import Any

import pytest
from runtime_support import MemorySink
from test_shared_router import Factory, make_shared, slow_cfg  # noqa: F401  (fixtures)

from scoperouter.processor_registry.loader import LoadedConfig
from scoperouter.runtime import housekeeping
from scoperouter.runtime.ingest import letter_record
from scoperouter.runtime.metrics import Metrics
from scoperouter.runtime.router import Inbound, Router
from scoperouter.state.model import Pruned

SUB = "projects/p/subscriptions/events"


class Topic:
    """A dead-letter topic that refuses every publish while ``down``."""

    def __init__(self) -> None:
        self.down = True
        self.got: list[tuple[dict[str, Any], str]] = []

    async def __call__(self, data: bytes, kind: str) -> None:
        if self.down:
            raise RuntimeError("404 Topic not found")
        self.got.append((json.loads(data), kind))


async def _settled(r: Any) -> None:
    """The copier's pass (started by the batch or by :meth:`_copy_letters`) has ended."""
    for _ in range(500):
        await asyncio.sleep(0.01)
        if not r.letter_copies._running:
            return
    raise AssertionError("the copier never ended its pass")


async def _lossless(r: Any, topic: Topic, letters: Callable[[], Any], caplog: Any) -> None:
    caplog.set_level(logging.WARNING, "scoperouter.runtime")
    await r.start()
    data = b'{"event_id": broken'
    out = await r.submit(
        Inbound("pubsub", data=data, message_id="7", subscription=SUB, dead_letter_on_reject=True)
    )
    assert out.status == "rejected" and out.dead_lettered
    await _settled(r)
    failed = r.metrics.dead_letter_topic_failures.labels("event")._value.get()
    assert failed == 1 and topic.got == []
    [letter] = await r._in_state(letters)
    assert letter.topic_record is not None  # the store says the copy did not go out
    pruned = await r._in_state(r._prune)  # retention 0: past it, but owed
    assert pruned.dead_letters == 0 and len(await r._in_state(letters)) == 1

    topic.down = False  # the topic exists now: the next housekeeping pass sends it
    r._copy_letters()
    await _settled(r)
    [(record, kind)] = topic.got
    assert kind == "event" and record["ref"] == f"{SUB}#7" and record["message_id"] == "7"
    assert record["payload"] == data.decode()
    [letter] = await r._in_state(letters)
    assert letter.topic_record is None
    pruned = await r._in_state(r._prune)
    assert pruned.dead_letters == 1 and await r._in_state(letters) == []


async def test_a_failed_topic_copy_is_kept_and_sent_later_on_the_journal_store(
    zero_cfg: LoadedConfig, make_router: Callable[..., Router], caplog: Any
) -> None:
    """Journal store: the failed copy is counted, kept past retention, sent by the next pass, then pruned."""
    topic = Topic()
    r = make_router(
        zero_cfg, MemorySink(), dead_letter_publisher=topic, dead_letter_retention_s=0.0
    )
    await _lossless(r, topic, r.store.dead_letters, caplog)


async def test_a_failed_topic_copy_is_kept_and_sent_later_on_a_state_store(
    slow_cfg: LoadedConfig,  # noqa: F811
    make_shared: Factory,  # noqa: F811
    caplog: Any,
) -> None:
    """SQLite and PostgreSQL state stores: the same."""
    topic = Topic()
    r = make_shared(
        slow_cfg, MemorySink(), dead_letter_publisher=topic, dead_letter_retention_s=0.0
    )
    await _lossless(r, topic, r.state.dead_letters, caplog)


@pytest.mark.parametrize("topic_set", [False, True])
async def test_without_a_topic_nothing_is_owed(
    zero_cfg: LoadedConfig, make_router: Callable[..., Router], topic_set: bool
) -> None:
    """No dead_letter_topic: the letter owes nothing and is pruned at retention; with one that works, it is sent once, then pruned."""
    topic = Topic()
    topic.down = False
    pub = topic if topic_set else None
    r = make_router(zero_cfg, MemorySink(), dead_letter_publisher=pub, dead_letter_retention_s=0.0)
    await r.start()
    await r.submit(
        Inbound("pubsub", data=b"{", message_id="8", subscription=SUB, dead_letter_on_reject=True)
    )
    if topic_set:
        await _settled(r)
    [letter] = r.store.dead_letters()
    assert letter.topic_record is None and len(topic.got) == int(topic_set)
    assert (await r._in_state(r._prune)).dead_letters == 1


@pytest.mark.parametrize(
    ("topic", "says"),
    [
        (True, "each was published to dead_letter_topic first"),
        (False, "no dead_letter_topic is configured: their payloads are gone"),
    ],
)
def test_the_prune_says_where_the_payloads_are(caplog: Any, topic: bool, says: str) -> None:
    """The prune's WARNING tells the truth: with a topic only copied letters went; without one the payloads are gone."""
    caplog.set_level(logging.WARNING, "scoperouter.runtime")
    housekeeping.said(Pruned(dead_letters=3), 60.0, Metrics(), topic=topic)
    [line] = [x.getMessage() for x in caplog.records]
    assert line.startswith("pruned 3 dead letters") and line.endswith(says)


LATIN1 = b'{"event_id":"latin1-1","note":"Joki\xe6"}'


@pytest.mark.parametrize(
    ("payload", "text", "b64"),
    [
        pytest.param(b'{"a": "\xc3\xa9"', '{"a": "é"', None, id="utf8-as-text"),
        pytest.param(LATIN1, None, base64.b64encode(LATIN1).decode(), id="not-utf8-as-base64"),
        pytest.param(b"\xff\xfe\x00", None, "//4A", id="binary-as-base64"),
        pytest.param(None, None, None, id="none"),
    ],
)
def test_the_topic_record_keeps_the_payload_bytes_recoverable(
    payload: bytes | None, text: str | None, b64: str | None
) -> None:
    """UTF-8 payloads go as text, others as payload_b64 (payload null): the bytes come back exactly."""
    inbound = Inbound("pubsub", data=payload, message_id="9", subscription=SUB)
    rec = json.loads(letter_record(inbound, f"{SUB}#9", "not_json", "x", payload))
    assert (rec["payload"], rec.get("payload_b64")) == (text, b64)
    back = rec["payload"].encode() if text is not None else None
    if b64 is not None:
        back = base64.b64decode(rec["payload_b64"])
    assert back == payload
    assert {k: rec[k] for k in ("kind", "message_id", "subscription", "ref")} == {
        "kind": "event",
        "message_id": "9",
        "subscription": SUB,
        "ref": f"{SUB}#9",
    }

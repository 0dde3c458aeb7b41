"""An acked poison message is always a dead letter of its own (SPEC §3: never silently
dropped): Pub/Sub message ids are unique per topic only, and the router may be pushed or
pulled from several subscriptions, so an event dead letter's ref names its delivery -- the
subscription and the message id (a digest of the payload without a message id) -- and a
different payload meeting a ref already taken is stored under another ref; only a
redelivery (same ref, same payload) is the same dead letter. On the journal store and on
the SQLite and PostgreSQL state stores."""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from runtime_support import MemorySink
from test_shared_router import Factory, make_shared, slow_cfg  # noqa: F401  (fixtures)

from scoperouter.processor_registry.loader import LoadedConfig
from scoperouter.runtime.http import IngressApp
from scoperouter.runtime.pubsub import PubSubSource
from scoperouter.runtime.router import Inbound, Router
from scoperouter.runtime.store import Store
from scoperouter.state.model import DeadLetterIn

SUB_A, SUB_B = "projects/p/subscriptions/phase2", "projects/p/subscriptions/phase3"


def _poison(data: bytes, mid: str | None, sub: str | None) -> Inbound:
    return Inbound("push", data=data, message_id=mid, subscription=sub, dead_letter_on_reject=True)


# (case, messages as (payload, message id, subscription), dead letters stored, their refs)
CASES: list[tuple[str, list[tuple[bytes, str | None, str | None]], int, set[str] | None]] = [
    (
        "one_id_two_topics",
        [(b"not json A", "4242", SUB_A), (b"not json B", "4242", SUB_B)],
        2,
        {f"{SUB_A}#4242", f"{SUB_B}#4242"},
    ),
    (
        "one_id_one_subscription_two_payloads",
        [(b"not json A", "4242", SUB_A), (b"not json B", "4242", SUB_A)],
        2,
        None,
    ),
    (
        "one_id_no_subscription_two_payloads",
        [(b"x{", "4242", None), (b"y{", "4242", None)],
        2,
        None,
    ),
    (
        "redelivery",
        [(b"not json", "4242", SUB_A), (b"not json", "4242", SUB_A)],
        1,
        {f"{SUB_A}#4242"},
    ),
    ("no_id_two_payloads", [(b"x{", None, SUB_A), (b"y{", None, SUB_A)], 2, None),
    ("no_id_same_payload", [(b"x{", None, None), (b"x{", None, None)], 1, None),
    ("bare_message_id_as_before", [(b"x{", "m-1", None)], 1, {"m-1"}),
]


async def _submit_each(
    submit: Callable[[Inbound], Any], messages: list[tuple[bytes, str | None, str | None]]
) -> None:
    for data, mid, sub in messages:  # one at a time: each its own batch
        out = await submit(_poison(data, mid, sub))
        assert out.status == "rejected" and out.dead_lettered, out


def _check(letters: list[Any], caplog: pytest.LogCaptureFixture, stored: int, refs: Any) -> None:
    assert len(letters) == stored, [(d.ref, d.payload) for d in letters]
    assert len({d.ref for d in letters}) == stored
    assert all(d.ref is not None and len(d.ref) <= 512 for d in letters)
    if refs is not None:
        assert {d.ref for d in letters} == refs
    logged = [r for r in caplog.records if r.getMessage() == "event dead-lettered"]
    assert len(logged) == stored  # a new dead letter is logged (and published) once


@pytest.mark.parametrize(("case", "messages", "stored", "refs"), CASES, ids=[c[0] for c in CASES])
async def test_each_poison_message_is_its_own_dead_letter_on_the_journal_store(
    zero_cfg: LoadedConfig,
    make_router: Callable[..., Router],
    caplog: pytest.LogCaptureFixture,
    case: str,
    messages: list[tuple[bytes, str | None, str | None]],
    stored: int,
    refs: set[str] | None,
) -> None:
    """Different messages sharing a message id are all stored; a redelivery is not."""
    caplog.set_level(logging.WARNING, "scoperouter.runtime")
    r = make_router(zero_cfg, MemorySink())
    await r.start()
    await _submit_each(r.submit, messages)
    _check(r.store.dead_letters(), caplog, stored, refs)


@pytest.mark.parametrize(("case", "messages", "stored", "refs"), CASES, ids=[c[0] for c in CASES])
async def test_each_poison_message_is_its_own_dead_letter_on_a_state_store(
    slow_cfg: LoadedConfig,  # noqa: F811
    make_shared: Factory,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
    case: str,
    messages: list[tuple[bytes, str | None, str | None]],
    stored: int,
    refs: set[str] | None,
) -> None:
    """The same on the SQLite and PostgreSQL state stores (``serve --state``)."""
    caplog.set_level(logging.WARNING, "scoperouter.runtime")
    r = make_shared(slow_cfg, MemorySink())
    await r.start()
    await _submit_each(r.submit, messages)
    _check(await r._in_state(r.state.dead_letters), caplog, stored, refs)


# (case, the letters stored one after the other, how many are new)
STORE_CASES = [
    ("different_payload_same_ref", [("event", "m", b"a"), ("event", "m", b"b")], [True, True]),
    ("same_payload_same_ref", [("event", "m", b"a"), ("event", "m", b"a")], [True, False]),
    (
        "third_payload_after_a_taken_alternative",
        [("event", "m", b"a"), ("event", "m", b"b"), ("event", "m", b"c"), ("event", "m", b"b")],
        [True, True, True, False],
    ),
    (
        "trigger_ref_names_its_row",
        [("trigger", "t#1", b"a"), ("trigger", "t#1", b"b")],
        [True, False],
    ),
]


@pytest.mark.parametrize(("case", "letters", "new"), STORE_CASES, ids=[c[0] for c in STORE_CASES])
def test_journal_store_keeps_a_different_payload_under_another_ref(
    tmp_path: Any, case: str, letters: list[tuple[str, str, bytes]], new: list[bool]
) -> None:
    """Store.dead_letter: a taken ref with another payload is stored under another ref."""
    s = Store(tmp_path / "state.sqlite3", sync="normal")
    with s.transaction():
        got = [s.dead_letter(k, ref, "not_json", None, p, 1.0) for k, ref, p in letters]
    assert got == new
    stored = s.dead_letters()
    assert len({d.ref for d in stored}) == len(stored) == sum(new)
    assert stored[0].ref == letters[0][1]  # the first keeps the ref it was given
    s.close()


@pytest.mark.parametrize(("case", "letters", "new"), STORE_CASES, ids=[c[0] for c in STORE_CASES])
async def test_state_store_keeps_a_different_payload_under_another_ref(
    slow_cfg: LoadedConfig,  # noqa: F811
    make_shared: Factory,  # noqa: F811
    case: str,
    letters: list[tuple[str, str, bytes]],
    new: list[bool],
) -> None:
    """StateStore.dead_letter (SQLite and PostgreSQL): the same rule."""
    st = make_shared(slow_cfg, MemorySink()).state
    got = [st.dead_letter(DeadLetterIn(k, ref, "not_json", None, p, 1.0)) for k, ref, p in letters]
    assert got == new
    stored = st.dead_letters()
    assert len({d.ref for d in stored}) == len(stored) == sum(new)
    assert stored[0].ref == letters[0][1]


def _push(data: bytes, mid: str, sub: str) -> dict[str, Any]:
    return {
        "message": {"data": base64.b64encode(data).decode(), "messageId": mid},
        "subscription": sub,
    }


async def test_push_envelopes_name_their_subscription(
    zero_cfg: LoadedConfig, make_router: Callable[..., Router]
) -> None:
    """Two pushes from two subscriptions with one messageId: two dead letters, by subscription."""
    r = make_router(zero_cfg, MemorySink())
    await r.start()
    c = TestClient(TestServer(IngressApp(r).app))
    await c.start_server()
    try:
        for data, sub in [(b"not json A", SUB_A), (b"not json B", SUB_B)]:
            resp = await c.post("/events", json=_push(data, "4242", sub))
            assert resp.status == 200 and (await resp.json())["status"] == "dead_lettered"
    finally:
        await c.close()
    assert sorted(d.ref or "" for d in r.store.dead_letters()) == [f"{SUB_A}#4242", f"{SUB_B}#4242"]


class _Pulled:
    def __init__(self, data: bytes, mid: str) -> None:
        self.data, self.message_id, self.attributes = data, mid, {}
        self.acks = 0

    def ack(self) -> None:
        self.acks += 1

    def nack(self) -> None:  # pragma: no cover - a failure of the test
        raise AssertionError("nacked")


async def test_pulled_messages_name_their_subscription(
    zero_cfg: LoadedConfig, make_router: Callable[..., Router]
) -> None:
    """Two pull sources on two subscriptions, one message id: two dead letters, by subscription."""
    r = make_router(zero_cfg, MemorySink())
    await r.start()
    pulled = []
    for data, sub in [(b"not json A", SUB_A), (b"not json B", SUB_B)]:
        source = PubSubSource(sub, r)
        source._loop = asyncio.get_running_loop()
        message = _Pulled(data, "4242")
        source._callback(message)
        pulled.append(message)
    for _ in range(10_000):
        if all(m.acks for m in pulled):
            break
        await asyncio.sleep(0.001)
    assert [m.acks for m in pulled] == [1, 1]
    assert sorted(d.ref or "" for d in r.store.dead_letters()) == [f"{SUB_A}#4242", f"{SUB_B}#4242"]
    assert [d.reason for d in r.store.dead_letters()] == ["not_json"] * 2

"""One body, one verdict: the bytes of an event POSTed plain to ``/events`` and the same
bytes pushed in a Pub/Sub envelope (or pulled, or given to ``explain``: the same
``parse_event_bytes``) are routed alike or refused alike -- never routed on one path and
dead-lettered on the other."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from runtime_support import INJURY_EVENT, MemorySink, RouterFactory

from scoperouter.processor_registry.loader import LoadedConfig
from scoperouter.runtime.http import IngressApp


@pytest.fixture
async def client(
    zero_cfg: LoadedConfig, make_router: RouterFactory
) -> AsyncIterator[TestClient[Any, Any]]:
    r = make_router(zero_cfg, MemorySink())
    await r.start()
    c: TestClient[Any, Any] = TestClient(TestServer(IngressApp(r).app))
    await c.start_server()
    yield c
    await c.close()


def _body(event_id: str, encoding: str = "utf-8", bom: bool = False) -> bytes:
    text = json.dumps({**INJURY_EVENT, "event_id": event_id}, ensure_ascii=False)
    return (b"\xef\xbb\xbf" if bom else b"") + text.encode(encoding)


def _push(data: bytes, message_id: str) -> dict[str, Any]:
    return {
        "message": {"data": base64.b64encode(data).decode(), "messageId": message_id},
        "subscription": "projects/p/subscriptions/s",
    }


# (case, the body with {id} for its event id, what both paths answer: routed or refused)
CASES = [
    ("bom", lambda i: _body(i, bom=True), "routed"),
    ("utf-16", lambda i: _body(i, "utf-16-le"), "refused"),
    ("utf-16-bom", lambda i: _body(i, "utf-16"), "refused"),
    ("non-ascii", lambda i: _body(i + "-é"), "routed"),
]


def _verdict(status: int, answer: dict[str, Any]) -> str:
    if status == 200 and answer.get("status") == "accepted":
        return "routed"
    if status == 400 or answer.get("status") == "dead_lettered":
        return "refused"
    return f"{status} {answer}"


@pytest.mark.parametrize(("make", "want"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
async def test_plain_and_pushed_bytes_get_one_verdict(
    client: TestClient[Any, Any], make: Any, want: str
) -> None:
    """The same event bytes are routed (or refused) whether POSTed plain or pushed."""
    plain = await client.post(
        "/events", data=make("plain"), headers={"Content-Type": "application/json"}
    )
    pushed = await client.post("/events", json=_push(make("pushed"), "m-1"))
    got = (
        _verdict(plain.status, await plain.json()),
        _verdict(pushed.status, await pushed.json()),
    )
    assert got == (want, want)


async def test_non_finite_ids_are_not_duplicates_of_each_other(
    client: TestClient[Any, Any],
) -> None:
    """Two events whose ids read as infinity are refused, not the second answered 200
    duplicate (acknowledged, never routed)."""
    others = json.dumps({k: v for k, v in INJURY_EVENT.items() if k != "event_id"})
    answers = []
    for text in ("1e400", "2e400"):
        body = f'{{"event_id": {text}, {others[1:]}'.encode()
        resp = await client.post("/events", data=body)
        answers.append((resp.status, (await resp.json()).get("error")))
    assert answers == [(400, "invalid_field"), (400, "invalid_field")]


async def test_an_unencodable_referenced_table_does_not_stop_routing(
    client: TestClient[Any, Any],
) -> None:
    """An event whose informational referenced_tables holds a lone surrogate is routed
    (it was dead-lettered ``unserialisable``: never routed)."""
    body = json.dumps({**INJURY_EVENT, "event_id": "rt-1", "referenced_tables": ["x.y\ud800"]})
    resp = await client.post("/events", data=body.encode())
    assert (resp.status, (await resp.json())["status"]) == (200, "accepted")

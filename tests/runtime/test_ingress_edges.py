"""Edges of the HTTP ingress: an event with a ``message`` field, a push envelope with both id
spellings, and the body timeout of ``POST /backfills``."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from runtime_support import INJURY_EVENT, MemorySink, RouterFactory

from scoperouter.processor_registry.loader import LoadedConfig
from scoperouter.runtime.http import IngressApp

HEAD = b"HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"


@pytest.fixture
async def ingress(
    zero_cfg: LoadedConfig, make_router: RouterFactory
) -> AsyncIterator[Callable[..., Any]]:
    clients: list[TestClient[Any, Any]] = []

    async def make(**kwargs: Any) -> tuple[TestClient[Any, Any], Any, IngressApp]:
        r = make_router(zero_cfg, MemorySink())
        await r.start()
        app = IngressApp(r, **kwargs)
        c: TestClient[Any, Any] = TestClient(TestServer(app.app))
        await c.start_server()
        clients.append(c)
        return c, r, app

    yield make
    for c in clients:
        await c.close()


async def test_plain_event_with_a_message_field_is_accepted(ingress: Callable[..., Any]) -> None:
    """A plain event with a string message field is an event, not a broken push envelope."""
    c, _r, _app = await ingress()
    resp = await c.post("/events", json={**INJURY_EVENT, "message": "loaded 450 rows"})
    assert resp.status == 200, await resp.text()


async def test_push_with_publish_time_and_both_id_spellings(ingress: Callable[..., Any]) -> None:
    """A push envelope with both id spellings is accepted once, its redelivery a duplicate."""
    c, _r, _app = await ingress()
    ev = {k: v for k, v in INJURY_EVENT.items() if k != "event_id"}
    env = {
        "message": {
            "data": base64.b64encode(json.dumps(ev).encode()).decode(),
            "attributes": {"a": "b"},
            "messageId": "123",
            "message_id": "123",
            "publishTime": "2025-11-19T18:05:00Z",
            "publish_time": "2025-11-19T18:05:00Z",
        },
        "subscription": "projects/p/subscriptions/s",
    }
    a = await (await c.post("/events", json=env)).json()
    b = await (await c.post("/events", json=env)).json()
    assert (a["status"], b["status"]) == ("accepted", "duplicate"), (a, b)
    # the message id qualified by its subscription (ids are unique per topic only)
    assert a["event_id"] == "projects/p/subscriptions/s#123"


async def test_one_message_id_on_two_subscriptions_is_two_events(
    ingress: Callable[..., Any],
) -> None:
    """A message id another topic's message already used routes: ids are unique per topic."""
    c, _r, _app = await ingress()
    ev = {k: v for k, v in INJURY_EVENT.items() if k != "event_id"}
    data = base64.b64encode(json.dumps(ev).encode()).decode()

    def env(sub: str) -> dict[str, Any]:
        return {"message": {"data": data, "messageId": "7"}, "subscription": sub}

    subs = ["projects/p/subscriptions/phase2-done", "projects/p/subscriptions/phase3-done"]
    answers = [await (await c.post("/events", json=env(s))).json() for s in [*subs, subs[0]]]
    assert [a["status"] for a in answers] == ["accepted", "accepted", "duplicate"], answers
    assert [a["event_id"] for a in answers] == [f"{s}#7" for s in [*subs, subs[0]]]


async def test_backfills_body_that_stops_arriving_is_answered_408(
    ingress: Callable[..., Any], tmp_path: Path
) -> None:
    """A POST /backfills body that stops arriving gets 408 after the body timeout."""
    from scoperouter.backfill.http_api import BackfillApi

    c, r, app = await ingress(body_timeout_s=0.5)
    app.backfills = BackfillApi(r.registry, lambda: None, tmp_path, lambda _b: None,
                                as_of=lambda: date(2025, 11, 30))  # fmt: skip
    reader, writer = await asyncio.open_connection(c.host, c.port)
    writer.write(b"POST /backfills " + HEAD + b"Content-Length: 1000\r\n\r\n{")
    await writer.drain()
    try:
        answer = await asyncio.wait_for(reader.read(), 5)
    except TimeoutError:
        answer = b"(no answer after 5 s)"
    writer.close()
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]

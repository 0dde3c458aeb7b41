"""Robustness of the daemon's I/O edges (audit findings 2, 3, 6, 7, 8, 9): malformed bodies
are counted 400s, push envelopes without usable data are dead-lettered, sinks do not share
pools, the outbox is fsynced, OIDC is cheap on junk, a missing subscription is loud."""

from __future__ import annotations

import base64
import gzip
import json
import zlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from runtime_support import MemorySink, RouterFactory

from scoperouter.errors import EventError
from scoperouter.messages.normalize import parse_event_bytes
from scoperouter.processor_registry.loader import LoadedConfig
from scoperouter.runtime.http import IngressApp

EVENT = {
    "event_id": "e-robust",
    "source": "nba_raw.nbac_injury_report",
    "game_date": "2025-11-19",
    "affected_entities": {"players": ["lalplayer01"]},
    "changed_fields": ["injury_status"],
}
EVENT_BYTES = json.dumps(EVENT).encode()
HUGE_INT = EVENT_BYTES.replace(b'"game_date"', b'"n":' + b"9" * 5000 + b',"game_date"')

Client = tuple[TestClient[Any, Any], Any]


@pytest.fixture
async def ingress(zero_cfg: LoadedConfig, make_router: RouterFactory) -> AsyncIterator[Callable[..., Any]]:
    """Starts a router + ingress app on demand; closes the clients at teardown."""
    clients: list[TestClient[Any, Any]] = []

    async def make(**kwargs: Any) -> Client:
        r = make_router(zero_cfg, MemorySink())
        await r.start()
        c: TestClient[Any, Any] = TestClient(TestServer(IngressApp(r, **kwargs).app))
        await c.start_server()
        clients.append(c)
        return c, r

    yield make
    for c in clients:
        await c.close()


def push(data: Any = None, **message: Any) -> bytes:
    msg: dict[str, Any] = {"messageId": "m-push", **message}
    if data is not None:
        msg["data"] = data
    return json.dumps({"message": msg, "subscription": "projects/p/subscriptions/s"}).encode()


def rejected_total(router: Any) -> float:
    return sum(
        s.value for m in router.metrics.events_rejected.collect() for s in m.samples if s.name.endswith("_total")
    )


# ---------------------------------------------------------------- finding 6: no 500s
@pytest.mark.parametrize(
    ("body", "headers", "status", "reason"),
    [
        (HUGE_INT, {}, 400, "not_json"),
        (b"[" + b"1" * 4301 + b"]", {}, 400, "not_json"),
        (EVENT_BYTES, {"Content-Encoding": "gzip"}, 400, "bad_request"),
        (EVENT_BYTES, {"Content-Encoding": "deflate"}, 400, "bad_request"),
        (EVENT_BYTES, {"Content-Encoding": "br"}, 400, "bad_request"),
        (gzip.compress(EVENT_BYTES)[:-9], {"Content-Encoding": "gzip"}, 400, "bad_request"),
        (gzip.compress(b" " * 50_000 + EVENT_BYTES), {"Content-Encoding": "gzip"}, 413, "too_large"),
        (push(base64.b64encode(HUGE_INT).decode()), {}, 200, "not_json"),
    ],
    ids=["huge-int", "huge-int-array", "gzip-plain", "deflate-plain", "br", "gzip-truncated", "gzip-bomb", "push-huge-int"],
)
async def test_malformed_bodies_are_counted_4xx(
    ingress: Callable[..., Any], body: bytes, headers: dict[str, str], status: int, reason: str
) -> None:
    """Huge integers and bodies not matching their Content-Encoding get a counted 4xx (or a dead-letter), never a 5xx."""
    c, r = await ingress(max_body_bytes=10_000)
    resp = await c.post("/events", data=body, headers=headers)
    answer = await resp.json()
    assert resp.status == status, answer
    assert answer["error"] == reason
    assert rejected_total(r) == 1
    assert (await c.post("/events", data=EVENT_BYTES)).status == 200


@pytest.mark.parametrize(
    ("encode", "encoding"),
    [
        (gzip.compress, "gzip"),
        (zlib.compress, "deflate"),
        (lambda b: zlib.compress(b)[2:-4], "deflate"),  # raw deflate
        (lambda b: b, "identity"),
    ],
    ids=["gzip", "deflate-zlib", "deflate-raw", "identity"],
)
async def test_encoded_bodies_are_accepted(ingress: Callable[..., Any], encode: Callable[[bytes], bytes], encoding: str) -> None:
    """A body correctly compressed with gzip or deflate (or identity) is decoded and accepted."""
    c, _ = await ingress()
    resp = await c.post("/events", data=encode(EVENT_BYTES), headers={"Content-Encoding": encoding})
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["status"] == "accepted"


def test_parse_event_bytes_huge_integer_is_not_json(zero_cfg: LoadedConfig) -> None:
    """parse_event_bytes turns an over-long integer into EventError('not_json'), not a bare ValueError."""
    with pytest.raises(EventError) as info:
        parse_event_bytes(HUGE_INT, zero_cfg.registry)
    assert info.value.reason == "not_json"

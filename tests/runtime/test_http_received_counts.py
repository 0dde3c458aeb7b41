"""``/metrics`` counts of ``POST /events``: every request answered 400 counts as received as
well as rejected, whether the router or the ingress refused it, and so does every other
request the ingress refuses (401, 413, 503 over the connection cap) -- received = accepted +
duplicate + rejected. A refused ``/backfills`` request is no event: it counts in neither.
Before, a 401 or a 413 on Content-Length counted as rejected only, and a 401 on
``/backfills`` as a rejected event."""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from runtime_support import MemorySink, RouterFactory

from scoperouter.processor_registry.loader import LoadedConfig
from scoperouter.runtime.http import IngressApp, bearer_verifier


@pytest.fixture
async def served(
    zero_cfg: LoadedConfig, make_router: RouterFactory
) -> AsyncIterator[tuple[TestClient[Any, Any], Any]]:
    r = make_router(zero_cfg, MemorySink())
    await r.start()
    c: TestClient[Any, Any] = TestClient(TestServer(IngressApp(r).app))
    await c.start_server()
    yield c, r
    await c.close()


def _sum(r: Any, name: str) -> float:
    return sum(
        s.value for fam in r.metrics.registry.collect() for s in fam.samples if s.name == name
    )


@pytest.mark.parametrize(
    "body",
    [b"{oops", b"[]", b'{"message": "x"}'],
    ids=["not_json", "not_an_object", "invalid_envelope"],
)
async def test_rejected_request_is_also_received(
    served: tuple[TestClient[Any, Any], Any], body: bytes
) -> None:
    """A 400 on /events counts once in events_received and once in events_rejected."""
    c, r = served
    assert (await c.post("/events", data=body)).status == 400
    assert _sum(r, "scoperouter_events_rejected_total") == 1
    assert _sum(r, "scoperouter_events_received_total") == 1


TOKEN = {"Authorization": "Bearer tok"}
BIG = b'{"x": "' + b"a" * 2000 + b'"}'


async def _chunks() -> AsyncIterator[bytes]:
    """A body of no Content-Length (chunked), past the limit once read."""
    for _ in range(10):
        yield b"a" * 200


REFUSALS: list[tuple[str, str, str, dict[str, Any], int, int]] = [
    # (case, method, path, request kwargs, status, counted in each of the two counters)
    ("no token", "POST", "/events", {"json": {"source": "x"}}, 401, 1),
    ("Content-Length past the limit", "POST", "/events", {"data": BIG, "headers": TOKEN}, 413, 1),
    ("chunked body past the limit", "POST", "/events", {"data": _chunks, "headers": TOKEN}, 413, 1),
    ("gzip body inflating past the limit", "POST", "/events",
     {"data": gzip.compress(BIG), "headers": {**TOKEN, "Content-Encoding": "gzip"}}, 413, 1),
    ("over the connection cap", "POST", "/events", {"json": {}, "headers": TOKEN}, 503, 1),
    ("backfill status without a token", "GET", "/backfills/x", {}, 401, 0),
    ("backfill start without a token", "POST", "/backfills", {"json": {}}, 401, 0),
    ("backfill over the connection cap", "GET", "/backfills/x", {"headers": TOKEN}, 503, 0),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "method", "path", "kwargs", "status", "counted"),
    REFUSALS,
    ids=[c[0] for c in REFUSALS],
)
async def test_every_refused_event_request_counts_received_and_rejected(
    zero_cfg: LoadedConfig,
    make_router: RouterFactory,
    case: str,
    method: str,
    path: str,
    kwargs: dict[str, Any],
    status: int,
    counted: int,
) -> None:
    """A refused POST /events counts once in events_received and once in events_rejected; a refused /backfills request in neither."""
    r = make_router(zero_cfg, MemorySink())
    await r.start()
    over = "connection cap" in case
    app = IngressApp(
        r,
        max_body_bytes=300,
        verifier=bearer_verifier("tok"),
        max_connections=0 if over else None,
        connection_count=(lambda: 5) if over else None,
    )
    c: TestClient[Any, Any] = TestClient(TestServer(app.app))
    await c.start_server()
    try:
        if callable(kwargs.get("data")):
            kwargs = {**kwargs, "data": kwargs["data"]()}
        resp = await c.request(method, path, **kwargs)
        assert resp.status == status, case
    finally:
        await c.close()
    assert _sum(r, "scoperouter_events_received_total") == counted, case
    assert _sum(r, "scoperouter_events_rejected_total") == counted, case

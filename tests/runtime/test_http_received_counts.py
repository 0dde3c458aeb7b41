"""``/metrics`` counts of ``POST /events``: every request answered 400 counts as received as
well as rejected, whether the router or the ingress refused it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from runtime_support import MemorySink, RouterFactory

from scoperouter.processor_registry.loader import LoadedConfig
from scoperouter.runtime.http import IngressApp


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

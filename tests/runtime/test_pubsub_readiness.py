"""Issue 18 point 7: /readyz reports not-ready during a Pub/Sub outage that does not end
the streaming pull (the client retries UNAVAILABLE inside it): a periodic probe reads the
subscription and its failure makes the source not ready until a probe succeeds again."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from runtime_support import MemorySink, RouterFactory

from scoperouter.processor_registry.loader import LoadedConfig
from scoperouter.runtime.http import IngressApp
from scoperouter.runtime.pubsub import PubSubSource


class Outage:
    """A subscription check that fails (as the client does while Pub/Sub is unreachable) while ``down``."""

    def __init__(self) -> None:
        self.down = False
        self.calls = 0

    def __call__(self, subscription: str) -> None:
        self.calls += 1
        if self.down:
            raise ConnectionError("failed to connect to all addresses (UNAVAILABLE)")


async def wait_until(cond: Any, timeout: float = 10.0) -> bool:
    for _ in range(int(timeout / 0.02)):
        if cond():
            return True
        await asyncio.sleep(0.02)
    return bool(cond())


async def test_readyz_is_503_while_pubsub_is_unreachable_and_200_after(
    zero_cfg: LoadedConfig, make_router: RouterFactory
) -> None:
    """The probe failing flips /readyz to 503 naming Pub/Sub; the next successful probe makes it 200 again."""
    r = make_router(zero_cfg, MemorySink())
    await r.start()
    outage = Outage()
    source = PubSubSource("projects/p/subscriptions/s", r, check=outage, probe_interval_s=0.02)
    ingress = IngressApp(r)
    ingress.add_readiness_check(source.readiness)
    c: TestClient[Any, Any] = TestClient(TestServer(ingress.app))
    await c.start_server()
    try:
        source.start_probe()
        assert await wait_until(lambda: outage.calls >= 2)
        assert (await c.get("/readyz")).status == 200
        outage.down = True
        assert await wait_until(lambda: source.readiness() is not None)
        resp = await c.get("/readyz")
        assert resp.status == 503 and "Pub/Sub unreachable" in (await resp.json())["detail"]
        outage.down = False
        assert await wait_until(lambda: source.readiness() is None)
        assert (await c.get("/readyz")).status == 200
    finally:
        await source.stop(timeout=1)
        await c.close()

"""Issue 18 point 7: /readyz reports not-ready during a Pub/Sub outage that does not end
the streaming pull (the client retries UNAVAILABLE inside it): a periodic probe reads the
subscription and its failure makes the source not ready until a probe succeeds again."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest
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


class Proxy:
    """A TCP proxy in front of the emulator; ``down()`` refuses and cuts every connection
    (Pub/Sub unreachable), ``up()`` listens again on the same port."""

    def __init__(self, target: str) -> None:
        host, port = target.rsplit(":", 1)
        self.target = (host, int(port))
        self.port = 0
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()

    async def _pipe(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        try:
            while data := await r.read(65536):
                w.write(data)
                await w.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            w.close()

    async def _handle(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        try:
            ur, uw = await asyncio.open_connection(*self.target)
        except OSError:
            w.close()
            return
        self.writers |= {w, uw}
        await asyncio.gather(self._pipe(r, uw), self._pipe(ur, w))

    async def up(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def down(self) -> None:
        assert self.server is not None
        self.server.close()
        for w in self.writers:
            w.transport.abort()
        self.writers.clear()
        await self.server.wait_closed()


@pytest.mark.emulator
async def test_readyz_is_503_while_the_emulator_is_unreachable(
    pubsub_emulator: str,
    zero_cfg: LoadedConfig,
    make_router: RouterFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Pub/Sub unreachable for real (its connections cut, new ones refused): the pull keeps retrying inside the client, the probe makes /readyz 503, and 200 once it is back."""
    from test_robustness_io import create_sub, topic_and_sub

    topic, sub = topic_and_sub()
    await asyncio.get_running_loop().run_in_executor(None, create_sub, topic, sub)
    proxy = Proxy(pubsub_emulator)
    await proxy.up()
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", f"127.0.0.1:{proxy.port}")
    r = make_router(zero_cfg, MemorySink())
    await r.start()
    source = PubSubSource(sub, r, probe_interval_s=0.2, probe_timeout_s=1.0)
    try:
        source.start()
        assert await wait_until(lambda: source.readiness() is None, 10)
        await asyncio.sleep(0.5)
        assert source.readiness() is None
        await proxy.down()
        assert await wait_until(lambda: source.readiness() is not None, 30), "outage not noticed"
        assert "Pub/Sub unreachable" in (source.readiness() or "")
        await proxy.up()
        assert await wait_until(lambda: source.readiness() is None, 60), source.readiness()
    finally:
        await source.stop(timeout=2)
        with contextlib.suppress(Exception):
            await proxy.down()

"""Slow and many clients (issue 18, item 5): a header timeout closes slow-header
connections while /healthz answers, a body timeout answers 408, a connection cap answers
503 beyond it, and aiohttp's own error lines are one JSON object each."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from unittest import mock

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer, make_mocked_request
from prometheus_client.parser import text_string_to_metric_families
from runtime_support import MemorySink, RouterFactory, write_registry

from scoperouter.processor_registry.loader import LoadedConfig
from scoperouter.runtime.http import IngressApp

HEAD = b"POST /events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _closed_by_peer(sock: socket.socket) -> bool:
    """True once the server has closed the connection (EOF or reset)."""
    try:
        return sock.recv(4096, socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except ConnectionError:
        return True


@pytest.fixture
def daemon(tmp_path: Path) -> Any:
    """``scoperouter serve`` with a 2 s header timeout and a cap of 30 connections."""
    cfg = write_registry(
        tmp_path,
        server={"header_timeout": "2s", "body_timeout": "60s", "max_connections": 30},
    )
    port, log = _free_port(), tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "scoperouter.cli",
                "serve",
                "--config",
                str(cfg),
                "--state-dir",
                str(tmp_path / "state"),
                "--port",
                str(port),
                "--as-of",
                "2025-11-19",
                "--shutdown-timeout",
                "2",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ},
        )
    deadline = time.monotonic() + 60
    while True:  # ready: the ingress itself (while it starts, another listener answers 503)
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:  # (refused, or HTTPError 503: an OSError too)
            pass
        assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.2)
    yield port, log
    proc.terminate()
    proc.wait(15)


async def _get(port: int, path: str) -> int:
    async with aiohttp.ClientSession() as s, s.get(f"http://127.0.0.1:{port}{path}") as r:
        return r.status


async def _rejected(port: int) -> dict[str | None, float]:
    """scoperouter_events_rejected_total by reason, from one /metrics scrape (200)."""
    async with aiohttp.ClientSession() as s, s.get(f"http://127.0.0.1:{port}/metrics") as r:
        assert r.status == 200
        text = await r.text()
    return {
        sample.labels.get("reason"): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "scoperouter_events_rejected_total"
    }


async def _post(port: int, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as s,
        s.post(f"http://127.0.0.1:{port}/events", json=body) as r,
    ):
        return r.status, await r.json()


async def test_slow_headers_are_closed_and_healthz_answers(daemon: Any) -> None:
    """Connections that never finish their request head are closed by the server; /healthz answers meanwhile."""
    port, _log = daemon
    slow = []
    for _ in range(200):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(HEAD)  # never the blank line that ends the head
        slow.append(s)
    try:
        assert await _get(port, "/healthz") == 200
        deadline = time.monotonic() + 60  # liveness bound, not a timing figure
        while not all(_closed_by_peer(s) for s in slow):
            assert time.monotonic() < deadline, "slow-header connections still open"
            assert await _get(port, "/healthz") == 200
            await asyncio.sleep(0.2)
    finally:
        for s in slow:
            s.close()


async def test_connection_cap_answers_503_but_health_passes(daemon: Any) -> None:
    """Beyond max_connections, /events answers 503 too_many_connections while /healthz and /metrics answer 200."""
    port, _log = daemon
    stalled = []
    for _ in range(40):  # complete heads, bodies that never arrive: open for body_timeout
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(HEAD + b"Content-Length: 1000\r\n\r\n{")
        stalled.append(s)
    try:
        await asyncio.sleep(0.5)
        status, body = await _post(port, {"event_id": "x"})
        assert (status, body.get("error")) == (503, "too_many_connections")
        assert await _get(port, "/healthz") == 200
        # /metrics too (it answered 503, and each refused scrape counted as a rejected event)
        first = await _rejected(port)
        for _ in range(3):
            assert await _get(port, "/metrics") == 200
        assert await _rejected(port) == first and first.get("too_many_connections", 0) >= 1
    finally:
        for s in stalled:
            s.close()
    deadline = time.monotonic() + 30
    while (await _post(port, {"event_id": "x"}))[0] == 503:  # capacity comes back
        assert time.monotonic() < deadline
        await asyncio.sleep(0.2)


@pytest.mark.parametrize(
    "sent",
    [b"", HEAD],  # connected and silent; a head that never ends (before the header timeout)
    ids=["idle", "unfinished_head"],
)
async def test_connections_without_a_request_do_not_block_work(daemon: Any, sent: bytes) -> None:
    """Over max_connections, connections with no request in progress are closed first: /events still answers."""
    port, log = daemon
    idle = []
    for _ in range(40):
        s = socket.create_connection(("127.0.0.1", port))
        if sent:
            s.sendall(sent)
        idle.append(s)
    try:
        await asyncio.sleep(0.5)
        status, body = await _post(port, {"event_id": "x"})
        assert status != 503, body  # accepted (or refused on its merits), not over the cap
        deadline = time.monotonic() + 30  # liveness bound, not a timing figure
        while sum(_closed_by_peer(s) for s in idle) < 10:  # at least those over the cap
            assert time.monotonic() < deadline, "no idle connection was closed"
            await asyncio.sleep(0.1)
        assert "closed idle connections" in log.read_text()
    finally:
        for s in idle:
            s.close()


async def test_malformed_requests_log_one_json_object_per_line(daemon: Any) -> None:
    """aiohttp's error reports for malformed requests are JSON lines, not tracebacks."""
    port, log = daemon
    for junk in (
        b"\x00\x01GARBAGE\r\n\r\n",
        b"GET / HTTP/9.9\r\n\r\n",
        b"POST /events HTTP/1.1\r\nContent-Length: x\r\n\r\n",
    ):
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(junk)
            s.settimeout(10)
            with contextlib.suppress(ConnectionError, TimeoutError):
                assert s.recv(100)[:11] in (b"HTTP/1.1 40", b"HTTP/1.0 40")
    assert await _get(port, "/healthz") == 200
    lines = [ln for ln in log.read_text().splitlines() if ln.strip()]
    assert lines
    bad = [ln for ln in lines if not ln.startswith("{")]
    assert bad == []
    assert all(isinstance(json.loads(ln), dict) for ln in lines)


@pytest.fixture
async def ingress(
    zero_cfg: LoadedConfig, make_router: RouterFactory
) -> AsyncIterator[Callable[..., Any]]:
    """An in-process ingress app with the given options; yields its test client."""
    clients: list[TestClient[Any, Any]] = []

    async def make(lingering_time: float = 10.0, **kwargs: Any) -> TestClient[Any, Any]:
        r = make_router(zero_cfg, MemorySink())
        await r.start()
        server = TestServer(IngressApp(r, **kwargs).app)
        # lingering_time: aiohttp's (its default, as serve runs it, unless a test says)
        await server.start_server(lingering_time=lingering_time)
        c: TestClient[Any, Any] = TestClient(server)
        await c.start_server()
        clients.append(c)
        return c

    yield make
    for c in clients:
        await c.close()


async def test_body_timeout_answers_408(ingress: Callable[..., Any]) -> None:
    """A request whose body stops arriving is answered 408 body_timeout and closed at once,
    without aiohttp's lingering close (here an hour: the read to EOF would hang)."""
    client = await ingress(body_timeout_s=0.5, lingering_time=3600.0)
    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(HEAD + b"Content-Length: 1000\r\n\r\n{")
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 60)  # liveness bound: EOF, not lingering
    writer.close()
    assert answer.startswith(b"HTTP/1.1 408")
    assert b"body_timeout" in answer


class _GoneWriter:
    """A payload writer whose client has gone: every write fails as aiohttp's does."""

    buffer_size = 0
    output_size = 0

    async def write_headers(self, status_line: str, headers: Any) -> None:
        raise ConnectionResetError("Cannot write to closing transport")

    async def write_eof(self, chunk: bytes = b"") -> None:
        raise ConnectionResetError("Cannot write to closing transport")


async def test_body_timeout_with_the_client_gone_closes_quietly(
    zero_cfg: LoadedConfig, make_router: RouterFactory
) -> None:
    """A 408 whose client has gone is not written (no exception, so no 500 and no logged
    error) and its connection is still closed."""
    r = make_router(zero_cfg, MemorySink())
    await r.start()
    protocol = mock.Mock()  # (aiohttp's own stand-in for a connection's protocol)
    request = make_mocked_request("POST", "/events", writer=_GoneWriter(), protocol=protocol)
    resp = await IngressApp(r, body_timeout_s=0.5)._timed_out(request)
    assert resp.status == 408
    protocol.force_close.assert_called_once_with()

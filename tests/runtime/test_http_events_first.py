"""``IngressApp.route_events_first`` (the daemon's server): exactly ``POST /events`` goes
straight to the events handler (``events_now``), every other request through the application, and each
request gets the same answer both ways."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from runtime_support import INJURY_EVENT, MemorySink, RouterFactory

from scoperouter.processor_registry.loader import LoadedConfig
from scoperouter.runtime.http import IngressApp

EVENT = INJURY_EVENT
BODY = json.dumps(EVENT).encode()


@pytest.mark.parametrize(
    ("method", "path", "body", "headers", "direct"),
    [
        ("POST", "/events", BODY, {}, 1),
        ("POST", "/events", b"{oops", {}, 1),
        ("POST", "/events", b"[]", {}, 1),
        ("POST", "/events", b"x" * 2048, {}, 1),  # over max_body_bytes: 413
        ("POST", "/events?x=1", BODY, {}, 0),  # a query: through the application
        ("POST", "/events", BODY, {"Expect": "100-continue"}, 0),
        ("POST", "/events/", BODY, {}, 0),  # 404
        ("GET", "/events", b"", {}, 0),  # 405
        ("PUT", "/events", BODY, {}, 0),  # 405
        ("GET", "/healthz", b"", {}, 0),
        ("GET", "/readyz", b"", {}, 0),
    ],
)
async def test_events_first_answers_as_the_application(
    tmp_path: Path,
    zero_cfg: LoadedConfig,
    make_router: RouterFactory,
    method: str,
    path: str,
    body: bytes,
    headers: dict[str, str],
    direct: int,
) -> None:
    """Each request gets the application's status, content type and body; only plain POST /events skips the application."""
    answers: list[tuple[int, str, Any]] = []
    calls: list[int] = []
    for first in (False, True):
        r = make_router(zero_cfg, MemorySink(), state_dir=tmp_path / f"s{first}")
        await r.start()
        app = IngressApp(r, max_body_bytes=1024)
        seen: list[object] = []
        events_now = app.events_now

        def counted(request: Any, events_now: Any = events_now, seen: list[object] = seen) -> Any:
            seen.append(request)
            return events_now(request)

        app.events_now = counted  # type: ignore[method-assign]  # what route_events_first calls
        c: TestClient[Any, Any] = TestClient(TestServer(app.app))
        await c.start_server()
        try:
            if first:
                assert c.server.runner is not None and c.server.runner.server is not None
                app.route_events_first(c.server.runner.server)
            resp = await c.request(method, path, data=body, headers=headers)
            text = await resp.text()
            got = json.loads(text) if resp.content_type == "application/json" else text
            answers.append((resp.status, resp.headers.get("Content-Type", ""), got))
            calls.append(len(seen))
        finally:
            await c.close()
    assert answers[0] == answers[1]
    assert calls == [0, direct]


@pytest.mark.parametrize(
    ("size", "status", "error"),
    [(1024, 400, "not_json"), (1025, 413, "too_large"), (4096, 413, "too_large")],
)
async def test_chunked_body_over_the_limit_is_413(
    tmp_path: Path,
    zero_cfg: LoadedConfig,
    make_router: RouterFactory,
    size: int,
    status: int,
    error: str,
) -> None:
    """A body without Content-Length (chunked) is held to max_body_bytes once read: past it 413 too_large, at it read whole."""
    r = make_router(zero_cfg, MemorySink())
    await r.start()
    app = IngressApp(r, max_body_bytes=1024)
    c: TestClient[Any, Any] = TestClient(TestServer(app.app))
    await c.start_server()
    try:
        assert c.server.runner is not None and c.server.runner.server is not None
        app.route_events_first(c.server.runner.server)

        async def chunks() -> Any:
            yield b"x" * size

        resp = await c.post("/events", data=chunks())
        assert resp.request_info.headers.get("Transfer-Encoding") == "chunked"
        assert (resp.status, (await resp.json())["error"]) == (status, error)
    finally:
        await c.close()

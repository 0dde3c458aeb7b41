"""The daemon's accepted answers as ready bytes (``http_ready.Ready``): byte for byte what
aiohttp writes for the application's ``web.Response`` (but the ``Date`` value), only for
keep-alive HTTP/1.1 requests on a server without an access log; every other request and
outcome gets aiohttp's own response."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from runtime_support import INJURY_EVENT, MemorySink, RouterFactory

from scoperouter.processor_registry.loader import LoadedConfig
from scoperouter.runtime.http import IngressApp
from scoperouter.runtime.http_answers import _Answer, outcome_response
from scoperouter.runtime.http_ready import Ready
from scoperouter.runtime.outcomes import Outcome

BODY = json.dumps(INJURY_EVENT).encode()
_DATE = re.compile(rb"\r\nDate: [^\r]*\r\n")


async def _exchange(port: int, version: str, headers: bytes) -> bytes:
    """One POST /events of ``BODY`` on a fresh connection; the raw answer."""
    rd, wr = await asyncio.open_connection("127.0.0.1", port)
    try:
        wr.write(
            f"POST /events HTTP/{version}\r\nHost: x\r\nContent-Length: {len(BODY)}\r\n".encode()
            + headers
            + b"\r\n"
            + BODY
        )
        await wr.drain()
        head = await asyncio.wait_for(rd.readuntil(b"\r\n\r\n"), 5)
        length = int(re.search(rb"Content-Length: (\d+)", head).group(1))  # type: ignore[union-attr]
        return _DATE.sub(b"\r\nDate: -\r\n", head) + await rd.readexactly(length)
    finally:
        wr.close()


@pytest.mark.parametrize(
    ("version", "headers", "access_log", "ready"),
    [
        ("1.1", b"", False, True),  # the daemon's producers
        ("1.1", b"Connection: keep-alive\r\n", False, True),
        ("1.1", b"Connection: close\r\n", False, False),  # aiohttp adds Connection: close
        ("1.0", b"", False, False),
        ("1.0", b"Connection: keep-alive\r\n", False, False),  # Connection: keep-alive added
        ("1.1", b"", True, False),  # an access log reads the response
    ],
)
async def test_ready_answer_is_the_applications_bytes(
    tmp_path: Path,
    zero_cfg: LoadedConfig,
    make_router: RouterFactory,
    monkeypatch: pytest.MonkeyPatch,
    version: str,
    headers: bytes,
    access_log: bool,
    ready: bool,
) -> None:
    """An accepted then a duplicate answer through route_events_first are the bytes the application writes for them (Date aside); a Ready is made only for keep-alive HTTP/1.1 without an access log."""
    made: list[int] = []
    init = Ready.__init__

    def counted(self: Ready, body: str) -> None:
        made.append(1)
        init(self, body)

    monkeypatch.setattr(Ready, "__init__", counted)
    answers: list[list[bytes]] = []
    for first in (False, True):
        r = make_router(zero_cfg, MemorySink(), state_dir=tmp_path / f"s{first}")
        await r.start()
        app = IngressApp(r)
        srv = TestServer(app.app)
        await srv.start_server(**({} if access_log else {"access_log": None}))
        try:
            if first:
                assert srv.runner is not None and srv.runner.server is not None
                app.route_events_first(srv.runner.server)
            assert srv.port is not None
            answers.append([await _exchange(srv.port, version, headers) for _ in range(2)])
        finally:
            await srv.close()
    assert answers[0] == answers[1]
    assert [json.loads(a.split(b"\r\n\r\n", 1)[1])["status"] for a in answers[1]] == [
        "accepted",
        "duplicate",
    ]
    assert len(made) == (2 if ready else 0)


async def test_ready_answers_on_one_connection(
    tmp_path: Path, zero_cfg: LoadedConfig, make_router: RouterFactory
) -> None:
    """Ready answers keep the connection open: several requests in turn on one connection, each answered once, in order."""
    r = make_router(zero_cfg, MemorySink())
    await r.start()
    app = IngressApp(r)
    srv = TestServer(app.app)
    await srv.start_server(access_log=None)
    assert srv.runner is not None and srv.runner.server is not None and srv.port is not None
    app.route_events_first(srv.runner.server)
    rd, wr = await asyncio.open_connection("127.0.0.1", srv.port)
    try:
        for i in range(3):
            body = json.dumps({**INJURY_EVENT, "event_id": f"e-{i}"}).encode()
            wr.write(
                b"POST /events HTTP/1.1\r\nHost: x\r\nContent-Length: "
                + str(len(body)).encode()
                + b"\r\n\r\n"
                + body
            )
            head = await asyncio.wait_for(rd.readuntil(b"\r\n\r\n"), 5)
            n = int(re.search(rb"Content-Length: (\d+)", head).group(1))  # type: ignore[union-attr]
            assert head.startswith(b"HTTP/1.1 200 OK\r\n") and b"Connection" not in head
            assert json.loads(await rd.readexactly(n))["event_id"] == f"e-{i}"
    finally:
        wr.close()
        await srv.close()


@pytest.mark.parametrize(
    "outcome",
    [
        Outcome("rejected", "e-1", "invalid_date", "bad"),
        Outcome("unavailable", reason="store_error"),
        Outcome("accepted", None, triggers=0),  # (no id: the generic response)
    ],
)
def test_ready_answer_only_for_accepted_or_duplicate(outcome: Outcome) -> None:
    """Other outcomes settle a ready _Answer with aiohttp's own response, as without ready."""
    loop = asyncio.new_event_loop()
    try:
        fut: asyncio.Future[Any] = loop.create_future()
        _Answer(fut, False, True).set_result(outcome)
        want = outcome_response(outcome, push=False)
        got = fut.result()
        assert isinstance(got, web.Response)
        assert (got.status, got.body) == (want.status, want.body)
    finally:
        loop.close()

"""How triggers leave the router at the edges: redirects, token fetches under the target's
timeout, ``${ENV}`` in ``$lookup`` tables, ``$coalesce`` over a left-out value, unsendable
headers, requests the HTTP client refuses to write, error answers whose body stalls,
outbox lines after a short write."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from test_sinks import TRIGGER

from scoperouter.errors import ConfigError, DispatchError
from scoperouter.processor_registry.models import TargetSpec
from scoperouter.runtime.sinks import SinkFactory


class Mover:
    """POST /moved/<status> answers that redirect to /landing, which answers 200 to anything."""

    def __init__(self) -> None:
        self.landed: list[tuple[str, bytes]] = []
        app = web.Application()
        app.router.add_post("/moved/{status}", self.moved)
        app.router.add_route("*", "/landing", self.landing)
        self.server = TestServer(app)

    async def moved(self, request: web.Request) -> web.Response:
        await request.read()
        status = int(request.match_info["status"])
        return web.Response(status=status, headers={"Location": "/landing"})

    async def landing(self, request: web.Request) -> web.Response:
        self.landed.append((request.method, await request.read()))
        return web.Response(text="a page")


@pytest.fixture
async def mover() -> AsyncIterator[Mover]:
    m = Mover()
    await m.server.start_server()
    yield m
    await m.server.close()


@pytest.mark.parametrize("status", [301, 302, 303])
async def test_a_redirect_is_not_a_delivery(mover: Mover, tmp_path: Path, status: int) -> None:
    """A 301/302/303 answer is a permanent error, not a bodiless GET that counts as delivered."""
    f = SinkFactory(tmp_path)
    target: dict[str, Any] = {"http": {"url": str(mover.server.make_url(f"/moved/{status}"))}}
    try:
        with pytest.raises(DispatchError) as exc:
            await f.build("p", TargetSpec.model_validate(target)).send(TRIGGER, message_id="m")
    finally:
        await f.close()
    assert exc.value.retryable is False
    assert f"HTTP {status}" in exc.value.detail
    assert mover.landed == []


async def test_the_target_timeout_bounds_the_id_token_fetch(
    mover: Mover, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With http.audience, a hanging ID-token fetch fails the send as retryable at the target's timeout."""
    import google.oauth2.id_token

    release = threading.Event()

    def hang(_request: Any, _audience: str) -> str:
        release.wait(10)
        return "token"

    monkeypatch.setattr(google.oauth2.id_token, "fetch_id_token", hang)
    url = str(mover.server.make_url("/landing"))
    target = {"http": {"url": url, "timeout": "300ms", "audience": "https://svc"}}
    f = SinkFactory(tmp_path)
    try:  # before the fix the send waited for the token (10 s) and then succeeded
        with pytest.raises(DispatchError) as exc:
            await f.build("p", TargetSpec.model_validate(target)).send(TRIGGER, message_id="m")
    finally:
        release.set()
        await f.close()
    assert exc.value.retryable is True
    assert mover.landed == []


async def test_env_in_a_lookup_table_is_expanded(tmp_path: Path) -> None:
    """A ``${VAR}`` value in a $lookup table is expanded at startup like every other literal."""
    lookup = {"$lookup": ["$.processor", {"player_game_summary": "${PGS_KEY}"}]}
    target = {"outbox": {}, "mapping": {"body": {"key": lookup, "plain": "${PGS_KEY}"}}}
    f = SinkFactory(tmp_path, env={"PGS_KEY": "k-pgs"}, fsync=False)
    try:
        sink = f.build("player_game_summary", TargetSpec.model_validate(target))
        await sink.send(TRIGGER, message_id="m")
    finally:
        await f.close()
    line = (tmp_path / "outbox.jsonl").read_text().splitlines()
    assert [json.loads(x) for x in line] == [{"key": "k-pgs", "plain": "k-pgs"}]


def test_an_unset_env_in_a_lookup_table_fails_at_startup(tmp_path: Path) -> None:
    """An unset ``${VAR}`` in a $lookup table is a config error, as anywhere in a mapping."""
    lookup = {"$lookup": ["$.processor", {"player_game_summary": "${PGS_KEY}"}]}
    target = {"outbox": {}, "mapping": {"body": {"key": lookup}}}
    with pytest.raises(ConfigError, match="PGS_KEY"):
        SinkFactory(tmp_path, env={}).build(
            "player_game_summary", TargetSpec.model_validate(target)
        )


class FullDisk:
    """``os`` for the outbox module whose ``write`` stores ``room`` more bytes, then fails ENOSPC."""

    def __init__(self, room: int) -> None:
        self.room: int | None = room

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)

    def write(self, fd: int, data: bytes | memoryview) -> int:
        if self.room is None:
            return os.write(fd, data)
        if self.room == 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        n = os.write(fd, bytes(data[: self.room]))
        self.room -= n
        return n


@pytest.mark.parametrize("fsync", [True, False])
async def test_a_short_write_leaves_no_broken_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fsync: bool
) -> None:
    """A write cut short by a full disk leaves every outbox line valid JSON once a retry succeeds."""
    from scoperouter.runtime import outbox

    disk = FullDisk(room=20)
    monkeypatch.setattr(outbox, "os", disk)
    sink = outbox.OutboxSink(tmp_path / "outbox.jsonl", fsync=fsync)
    try:
        with contextlib.suppress(DispatchError):  # failing is fine: the dispatcher retries
            await sink.send(TRIGGER, message_id="m")
        disk.room = None  # space freed
        await sink.send(TRIGGER, message_id="m")  # the retry
        await sink.send(TRIGGER.model_copy(update={"trigger_id": "t-2"}), message_id="m2")
    finally:
        await sink.close()
    lines = (tmp_path / "outbox.jsonl").read_text().splitlines()
    assert [json.loads(x)["trigger_id"] for x in lines][-2:] == ["t-1", "t-2"]


def test_coalesce_passes_over_a_left_out_value() -> None:
    """$coalesce takes its fallback when an earlier argument is an $if left out, not the absence."""
    from scoperouter.processor_registry.target_format import trigger_fields
    from scoperouter.processor_registry.template import compile_template, render

    ids = {"$if": [{"$eq": ["$.scope", "entities"]}, "$.entity_ids"]}
    node = compile_template({"ids": {"$coalesce": [ids, []]}}, trigger_fields(["p"], ["player"]))
    assert render(node, {"scope": "date", "entity_ids": None}) == {"ids": []}
    assert render(node, {"scope": "entities", "entity_ids": ["a"]}) == {"ids": ["a"]}


@pytest.mark.parametrize("corr", ["c-9\r\nX-Injected: 1", "c-9\x1b", "c-9\x7f", "bell\x07"])
async def test_a_header_that_can_never_be_sent_is_permanent(
    mover: Mover, tmp_path: Path, corr: str
) -> None:
    """A mapped header rendering a control character (an event's correlation_id) dead-letters."""
    url = str(mover.server.make_url("/landing"))
    target = {
        "http": {"url": url},
        "mapping": {"headers": {"X-Corr": "$.correlation_id"}, "body": "$"},
    }
    trigger = TRIGGER.model_copy(update={"correlation_id": corr})
    f = SinkFactory(tmp_path)
    try:
        with pytest.raises(DispatchError) as exc:
            await f.build("p", TargetSpec.model_validate(target)).send(trigger, message_id="m")
    finally:
        await f.close()
    assert exc.value.retryable is False
    assert mover.landed == []
    assert exc.value.local is True  # nothing was sent: the target's circuit ignores it


@pytest.mark.parametrize("token", ["tok-\x1b", "tok\r\nX-Injected: 1"])
async def test_a_request_the_http_client_refuses_to_build_is_local_and_permanent(
    mover: Mover, token: str
) -> None:
    """A request aiohttp refuses to build (a header value no check caught: here an ID token)
    dead-letters at once as a local error, never a retry counted against the target."""
    import aiohttp

    from scoperouter.runtime.http_sink import HttpSink

    async with aiohttp.ClientSession() as session:
        sink = HttpSink(
            str(mover.server.make_url("/landing")),
            timeout_s=5,
            session_factory=lambda: session,
            audience="https://svc.example",
        )

        async def id_token(refused: str | None = None) -> str:
            return token

        sink._id_token = id_token  # type: ignore[method-assign]
        with pytest.raises(DispatchError) as exc:
            await sink.send(TRIGGER, message_id="m")
    assert (exc.value.retryable, exc.value.local) == (False, True)
    assert "control character" in exc.value.detail
    assert mover.landed == []


@pytest.mark.parametrize(
    ("status", "delay", "retryable"),
    [
        (400, 0.0, False),  # a permanent refusal stays permanent
        (422, 0.0, False),
        (503, 0.0, True),
        (429, 0.0, True),
        (400, 0.9, False),  # the status came late: the whole-send timeout ends the read
    ],
)
async def test_an_error_answer_whose_body_stalls_is_decided_by_its_status(
    status: int, delay: float, retryable: bool
) -> None:
    """An error status whose body stalls is that status (with the part of the answer read),
    not a retried 'timeout': a stalled 400 dead-letters at once."""
    import asyncio

    import aiohttp

    from scoperouter.runtime.http_sink import HttpSink

    async def stall(request: web.Request) -> web.StreamResponse:
        await request.read()
        await asyncio.sleep(delay)
        resp = web.StreamResponse(status=status)
        await resp.prepare(request)
        await resp.write(b'{"error": "no output_table"')
        await asyncio.sleep(30)
        return resp

    app = web.Application()
    app.router.add_post("/stall", stall)
    server = TestServer(app)
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as session:
            sink = HttpSink(
                str(server.make_url("/stall")), timeout_s=1.0, session_factory=lambda: session
            )
            with pytest.raises(DispatchError) as exc:
                await asyncio.wait_for(sink.send(TRIGGER, message_id="m"), 10)
    finally:
        await server.close()
    assert exc.value.retryable is retryable
    assert exc.value.detail.startswith(f'HTTP {status}: {{"error": "no output_table"')

"""Credentials never shown (state DSNs, mapped target headers) and a non-UTF-8 bearer token."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from test_sinks import TRIGGER

from scoperouter.errors import ConfigError, DispatchError
from scoperouter.processor_registry.models import TargetSpec
from scoperouter.runtime.config import resolve
from scoperouter.runtime.sinks import SinkFactory
from scoperouter.runtime.state_open import open_shared_state
from scoperouter.state import StoreOptions

PW = "s3cretPW41"
API_KEY = "k3y-5ecret-0a9f"


# ------------------------------------------------- finding 1: state DSN password shown


@pytest.mark.parametrize(
    "dsn",
    [
        f"postgresql://sr@db:5432/x?password={PW}",  # libpq's query-parameter password
        f"postgresql://sr:{PW}@[::1:5432/x",  # a malformed host: urlsplit raises
    ],
    ids=["query-password", "malformed-ipv6"],
)
def test_print_config_never_shows_a_state_dsn_password(dsn: str) -> None:
    """serve --print-config masks a DSN's password however the DSN spells or misspells it."""
    shown = resolve({}, {"SCOPEROUTER_STATE": dsn}, {}).to_json()["state"]["value"]
    assert PW not in shown


@pytest.mark.parametrize(
    "dsn",
    [
        f"postgresql://sr:{PW}%zz@127.0.0.1:1/x",  # an unencoded '%' in the password
        f"postgresql://sr:{PW}@[::1:5432/x",  # libpq quotes the whole URI in its error
    ],
    ids=["bad-percent", "malformed-ipv6"],
)
def test_unusable_state_store_error_never_shows_the_password(dsn: str) -> None:
    """The one-line error of an unusable state DSN carries neither the password nor a traceback."""
    pytest.importorskip("psycopg")
    with pytest.raises(ConfigError) as exc:
        open_shared_state(dsn, StoreOptions(owner="t"), "full")
    assert PW not in str(exc.value)


# -------------------------------------- finding 2: mapped header secret echoed by a target


class Echo:
    """POST /run answers 401 quoting the X-API-Key it got, as many APIs do."""

    def __init__(self) -> None:
        app = web.Application()
        app.router.add_post("/run", self.run)
        self.server = TestServer(app, host="127.0.0.1")

    async def run(self, request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=401, text=f"invalid API key {request.headers.get('X-API-Key')}")


@pytest.fixture
async def echo() -> AsyncIterator[Echo]:
    e = Echo()
    await e.server.start_server()
    yield e
    await e.server.close()


async def test_a_mapped_header_secret_echoed_by_the_target_is_not_kept(
    echo: Echo, tmp_path: Path
) -> None:
    """A target's error answer quoting the ${ENV} API key of a mapped header is masked in the dispatch error."""
    f = SinkFactory(tmp_path, env={"API_KEY": API_KEY})
    target: dict[str, Any] = {
        "http": {"url": str(echo.server.make_url("/run"))},
        "mapping": {"headers": {"X-API-Key": "${API_KEY}"}, "body": {"d": "$.game_date"}},
    }
    try:
        with pytest.raises(DispatchError) as exc:
            await f.build("p", TargetSpec.model_validate(target)).send(TRIGGER, message_id="m")
    finally:
        await f.close()
    assert "HTTP 401" in exc.value.detail
    assert API_KEY not in exc.value.detail
    assert API_KEY not in str(exc.value)


# ------------------------------ finding 3: a non-UTF-8 bearer token is a 500, not a 401


@pytest.mark.parametrize("path", ["/events", "/backfills"])
async def test_a_non_utf8_bearer_token_is_refused_as_unauthorized(
    zero_cfg: Any, make_router: Any, path: str
) -> None:
    """An Authorization header holding bytes that are not UTF-8 gets a 401 (a rejected event on /events only), never a 500."""
    from runtime_support import MemorySink

    from scoperouter.runtime.http import IngressApp, bearer_verifier

    r = make_router(zero_cfg, MemorySink())
    await r.start()
    app = IngressApp(r, verifier=bearer_verifier("s3cret"))
    runner = web.AppRunner(app.app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n".encode()
            + b"Authorization: Bearer \xff\xfe\r\nConnection: close\r\n\r\n{}"
        )
        await writer.drain()
        answer = await reader.read()
        writer.close()
    finally:
        await runner.cleanup()
    assert answer.split(b"\r\n", 1)[0] == b"HTTP/1.1 401 Unauthorized", answer[:200]
    counted = 1 if path == "/events" else 0  # a refused /backfills request is no event
    assert r.metrics.events_rejected.labels("unauthorized")._value.get() == counted


# --------------------------- review7 1: a secret straddling the kept answer's cut leaks a prefix


class Padded:
    """POST /run answers 401 with ``pad`` filler bytes and then the X-API-Key it got, ``times`` times."""

    def __init__(self, pad: int, times: int) -> None:
        self.pad, self.times = pad, times
        app = web.Application()
        app.router.add_post("/run", self.run)
        self.server = TestServer(app, host="127.0.0.1")

    async def run(self, request: web.Request) -> web.Response:
        await request.read()
        key = request.headers.get("X-API-Key", "")
        return web.Response(status=401, text=("." * self.pad + key) * self.times + "!" * 300)


LONG_KEY = "AKIA-live-0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize(
    ("pad", "times"),
    [(p, 1) for p in (150, 170, 180, 190, 195, 199)] + [(60, 4), (100, 3), (80, 5)],
)
async def test_a_secret_straddling_the_kept_answers_cut_leaks_no_prefix(
    tmp_path: Path, pad: int, times: int
) -> None:
    """A target quoting the API key across the 200-character cut of its answer: not even a prefix is kept."""
    target_server = Padded(pad, times)
    await target_server.server.start_server()
    f = SinkFactory(tmp_path, env={"API_KEY": LONG_KEY})
    target: dict[str, Any] = {
        "http": {"url": str(target_server.server.make_url("/run"))},
        "mapping": {"headers": {"X-API-Key": "${API_KEY}"}, "body": {"d": "$.game_date"}},
    }
    try:
        with pytest.raises(DispatchError) as exc:
            await f.build("p", TargetSpec.model_validate(target)).send(TRIGGER, message_id="m")
    finally:
        await f.close()
        await target_server.server.close()
    detail = exc.value.detail
    assert detail.startswith("HTTP 401: .")
    assert "AKIA" not in detail and "AKI" not in detail, detail[-80:]
    assert len(detail) <= len("HTTP 401: ") + 200

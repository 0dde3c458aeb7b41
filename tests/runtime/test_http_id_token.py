"""An HTTP target with an ``audience`` sends a Google ID token it fetched: cached at most
~50 min from its fetch and never into the last minute of the ``exp`` the token states (a
token source may hand out one well into its hour), and a 401 answered to a token makes the
send fetch a new one and try once more (an expired or revoked token is not a permanent
refusal; the same 401 to a new token, or a source giving back the same token, is). The
token source is a fake (``google.oauth2.id_token.fetch_id_token``); the target checks each
token's ``exp`` against the test's clock."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from test_sinks import TRIGGER

from scoperouter.errors import DispatchError
from scoperouter.runtime.http_sink import (
    TOKEN_EXPIRY_MARGIN_S,
    TOKEN_REUSE_S,
    HttpSink,
    token_reusable_until,
)

T0 = 1_763_000_000.0
AUD = "https://svc.example"


def _b64(obj: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")


def jwt(exp: object, n: int = 0) -> str:
    """An unsigned JWT-shaped token stating ``exp`` (``n`` tells tokens apart)."""
    return f"{_b64({'alg': 'RS256', 'kid': 'k'})}.{_b64({'exp': exp, 'n': n})}.sig"


def exp_of(token: str) -> float:
    payload = token.split(".")[1]
    return float(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["exp"])


@pytest.mark.parametrize(
    ("token", "until"),
    [
        (jwt(T0 + 3600), T0 + TOKEN_REUSE_S),  # a fresh token: ~50 min
        (jwt(T0 + 600), T0 + 600 - TOKEN_EXPIRY_MARGIN_S),  # handed out late in its hour
        (jwt(T0 + 30), T0 + 30 - TOKEN_EXPIRY_MARGIN_S),  # in its last minute: not reused
        (jwt("soon"), T0 + TOKEN_REUSE_S),  # no numeric exp: the fetch time rules
        (jwt(True), T0 + TOKEN_REUSE_S),
        ("opaque-token", T0 + TOKEN_REUSE_S),  # not a JWT
        ("a.!!!.c", T0 + TOKEN_REUSE_S),
    ],
    ids=["fresh", "late-in-its-hour", "last-minute", "exp-text", "exp-bool", "opaque", "junk"],
)
def test_a_token_is_reused_until_its_fetch_limit_or_just_before_its_exp(
    token: str, until: float
) -> None:
    """A fetched token is sent until min(fetch + 3000 s, exp - 60 s); without a readable exp, fetch + 3000 s."""
    assert token_reusable_until(token, T0) == until


class Tokens:
    """The token source: each fetch mints a token living ``lifetimes[i]`` seconds from
    ``now`` (the last lifetime repeats); ``same``: every fetch gives back the first token."""

    def __init__(self, now: list[float], lifetimes: list[float], same: bool = False) -> None:
        self.now, self.lifetimes, self.same = now, lifetimes, same
        self.fetched: list[str] = []  # the tokens minted
        self.calls = 0

    def __call__(self, _request: Any, audience: str) -> str:
        assert audience == AUD
        self.calls += 1
        if self.same and self.fetched:
            return self.fetched[0]
        life = self.lifetimes[min(len(self.fetched), len(self.lifetimes) - 1)]
        self.fetched.append(jwt(self.now[0] + life, len(self.fetched)))
        return self.fetched[-1]


class Service:
    """The target: 401 to a token past its ``exp`` by the test's clock, or in ``revoked``
    (``"*"``: every token); 200 otherwise. Keeps every token it was sent."""

    def __init__(self, now: list[float]) -> None:
        self.now = now
        self.revoked: set[str] = set()
        self.seen: list[str] = []
        app = web.Application()
        app.router.add_post("/svc", self.handle)
        self.server = TestServer(app)

    async def handle(self, request: web.Request) -> web.Response:
        await request.read()
        token = request.headers["Authorization"].removeprefix("Bearer ")
        self.seen.append(token)
        if "*" in self.revoked or token in self.revoked or exp_of(token) <= self.now[0]:
            return web.Response(status=401, text="token expired or revoked")
        return web.Response(text="ok")


@pytest.fixture
async def service() -> AsyncIterator[tuple[Service, list[float], aiohttp.ClientSession]]:
    now = [T0]
    svc = Service(now)
    await svc.server.start_server()
    session = aiohttp.ClientSession()
    yield svc, now, session
    await session.close()
    await svc.server.close()


def _sink(svc: Service, now: list[float], session: aiohttp.ClientSession) -> HttpSink:
    return HttpSink(
        str(svc.server.make_url("/svc")),
        timeout_s=5.0,
        session_factory=lambda: session,
        audience=AUD,
        clock=lambda: now[0],
    )


# (lifetimes the source gives its tokens, seconds between the two sends, fetches made)
CACHE_CASES = [
    ([3600], 700.0, 1),  # a fresh token: reused
    ([600, 3600], 700.0, 2),  # handed out with 10 min left: fetched again before its exp
    ([3600], TOKEN_REUSE_S + 1, 2),  # past the fetch limit: fetched again
]


@pytest.mark.parametrize(("lifetimes", "between", "fetches"), CACHE_CASES)
async def test_a_cached_token_is_never_sent_past_its_exp(
    service: tuple[Service, list[float], aiohttp.ClientSession],
    monkeypatch: pytest.MonkeyPatch,
    lifetimes: list[float],
    between: float,
    fetches: int,
) -> None:
    """A token fetched close to its exp is replaced before it expires: no 401 reaches a send."""
    import google.oauth2.id_token

    svc, now, session = service
    tokens = Tokens(now, lifetimes)
    monkeypatch.setattr(google.oauth2.id_token, "fetch_id_token", tokens)
    sink = _sink(svc, now, session)
    await sink.send(TRIGGER, message_id="m")
    now[0] += between
    await sink.send(TRIGGER, message_id="m")  # before the fix: HTTP 401, dead-lettered
    assert len(tokens.fetched) == fetches
    assert svc.seen == [tokens.fetched[0], tokens.fetched[-1]]


# (what the target refuses, the source gives back the same token, delivered, posts, fetches)
REFUSED_CASES = [
    ("first", False, True, 2, 2),  # a revoked token: a new one, sent once more, delivered
    ("*", False, False, 2, 2),  # refuses every token: one more try, then the 401 stands
    ("*", True, False, 1, 2),  # the source gives back the same token: no second POST
]


@pytest.mark.parametrize(("refuses", "same", "delivered", "posts", "fetches"), REFUSED_CASES)
async def test_a_401_fetches_a_new_token_and_tries_once_more(
    service: tuple[Service, list[float], aiohttp.ClientSession],
    monkeypatch: pytest.MonkeyPatch,
    refuses: str,
    same: bool,
    delivered: bool,
    posts: int,
    fetches: int,
) -> None:
    """A 401 to an ID token is retried once with a new token; a 401 that stands is permanent."""
    import google.oauth2.id_token

    svc, now, session = service
    tokens = Tokens(now, [3600], same=same)
    monkeypatch.setattr(google.oauth2.id_token, "fetch_id_token", tokens)
    svc.revoked.add(jwt(T0 + 3600, 0) if refuses == "first" else refuses)
    sink = _sink(svc, now, session)
    if delivered:
        await sink.send(TRIGGER, message_id="m")
    else:
        with pytest.raises(DispatchError) as caught:
            await sink.send(TRIGGER, message_id="m")
        err = caught.value
        assert not err.retryable and err.detail.startswith("HTTP 401")
        assert all(t not in err.detail for t in tokens.fetched)  # tokens masked
    assert len(svc.seen) == posts and tokens.calls == fetches

"""OIDC push auth when Google's certificates cannot be had: a token whose key id the router
cannot look up (the endpoint failing or hanging, the keys it has expired) is answered 503
-- its sender retries -- never 401, which the router's own HTTP targets (http_sink) and
most clients take as permanent. A key id that a current certificate set lacks is still 401."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from runtime_support import INJURY_EVENT, MemorySink, RouterFactory
from test_oidc import AUD, SA, FakeCerts, GatedCerts, rsa_keys, signed

from scoperouter.processor_registry.loader import LoadedConfig
from scoperouter.runtime.http import IngressApp
from scoperouter.runtime.oidc import CertCache, oidc_verifier

__all__ = ["rsa_keys"]  # (the key pair fixture, shared with test_oidc)


def failing() -> GatedCerts:
    """A certificate endpoint every fetch of which fails at once."""
    gate = GatedCerts({})
    gate.hang.set()
    gate.release.set()
    return gate


@pytest.fixture
async def post(
    zero_cfg: LoadedConfig, make_router: RouterFactory
) -> AsyncIterator[Callable[..., Any]]:
    """POSTs a push envelope with a bearer token to an ingress verifying with ``cache``."""
    clients: list[TestClient[Any, Any]] = []

    async def send(cache: CertCache, token: str) -> tuple[int, dict[str, Any]]:
        r = make_router(zero_cfg, MemorySink())
        await r.start()
        c: TestClient[Any, Any] = TestClient(
            TestServer(IngressApp(r, verifier=oidc_verifier(AUD, SA, certs=cache)).app)
        )
        await c.start_server()
        clients.append(c)
        data = base64.b64encode(json.dumps(INJURY_EVENT).encode()).decode()
        env = {"message": {"data": data, "messageId": "m-1"}, "subscription": "s"}
        resp = await c.post("/events", json=env, headers={"Authorization": f"Bearer {token}"})
        return resp.status, await resp.json()

    yield send
    for c in clients:
        await c.close()


async def test_valid_token_while_certificates_cannot_be_fetched_is_503(
    post: Callable[..., Any], rsa_keys: tuple[str, str]
) -> None:
    """A genuine token arriving while the certificate endpoint fails gets 503, not 401."""
    status, answer = await post(CertCache(failing()), signed(rsa_keys[0]))
    assert (status, answer["error"]) == (503, "auth_unavailable")


async def test_rotated_key_while_the_refresh_fails_is_503(
    post: Callable[..., Any], rsa_keys: tuple[str, str]
) -> None:
    """Google rotated its key (a token signed with a new key id) after the cached
    certificates expired, and the refresh fails: 503, the sender retries."""
    now = [1000.0]
    gate = GatedCerts({"k1": rsa_keys[1]}, max_age=300)
    cache = CertCache(gate, clock=lambda: now[0], retry_after_failure_s=10)
    check = oidc_verifier(AUD, SA, certs=cache)
    assert await check(signed(rsa_keys[0], kid="k1"))
    gate.hang.set()
    gate.release.set()  # from now on every fetch fails
    now[0] += 400
    status, answer = await post(cache, signed(rsa_keys[0], kid="k2"))
    assert (status, answer["error"]) == (503, "auth_unavailable")


async def test_unknown_key_id_with_current_certificates_is_401(
    post: Callable[..., Any], rsa_keys: tuple[str, str]
) -> None:
    """A key id missing from a freshly fetched certificate set is refused 401."""
    cache = CertCache(FakeCerts({"k1": rsa_keys[1]}))
    status, answer = await post(cache, signed(rsa_keys[0], kid="not-google"))
    assert (status, answer["error"]) == (401, "unauthorized")


async def test_bad_token_while_certificates_cannot_be_fetched_is_still_401(
    post: Callable[..., Any], rsa_keys: tuple[str, str]
) -> None:
    """What fails before any certificate is needed (not a JWT) is 401 whatever the endpoint."""
    status, answer = await post(CertCache(failing()), "not-a-jwt")
    assert (status, answer["error"]) == (401, "unauthorized")


async def test_unknown_key_id_while_its_fetch_is_still_running_is_503(
    post: Callable[..., Any], rsa_keys: tuple[str, str]
) -> None:
    """A new key id sends a refresh that is still running when the wait for it ends: the
    fresh-but-older certificate set cannot say the key is not Google's: 503, not 401."""
    now = [1000.0]
    gate = GatedCerts({"k1": rsa_keys[1]}, max_age=300)
    cache = CertCache(gate, clock=lambda: now[0], min_refresh_s=60, fetch_timeout_s=0.2)
    assert await oidc_verifier(AUD, SA, certs=cache)(signed(rsa_keys[0], kid="k1"))
    gate.hang.set()  # the next fetch hangs (then fails)
    now[0] += 61  # a refresh for an unknown key id may start; k1's set is still fresh
    try:
        status, answer = await post(cache, signed(rsa_keys[0], kid="k2"))
    finally:
        gate.release.set()
        await cache.settle()
    assert (status, answer["error"]) == (503, "auth_unavailable")

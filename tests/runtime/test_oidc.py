"""OIDC push auth: junk rejected before any fetch, certificates cached, a slow or failing
certificate endpoint never blocks tokens whose key is cached, bounded token lifetime."""

from __future__ import annotations

import asyncio
import base64
import importlib
import json
import threading
import time
from typing import Any

import pytest

from scoperouter.runtime.oidc import FETCH_RULES, AuthUnavailable, CertCache, oidc_verifier

# ---------------------------------------------------------------- finding 7: OIDC
AUD = "https://router.example/events"
SA = "push@p.iam.gserviceaccount.com"


@pytest.fixture(scope="module")
def rsa_keys() -> tuple[str, str]:
    """A throwaway RSA key pair (private PEM, public PEM)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


def signed(private_pem: str, kid: str = "k1", **claims: Any) -> str:
    crypt: Any = importlib.import_module("google.auth.crypt")
    jwt: Any = importlib.import_module("google.auth.jwt")
    now = int(time.time())
    payload = {
        "iss": "https://accounts.google.com",
        "aud": AUD,
        "iat": now,
        "exp": now + 600,
        "email": SA,
        "email_verified": True,
        **claims,
    }
    token: bytes = jwt.encode(crypt.RSASigner.from_string(private_pem, key_id=kid), payload)
    return token.decode()


def b64url(obj: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")


class FakeCerts:
    """Stands in for Google's certificate endpoint; counts fetches."""

    def __init__(self, certs: dict[str, str], max_age: float | None = 300) -> None:
        self.certs, self.max_age, self.calls = certs, max_age, 0

    def __call__(self) -> tuple[dict[str, str], float | None]:
        self.calls += 1
        return dict(self.certs), self.max_age


JUNK = [
    "tok",
    "a.b",
    "a.b.c.d",
    "!!!.???.###",
    f"{b64url({'alg': 'none'})}.{b64url({'sub': 'x'})}.sig",
    f"{b64url({'alg': 'RS256', 'kid': 'k1'})}.{b64url([1, 2])}.sig",
    f"{b64url({'alg': 'RS256', 'kid': 'k1'})}.{b64url({'a': 1})}." + "A" * 9000,
]


@pytest.mark.parametrize("token", JUNK, ids=[f"junk{i}" for i in range(len(JUNK))])
async def test_oidc_junk_tokens_are_rejected_without_fetching_certs(
    rsa_keys: tuple[str, str], token: str
) -> None:
    """Tokens that are not RS256 JWTs with a key id are rejected before any certificate fetch or signature work."""
    fake = FakeCerts({"k1": rsa_keys[1]})
    check = oidc_verifier(AUD, SA, certs=CertCache(fake))
    assert await check(token) is False
    assert fake.calls == 0


@pytest.mark.parametrize(
    ("claims", "kid", "ok"),
    [
        ({}, "k1", True),
        ({"email": "other@p.iam.gserviceaccount.com"}, "k1", False),
        ({"email_verified": False}, "k1", False),
        ({"aud": "https://elsewhere"}, "k1", False),
        ({"iss": "https://evil.example"}, "k1", False),
        ({"exp": int(time.time()) - 3600, "iat": int(time.time()) - 7200}, "k1", False),
        ({}, "unknown-kid", False),
    ],
    ids=[
        "valid",
        "wrong-email",
        "unverified-email",
        "wrong-audience",
        "wrong-issuer",
        "expired",
        "unknown-kid",
    ],
)
async def test_oidc_verifies_with_cached_certs(
    rsa_keys: tuple[str, str], claims: dict[str, Any], kid: str, ok: bool
) -> None:
    """Signed tokens are checked for signature, audience, issuer, expiry and account, with the certificates fetched once."""
    fake = FakeCerts({"k1": rsa_keys[1]})
    check = oidc_verifier(AUD, SA, certs=CertCache(fake))
    token = signed(rsa_keys[0], kid=kid, **claims)
    for _ in range(3):
        assert await check(token) is ok
    assert fake.calls == 1


async def test_oidc_cert_cache_honours_ttl(rsa_keys: tuple[str, str]) -> None:
    """Certificates are refetched only after their max-age has passed."""
    now = [1000.0]
    fake = FakeCerts({"k1": rsa_keys[1]}, max_age=300)
    check_cache = CertCache(fake, clock=lambda: now[0])
    check = oidc_verifier(AUD, SA, certs=check_cache)
    token = signed(rsa_keys[0])
    calls = []
    for advance in (0, 100, 150, 100, 10):
        now[0] += advance
        assert await check(token)
        await check_cache.settle()
        calls.append(fake.calls)
    assert calls == [1, 1, 1, 2, 2]


@pytest.mark.parametrize(("service_account", "warned"), [(None, True), (SA, False)])
def test_oidc_without_service_account_warns_at_startup(
    caplog: pytest.LogCaptureFixture, service_account: str | None, warned: bool
) -> None:
    """Building an OIDC verifier without service_account logs a WARNING that any Google account passes."""
    with caplog.at_level("WARNING", logger="scoperouter.runtime.http"):
        oidc_verifier(AUD, service_account, certs=CertCache(FakeCerts({})))
    assert (
        any(
            "service_account" in r.getMessage() and r.levelname == "WARNING" for r in caplog.records
        )
        is warned
    )


class GatedCerts:
    """A certificate endpoint that answers at once until ``hang`` is set, then blocks until
    ``release`` is set (then fails, like a timed-out request)."""

    def __init__(self, certs: dict[str, str], max_age: float = 300) -> None:
        self.certs, self.max_age, self.calls = certs, max_age, 0
        self.hang, self.release = threading.Event(), threading.Event()

    def __call__(self) -> tuple[dict[str, str], float | None]:
        self.calls += 1
        if self.hang.is_set():
            self.release.wait(30)
            raise TimeoutError("certificate endpoint hung")
        return dict(self.certs), self.max_age


async def test_hanging_endpoint_never_blocks_cached_keys(rsa_keys: tuple[str, str]) -> None:
    """With the certificate endpoint hanging and junk tokens waiting on it, tokens whose key is cached still pass and no second fetch starts."""
    now = [1000.0]
    gate = GatedCerts({"k1": rsa_keys[1]}, max_age=300)
    cache = CertCache(gate, clock=lambda: now[0], fetch_timeout_s=30)
    check = oidc_verifier(AUD, SA, certs=cache)
    valid = signed(rsa_keys[0])
    junk = [signed(rsa_keys[0], kid=f"junk{i}") for i in range(5)]
    assert await check(valid)  # first fetch, succeeds
    gate.hang.set()
    now[0] += 400  # certificates expired: the refresh hangs in the background
    waiting = [asyncio.ensure_future(check(t)) for t in junk]
    try:
        for _ in range(20):
            # a liveness bound, not a timing figure: a cached key waiting on the hung
            # fetch would wait its 30 s fetch timeout
            assert await asyncio.wait_for(check(valid), 5)
        assert not any(w.done() for w in waiting)  # junk waits on the one fetch
        assert gate.calls == 2  # the first fetch and the one hung refresh
    finally:
        gate.release.set()
        await cache.settle()
    # the refresh failed: an unknown key id may be a rotated key, not judged (503)
    got = await asyncio.gather(*waiting, return_exceptions=True)
    assert [type(g) for g in got] == [AuthUnavailable] * len(junk)


async def test_failed_fetches_are_negatively_cached(rsa_keys: tuple[str, str]) -> None:
    """After a failed fetch, unknown key ids cause no further fetch until retry_after_failure_s has passed."""
    now = [1000.0]
    gate = GatedCerts({"k1": rsa_keys[1]})
    gate.hang.set()
    gate.release.set()  # every fetch fails at once
    cache = CertCache(gate, clock=lambda: now[0], retry_after_failure_s=10)
    check = oidc_verifier(AUD, SA, certs=cache)
    junk = [signed(rsa_keys[0], kid=f"junk{i}") for i in range(5)]
    attempts = []
    for advance in (0, 1, 1, 5, 5, 1):
        now[0] += advance
        for token in junk:
            with pytest.raises(AuthUnavailable):  # never verified: not judged (503)
                await check(token)
        await cache.settle()
        attempts.append(gate.calls)
    assert attempts == [1, 1, 1, 1, 2, 2]


@pytest.mark.parametrize(("why", "outcome"), sorted(FETCH_RULES))
def test_fetch_rules_table_is_what_the_cache_applies(why: str, outcome: str) -> None:
    """Each row of FETCH_RULES is the waiting time the cache enforces since the last attempt."""
    cache = CertCache(lambda: ({}, None), min_refresh_s=60, retry_after_failure_s=10)
    cache._last_attempt, cache._last_outcome = 100.0, outcome
    wait = {"": 0.0, "min_refresh_s": 60.0, "retry_after_failure_s": 10.0}[
        FETCH_RULES[(why, outcome)]
    ]
    assert cache._may_fetch(why, 100.0 + wait)
    if wait:
        assert not cache._may_fetch(why, 99.0 + wait)


@pytest.mark.parametrize(
    ("lifetime_s", "ok"),
    [(600, True), (3600, True), (3600 + 11, False), (10 * 365 * 86400, False)],
)
async def test_token_lifetime_is_bounded(
    rsa_keys: tuple[str, str], lifetime_s: int, ok: bool
) -> None:
    """Tokens valid for longer than Google's one hour are refused, however far their expiry."""
    check = oidc_verifier(AUD, SA, certs=CertCache(FakeCerts({"k1": rsa_keys[1]})))
    now = int(time.time())
    assert await check(signed(rsa_keys[0], iat=now - 5, exp=now - 5 + lifetime_s)) is ok

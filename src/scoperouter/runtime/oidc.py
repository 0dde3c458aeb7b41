"""Google OIDC push auth: token shape check, certificate cache, verifier.

Invariant: a request whose token names a key id already in the cache never waits for
Google's certificate endpoint. Fetches are single-flight (one at a time, on a dedicated
thread, with a timeout), and how often one may start is a table (:data:`FETCH_RULES`):
junk or unknown key ids cost at most one fetch per interval, whether the last fetch
succeeded or failed (negative caching). Tokens valid for longer than
``max_lifetime_s`` (Google's ID tokens last one hour) are refused. A token whose key id is
not in a current certificate set (:meth:`CertCache.current`: fetched, not expired) is not
judged: :class:`AuthUnavailable` (503, retried), never a refusal (401, permanent).

Rejections are logged per reason by :class:`Rejections`: the first of a reason at once,
then at most one line per interval with the count since the previous line (a client
retrying a bad token does not write a line per request; the 401s stay counted in
``scoperouter_events_rejected_total{reason="unauthorized"}``). A token whose signature is
:data:`SIGNATURE_REMOVED` -- Cloud Run's IAM check verified it and removed its signature
before the container saw it -- is refused like any other unverifiable token (a forged one
looks the same), with a WARNING that says what to change.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

logger = logging.getLogger("scoperouter.runtime.http")

TokenVerifier = Callable[[str], Awaitable[bool]]
CertsFetcher = Callable[[], tuple[dict[str, str], float | None]]

GOOGLE_CERTS_URL = "https://www.googleapis.com/oauth2/v1/certs"
GOOGLE_ISSUERS = ("accounts.google.com", "https://accounts.google.com")
MAX_TOKEN_CHARS = 8192
# Google-signed ID tokens are valid for one hour (iat + 3600 = exp)
MAX_TOKEN_LIFETIME_S = 3600
# what Cloud Run puts in place of an ID token's signature once its IAM check verified the
# token (Cloud Run troubleshooting: https://cloud.google.com/run/docs/troubleshooting#signature-removed)
SIGNATURE_REMOVED = "SIGNATURE_REMOVED_BY_GOOGLE"
SIGNATURE_REMOVED_PROBLEM = (
    "Cloud Run already verified this request: its IAM check (--no-allow-unauthenticated) "
    "removed the ID token's signature (SIGNATURE_REMOVED_BY_GOOGLE), so server.auth.oidc "
    "cannot verify it and refuses every push. Either let Cloud Run authenticate (grant "
    "roles/run.invoker to the push service account only and remove server.auth.oidc), or "
    "deploy with --allow-unauthenticated and keep server.auth.oidc"
)
_B64URL = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=")
UNAVAILABLE_PROBLEM = "not checked: Google's signing certificates are unavailable (answered 503)"

# When may a fetch start? (why a fetch is wanted, how the last attempt ended) -> the
# CertCache attribute naming the minimum seconds since that attempt. Expired certificates
# are refetched as soon as they expire after a success.
FETCH_RULES: dict[tuple[str, str], str] = {
    ("expired", "never"): "",
    ("expired", "ok"): "",
    ("expired", "failed"): "retry_after_failure_s",
    ("unknown_kid", "never"): "",
    ("unknown_kid", "ok"): "min_refresh_s",
    ("unknown_kid", "failed"): "retry_after_failure_s",
}


def _b64url_json(segment: str) -> object:
    raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    return json.loads(raw)


def unverified_exp(token: str) -> float | None:
    """The ``exp`` claim (seconds since the epoch) of a JWT, read without checking its
    signature: for a token this process fetched for itself (when to stop sending it), never
    to judge one it received. None when the token is not a JWT or states no finite ``exp``."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = _b64url_json(parts[1])
    except (ValueError, RecursionError):
        return None
    exp = payload.get("exp") if isinstance(payload, dict) else None
    if isinstance(exp, bool) or not isinstance(exp, int | float) or not math.isfinite(exp):
        return None
    return float(exp)


def jwt_shape(token: str) -> tuple[dict[str, Any], str | None]:
    """``(header, problem)``: a cheap structural check of a JWS compact token (three
    base64url segments, JSON header with ``alg`` RS256 and a ``kid``, JSON object payload)
    made before any signature work or certificate fetch. ``problem`` is None when the
    token is worth verifying."""
    if len(token) > MAX_TOKEN_CHARS:
        return {}, "token too long"
    parts = token.split(".")
    if len(parts) != 3 or not all(parts) or not all(set(p) <= _B64URL for p in parts):
        return {}, "not a JWT (three base64url segments)"
    try:
        header, payload = _b64url_json(parts[0]), _b64url_json(parts[1])
    except (ValueError, RecursionError):
        return {}, "JWT header or payload is not base64url JSON"
    if not isinstance(header, dict) or not isinstance(payload, dict):
        return {}, "JWT header or payload is not a JSON object"
    if header.get("alg") != "RS256" or not isinstance(header.get("kid"), str):
        return header, "JWT is not RS256 with a key id"
    return header, None


def google_certs_fetcher(url: str = GOOGLE_CERTS_URL, timeout_s: float = 5.0) -> CertsFetcher:
    """Fetches Google's OAuth2 signing certificates; returns ``(certs, max_age_s)`` with
    ``max_age_s`` from ``Cache-Control`` (None when absent). Gives up after ``timeout_s``."""

    def fetch() -> tuple[dict[str, str], float | None]:
        import google.auth.transport.requests

        resp = google.auth.transport.requests.Request()(url, method="GET", timeout=timeout_s)
        if resp.status != 200:
            raise ValueError(f"certificate fetch from {url} answered HTTP {resp.status}")
        certs = json.loads(resp.data)
        if not isinstance(certs, dict) or not all(isinstance(v, str) for v in certs.values()):
            raise ValueError(f"unexpected certificate document from {url}")
        max_age: float | None = None
        for directive in str(resp.headers.get("cache-control", "")).split(","):
            name, _, value = directive.strip().partition("=")
            if name.lower() == "max-age" and value.isdigit():
                max_age = float(value)
        return certs, max_age

    return fetch


class AuthUnavailable(Exception):
    """The token cannot be checked now: the certificate for its key id cannot be had (the
    endpoint failing or hanging, the keys in hand expired). Not a verdict on the token: the
    request is answered 503 and its sender retries (a 401 is permanent to most clients,
    the router's own HTTP targets included)."""


class CertCache:
    """Google's signing certificates, kept for ``Cache-Control: max-age`` (else
    ``default_ttl_s``), used from the event loop.

    * A key id in the cache answers at once, even after expiry while a refresh runs in
      the background (for up to ``stale_grace_s`` past expiry).
    * A key id not in the cache waits for the single in-flight fetch, at most
      ``fetch_timeout_s``; when no fetch may start (:data:`FETCH_RULES`) it is answered
      from the cache at once (and its token fails verification).
    * ``fetches`` counts fetch attempts (successful or not).
    """

    def __init__(
        self,
        fetch: CertsFetcher,
        *,
        default_ttl_s: float = 3600.0,
        min_refresh_s: float = 60.0,
        retry_after_failure_s: float = 10.0,
        stale_grace_s: float = 3600.0,
        fetch_timeout_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self.default_ttl_s = default_ttl_s
        self.min_refresh_s = min_refresh_s
        self.retry_after_failure_s = retry_after_failure_s
        self.stale_grace_s = stale_grace_s
        self.fetch_timeout_s = fetch_timeout_s
        self._clock = clock
        self._certs: dict[str, str] = {}
        self._expires_at = float("-inf")
        self._last_attempt = float("-inf")
        self._last_outcome = "never"  # never | ok | failed
        self._inflight: asyncio.Future[None] | None = None
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="oidc-certs")
        self.fetches = 0

    def _may_fetch(self, why: str, now: float) -> bool:
        attr = FETCH_RULES[(why, self._last_outcome)]
        wait = float(getattr(self, attr)) if attr else 0.0
        return now - self._last_attempt >= wait

    def _start_fetch(self, now: float) -> asyncio.Future[None]:
        if self._inflight is None or self._inflight.done():
            self._last_attempt = now
            self.fetches += 1
            loop = asyncio.get_running_loop()
            self._inflight = asyncio.ensure_future(self._run_fetch(loop))
        return self._inflight

    async def _run_fetch(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            certs, max_age = await loop.run_in_executor(self._pool, self._fetch)
        except Exception as exc:  # network, HTTP status, bad document
            self._last_outcome = "failed"
            logger.warning("OIDC: could not fetch Google certificates: %s", type(exc).__name__)
            return
        self._last_outcome = "ok"
        self._certs = certs
        self._expires_at = self._clock() + (max_age if max_age is not None else self.default_ttl_s)

    async def certs_for(self, kid: str | None) -> dict[str, str]:
        """The certificates to verify a token signed with key ``kid``."""
        now = self._clock()
        known = kid is not None and kid in self._certs
        if known and now < self._expires_at:
            return self._certs
        why = "unknown_kid" if not known else "expired"
        fut = self._inflight if self._inflight is not None and not self._inflight.done() else None
        if fut is None and self._may_fetch(why, now):
            fut = self._start_fetch(now)
        if known:
            # stale-while-revalidate: a known key never waits for the endpoint
            if now < self._expires_at + self.stale_grace_s:
                return self._certs
            return {}
        if fut is not None:
            try:
                await asyncio.wait_for(asyncio.shield(fut), self.fetch_timeout_s)
            except TimeoutError:
                logger.warning(
                    "OIDC: certificate fetch still running after %.1fs", self.fetch_timeout_s
                )
        if self._clock() >= self._expires_at + self.stale_grace_s:
            return {}
        return self._certs

    def current(self) -> bool:
        """Whether the certificates in hand are the endpoint's last answer, not expired, and
        no newer one is being fetched: a key id they lack is not Google's (401). Otherwise a
        key id not in hand may be a rotated key nobody could fetch yet
        (:class:`AuthUnavailable`)."""
        fetching = self._inflight is not None and not self._inflight.done()
        return self._last_outcome == "ok" and self._clock() < self._expires_at and not fetching

    async def settle(self) -> None:
        """Wait for the in-flight fetch, if any (tests and shutdown)."""
        if self._inflight is not None:
            await asyncio.shield(self._inflight)


class Rejections:
    """Rate-limited log of refused tokens: per reason, the first line at once, later ones
    at most every ``interval_s`` with the number refused since the previous line (its
    ``rejected`` field). At most ``max_reasons`` reasons are tracked (the reasons are a
    fixed set of texts and exception class names; the bound is a backstop)."""

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        *,
        interval_s: float = 60.0,
        max_reasons: int = 64,
    ) -> None:
        self.clock = clock
        self.interval_s = interval_s
        self.max_reasons = max_reasons
        self._last: dict[str, float] = {}
        self._since: dict[str, int] = {}

    def observe(self, reason: str, level: int = logging.INFO) -> None:
        """One refused token, for ``reason``."""
        now = self.clock()
        self._since[reason] = self._since.get(reason, 0) + 1
        last = self._last.get(reason)
        if last is not None and now - last < self.interval_s:
            return
        n = self._since.pop(reason)
        if len(self._last) >= self.max_reasons and reason not in self._last:
            oldest = next(iter(self._last))
            del self._last[oldest]
            self._since.pop(oldest, None)
        self._last[reason] = now
        logger.log(
            level,
            "OIDC token rejected: %s (%d since the last line for this reason)",
            reason,
            n,
            extra={"reason": "unauthorized", "auth_problem": reason[:200], "rejected": n},
        )


def oidc_verifier(
    audience: str,
    service_account: str | None,
    *,
    verify: Callable[[str, str], dict[str, Any]] | None = None,
    certs: CertCache | None = None,
    clock_skew_s: int = 10,
    max_lifetime_s: int = MAX_TOKEN_LIFETIME_S,
    clock: Callable[[], float] = time.monotonic,
    log_interval_s: float = 60.0,
) -> TokenVerifier:
    """Verify a Google-signed OIDC token (Pub/Sub push auth): a cheap JWT-shape check
    first (junk never reaches the executor or the network), then the certificates from a
    :class:`CertCache` (never waiting when the key is cached), then signature, expiry,
    issuer, audience, lifetime (``exp - iat`` at most ``max_lifetime_s``) and -- when
    configured -- the service-account email (which must be verified). Without
    ``service_account`` any Google-signed token for the audience passes, so that is warned
    about at start-up. ``verify`` replaces the whole Google verification (shape check and
    certificates included) in tests; ``clock`` and ``log_interval_s`` pace the rejection
    lines (:class:`Rejections`)."""
    rejections = Rejections(clock, interval_s=log_interval_s)
    if service_account is None:
        logger.warning(
            "OIDC auth without service_account: ANY Google account's token for audience %s is "
            "accepted; set server.auth.oidc.service_account to the push subscription's account",
            audience,
        )
    cache = certs or CertCache(google_certs_fetcher())

    def google_verify(token: str, aud: str, keys: dict[str, str]) -> dict[str, Any]:
        import google.auth.jwt

        claims: dict[str, Any] = dict(
            google.auth.jwt.decode(  # type: ignore[no-untyped-call]
                token, certs=keys, audience=aud, clock_skew_in_seconds=clock_skew_s
            )
        )
        if claims.get("iss") not in GOOGLE_ISSUERS:
            raise ValueError(f"wrong issuer {claims.get('iss')!r}")
        iat, exp = claims.get("iat"), claims.get("exp")
        if not isinstance(iat, int) or not isinstance(exp, int):
            raise ValueError("token without integer iat/exp")
        if exp - iat > max_lifetime_s + clock_skew_s:
            raise ValueError(f"token lifetime {exp - iat}s exceeds {max_lifetime_s}s")
        return claims

    async def check(token: str) -> bool:
        loop = asyncio.get_running_loop()
        if token.rpartition(".")[2] == SIGNATURE_REMOVED:
            # never accepted: anyone can write these bytes; no fetch, no signature work
            rejections.observe(SIGNATURE_REMOVED_PROBLEM, logging.WARNING)
            return False
        try:
            if verify is not None:
                claims = await loop.run_in_executor(None, verify, token, audience)
            else:
                header, problem = jwt_shape(token)
                if problem is not None:
                    rejections.observe(problem)
                    return False
                keys = await cache.certs_for(header["kid"])
                if header["kid"] not in keys:
                    if not cache.current():  # a rotated key, maybe: nobody can tell now
                        raise AuthUnavailable("Google's signing certificates are unavailable")
                    rejections.observe("unknown key id")
                    return False
                claims = await loop.run_in_executor(None, google_verify, token, audience, keys)
        except AuthUnavailable:
            # (INFO, paced as the rejections: the failed fetch itself is the WARNING, once
            # per attempt; a push storm while Google is unreachable is one line a minute)
            rejections.observe(UNAVAILABLE_PROBLEM)
            raise
        except Exception as exc:  # invalid signature, expired, wrong audience, lifetime...
            rejections.observe(type(exc).__name__)
            return False
        if service_account is not None and (
            claims.get("email") != service_account or claims.get("email_verified") is not True
        ):
            rejections.observe("not the configured service_account (or its email not verified)")
            return False
        return True

    return check

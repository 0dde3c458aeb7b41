"""OIDC rejections are logged per reason, rate-limited (a count per reason and a periodic
line, not one line per token), and a token whose signature Cloud Run removed gets its own
actionable reason -- and is still refused (review7 #6, #7)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from test_oidc import AUD, SA, FakeCerts, GatedCerts, b64url, rsa_keys, signed

from scoperouter.runtime.oidc import AuthUnavailable, CertCache, oidc_verifier

__all__ = ["rsa_keys"]  # the module fixture, shared

OIDC_LOGGER = "scoperouter.runtime.http"


def _lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == OIDC_LOGGER and "OIDC token" in r.getMessage()]


def stripped(claims: dict[str, Any] | None = None, kid: str = "k1") -> str:
    """A token as Cloud Run forwards it after IAM checked it: its signature removed."""
    payload = {"iss": "https://accounts.google.com", "aud": AUD, "email": SA, **(claims or {})}
    return f"{b64url({'alg': 'RS256', 'kid': kid})}.{b64url(payload)}.SIGNATURE_REMOVED_BY_GOOGLE"


@pytest.mark.parametrize(
    ("kind", "n"),
    [("junk", 50), ("wrong-audience", 20), ("unknown-kid", 30), ("signature-removed", 40)],
)
async def test_repeated_rejections_log_one_line_per_interval(
    caplog: pytest.LogCaptureFixture, rsa_keys: tuple[str, str], kind: str, n: int
) -> None:
    """n tokens rejected for one reason within an interval log one line; after the interval one more, counting them."""
    now = [1000.0]
    fake = FakeCerts({"k1": rsa_keys[1]})
    check = oidc_verifier(AUD, SA, certs=CertCache(fake), clock=lambda: now[0], log_interval_s=60.0)
    token = {
        "junk": "not-a-token",
        "wrong-audience": signed(rsa_keys[0], aud="https://elsewhere"),
        "unknown-kid": signed(rsa_keys[0], kid="k9"),
        "signature-removed": stripped(),
    }[kind]
    with caplog.at_level(logging.INFO, logger=OIDC_LOGGER):
        for _ in range(n):
            assert await check(token) is False
        assert len(_lines(caplog)) == 1, [r.getMessage() for r in _lines(caplog)]
        now[0] += 61
        assert await check(token) is False
    lines = _lines(caplog)
    assert len(lines) == 2
    assert getattr(lines[1], "rejected", None) == n  # n - 1 since the first line, and this one


@pytest.mark.parametrize(
    "token",
    [stripped(), stripped(kid="k9"), stripped({"aud": "https://elsewhere"})],
    ids=["known-kid", "unknown-kid", "wrong-audience"],
)
async def test_a_token_whose_signature_cloud_run_removed_is_refused_with_an_actionable_line(
    caplog: pytest.LogCaptureFixture, rsa_keys: tuple[str, str], token: str
) -> None:
    """A token signed 'SIGNATURE_REMOVED_BY_GOOGLE' is refused without a certificate fetch, saying Cloud Run already verified it."""
    fake = FakeCerts({"k1": rsa_keys[1]})
    check = oidc_verifier(AUD, SA, certs=CertCache(fake))
    with caplog.at_level(logging.INFO, logger=OIDC_LOGGER):
        assert await check(token) is False
    assert fake.calls == 0
    [line] = _lines(caplog)
    assert line.levelno == logging.WARNING
    assert "Cloud Run already verified this request" in line.getMessage()
    assert "server.auth.oidc" in line.getMessage()


async def test_different_reasons_are_counted_apart(
    caplog: pytest.LogCaptureFixture, rsa_keys: tuple[str, str]
) -> None:
    """Each reason gets its own first line at once: a flood of one does not hide another."""
    fake = FakeCerts({"k1": rsa_keys[1]})
    check = oidc_verifier(AUD, SA, certs=CertCache(fake), clock=lambda: 5.0)
    with caplog.at_level(logging.INFO, logger=OIDC_LOGGER):
        for _ in range(10):
            assert await check("junk") is False
        assert await check(stripped()) is False
        assert await check(signed(rsa_keys[0], email="other@p.iam.gserviceaccount.com")) is False
    assert len(_lines(caplog)) == 3


async def test_certificates_unavailable_is_paced_too(
    caplog: pytest.LogCaptureFixture, rsa_keys: tuple[str, str]
) -> None:
    """Tokens not checked because Google's certificates are unavailable (503) log one line per interval, not one per token."""
    now = [1000.0]
    gate = GatedCerts({"k1": rsa_keys[1]})
    gate.hang.set()
    gate.release.set()  # every fetch fails at once
    cache = CertCache(gate, clock=lambda: now[0], retry_after_failure_s=10)
    check = oidc_verifier(AUD, SA, certs=cache, clock=lambda: now[0], log_interval_s=60.0)
    with caplog.at_level(logging.INFO, logger=OIDC_LOGGER):
        for i in range(30):
            with pytest.raises(AuthUnavailable):
                await check(signed(rsa_keys[0], kid=f"k{i}"))
            await cache.settle()
    lines = [r for r in _lines(caplog) if "certificates are unavailable" in r.getMessage()]
    assert len(lines) == 1, [r.getMessage() for r in lines]

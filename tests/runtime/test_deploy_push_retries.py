"""The example push subscription (deploy/pubsub-push-subscription.sh) keeps a message the
router answers 503 -- its state store failing, a graceful stop, OIDC certificates
unavailable -- retrying for longer than such an outage lasts, before its dead-letter
policy takes the message away from the router for good. Pub/Sub counts every non-2xx
push as a delivery attempt and, without a retry policy, redelivers at once (only its push
backoff slows it): 10 attempts were spent within minutes, so a short store outage moved
every valid event that arrived to the dead-letter topic, never routed."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "deploy" / "pubsub-push-subscription.sh"
OUTAGE_S = 3600  # an hour of 503s (a state store restored, a bad deploy rolled back)


def _flags() -> dict[str, str]:
    words = shlex.split(SCRIPT.read_text().replace("\\\n", " "), comments=True)
    return {w: words[i + 1] for i, w in enumerate(words[:-1]) if w.startswith("--")}


def _seconds(text: str) -> float:
    m = re.fullmatch(r"([0-9]+)(s|m)", text)
    assert m, text
    return float(m[1]) * (60 if m[2] == "m" else 1)


def retry_span_s(attempts: int, min_delay_s: float, max_delay_s: float) -> float:
    """How long Pub/Sub keeps redelivering before the dead-letter policy: exponential
    backoff from ``min_delay_s`` doubling up to ``max_delay_s`` between attempts."""
    return sum(min(max_delay_s, min_delay_s * 2**k) for k in range(attempts - 1))


@pytest.mark.parametrize(
    ("attempts", "lo", "hi", "span"),
    [(10, 0, 0, 0), (5, 10, 600, 150), (100, 10, 600, 10 + 20 + 40 + 80 + 160 + 320 + 93 * 600)],
)
def test_retry_span_arithmetic(attempts: int, lo: float, hi: float, span: float) -> None:
    """The span is the sum of the capped doubling delays between the attempts."""
    assert retry_span_s(attempts, lo, hi) == span


def test_push_subscription_retries_a_503_for_longer_than_an_outage() -> None:
    """The example subscription's retry policy and dead-letter attempts span over an hour."""
    f = _flags()
    assert "--dead-letter-topic" in f  # poison is acked by the router; this is for 5xx
    attempts = int(f["--max-delivery-attempts"])
    assert 5 <= attempts <= 100  # Pub/Sub's bounds
    lo = _seconds(f.get("--min-retry-delay", "0s"))
    hi = _seconds(f.get("--max-retry-delay", "0s"))
    assert 0 <= lo <= hi <= 600  # Pub/Sub's bounds
    assert retry_span_s(attempts, lo, hi) >= OUTAGE_S


def test_the_push_dead_letter_policy_topic_is_not_scoperouters_dead_letter_topic() -> None:
    """The subscription's dead-letter policy (raw pipeline messages) and server.dead_letter_topic (scoperouter's JSON records) are two topics in the deploy files and docs."""
    policy = _flags()["--dead-letter-topic"].rsplit("/", 1)[-1]
    repo = SCRIPT.parents[1]
    named = {
        m[1].rsplit("/", 1)[-1]
        for doc in ("deploy/README.md", "docs/rollout.md", "docs/deploy-replicas.md")
        for m in re.finditer(r"dead_letter_topic:\s*(\S+)", (repo / doc).read_text())
    }
    assert named, "the deploy docs configure a server.dead_letter_topic"
    assert policy not in named, (
        f"{policy} is both the push dead-letter policy's topic and scoperouter's"
    )

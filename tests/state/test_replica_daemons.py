"""Acceptance 2 and 3 of issue 13 at daemon level: three ``scoperouter serve`` replicas sharing
one PostgreSQL, 30 random SIGKILLs under a bounded stream delivered like a push subscription
(retried to another replica until one acks), then a hot window (plain, then all critical)
through one Pub/Sub emulator subscription -- run by ``bench/replicas.py`` with a small
budget. Correctness only (nothing lost, no contribution in two triggers); the timing
figures are the benchmark's to print, not this test's to assert. The kills go through push
because through the emulator they drain only ~10 minutes later: it keeps pushing to every
stream a killed replica had open (docs/deploy-replicas.md, bench/emulator_pushers.py);
``bench/replicas.py --source pubsub`` runs them through the emulator."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def fresh_database(postgres_dsn: str) -> Iterator[str]:
    """A DSN of an empty database on the session's cluster (dropped afterwards)."""
    import psycopg

    name = "replicas_" + uuid.uuid4().hex[:10]
    with psycopg.connect(postgres_dsn, autocommit=True) as c:
        c.execute(f"CREATE DATABASE {name}")
    yield postgres_dsn.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(postgres_dsn, autocommit=True) as c:
        c.execute(f"DROP DATABASE {name} WITH (FORCE)")


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_replicas_lose_nothing_under_kills_and_a_hot_window(
    pubsub_emulator: str, fresh_database: str
) -> None:
    """30 SIGKILLs of 3 replicas, then a hot window at 100 events/s via Pub/Sub: 0 lost, 0 split."""
    env = dict(os.environ, PUBSUB_EMULATOR_HOST=pubsub_emulator, PYTHONPATH=str(REPO / "src"))
    args = ["--mode", "both", "--source", "push", "--replicas", "3", "--kills", "30", "--events", "900",
            "--rate", "30", "--hot", "5", "--hot-rate", "100", "--dsn", fresh_database,
            "--check", "--json"]  # fmt: skip
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / "replicas.py"), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=1100,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    kills = out["kills"]
    assert kills["kills"] >= 30 and kills["drained"]
    assert (kills["lost"], kills["split_contributions"], kills["unrouted_events"]) == (0, 0, 0)
    assert kills["requirements"] > 0 and kills["distinct_triggers"] > 0
    for phase in ("normal", "critical"):
        hot = out["hot"][phase]
        assert hot["drained"] and (hot["lost"], hot["split_contributions"]) == (0, 0), hot
    # every critical event fires its own trigger at once
    assert out["hot"]["critical"]["distinct_triggers"] == out["hot"]["critical"]["events"]

"""Three replica processes on one PostgreSQL, SIGKILLed at random (>= 30 kills) while a
bounded stream flows through an emulated subscription with redelivery: nothing lost, no
contribution in two different triggers, duplicates only of the same trigger id."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest
from state_support import need_psycopg

need_psycopg()

import psycopg  # noqa: E402

WORKER = Path(__file__).with_name("replica_worker.py")
KILLS = 30


def _stream(n: int, rng: random.Random) -> list[dict[str, object]]:
    days = ["2025-11-19", "2025-11-20"]
    out = []
    for i in range(n):
        out.append(
            {
                "id": f"e{i:04d}",
                "critical": rng.random() < 0.05,
                "contributions": [
                    {"p": p, "d": d, "ids": rng.sample("abcdefg", rng.randint(1, 2))}
                    for p in rng.sample(["p1", "p2", "p3"], rng.randint(1, 2))
                    for d in rng.sample(days, 1)
                ],
            }
        )
    return out


def _victim(
    c: psycopg.Connection[tuple[object, ...]],
    procs: dict[str, object],
    rng: random.Random,
    kills: int,
) -> tuple[str, bool]:
    """Every other kill hits a replica holding a trigger lease (mid-delivery), if any."""
    if kills % 2 == 0:
        row = c.execute(
            "SELECT lease_owner FROM sr_outbox WHERE status = 'leased' ORDER BY random() LIMIT 1"
        ).fetchone()
        if row is not None and row[0] in procs:
            return str(row[0]), True
    return rng.choice(sorted(procs)), False


def _wait_ready(
    c: psycopg.Connection[tuple[object, ...]], owner: str, pid: int, timeout: float = 60
) -> None:
    """Until the restarted replica ``owner`` (process ``pid``) has opened its store."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if c.execute("SELECT pid FROM q_ready WHERE owner = %s", (owner,)).fetchone() == (pid,):
            return
        time.sleep(0.05)
    raise AssertionError(f"replica {owner} did not start")


def _start(dsn: str, owner: str, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as f:
        return subprocess.Popen(
            [sys.executable, str(WORKER), dsn, owner], stdout=f, stderr=subprocess.STDOUT
        )


@pytest.mark.slow
@pytest.mark.timeout(400)  # 30 restarts of a Python process on a shared 2-core machine
def test_replicas_killed_at_random_lose_and_split_nothing(pg_location: str, tmp_path: Path) -> None:
    """>= 30 SIGKILLs of 3 replicas: every contribution delivered, in one trigger id only."""
    from scoperouter.state.postgres import PostgresStateStore

    PostgresStateStore(pg_location).close()  # schema
    rng = random.Random(13)
    events = _stream(900, rng)
    with psycopg.connect(pg_location, autocommit=True) as c:
        c.execute(
            "CREATE TABLE q_events (id bigserial PRIMARY KEY, payload text NOT NULL, "
            "visible_at double precision NOT NULL)"
        )
        c.execute(
            "CREATE TABLE q_deliveries (trigger_id text, item_id bigint, owner text, body text)"
        )
        c.execute("CREATE TABLE q_ready (owner text PRIMARY KEY, pid integer NOT NULL)")
    procs = {f"r{i}": _start(pg_location, f"r{i}", tmp_path / f"r{i}.log") for i in range(3)}
    kills = targeted = 0
    try:
        with psycopg.connect(pg_location, autocommit=True) as c:
            for chunk in range(max(KILLS, len(events) // 30)):
                c.cursor().executemany(  # the stream arrives over time
                    "INSERT INTO q_events(payload, visible_at) VALUES (%s, 0)",
                    [(json.dumps(e),) for e in events[chunk * 30 : chunk * 30 + 30]],
                )
                time.sleep(rng.uniform(0.05, 0.4))
                if kills < KILLS:
                    owner, hit = _victim(c, procs, rng, kills)
                    targeted += hit
                    procs[owner].send_signal(signal.SIGKILL)
                    procs[owner].wait()
                    kills += 1
                    procs[owner] = _start(pg_location, owner, tmp_path / f"{owner}.log")
                    _wait_ready(c, owner, procs[owner].pid)
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                left = c.execute(
                    "SELECT (SELECT count(*) FROM q_events) + (SELECT count(*) FROM sr_windows)"
                    " + (SELECT count(*) FROM sr_outbox WHERE status <> 'done')"
                ).fetchone()
                if left == (0,):
                    break
                time.sleep(0.2)
            deliveries = c.execute("SELECT trigger_id, body FROM q_deliveries").fetchall()
            rescued = c.execute("SELECT coalesce(sum(rescues), 0) FROM sr_outbox").fetchone()
            seen = c.execute("SELECT count(*) FROM sr_seen").fetchone()
    finally:
        for p in procs.values():
            p.send_signal(signal.SIGKILL)
            p.wait()
    logs = "".join((tmp_path / f"r{i}.log").read_text() for i in range(3))
    assert "Traceback" not in logs, logs[-3000:]
    assert kills >= KILLS and left == (0,) and seen == (len(events),)
    triggers_of: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    bodies: dict[str, str] = {}
    for tid, body in deliveries:
        assert bodies.setdefault(tid, body) == body  # a duplicate is the same trigger
        t = json.loads(body)
        for eid in t["caused_by"]:
            triggers_of[(eid, t["processor"], t["game_date"])].add(tid)
    expected = {
        (str(e["id"]), c["p"], c["d"])
        for e in events
        for c in e["contributions"]  # type: ignore[attr-defined]
    }
    assert set(triggers_of) == expected  # nothing lost
    assert {len(v) for v in triggers_of.values()} == {1}  # never in two triggers
    if targeted >= 3:  # replicas killed mid-delivery: their leases were rescued by others
        assert rescued is not None and rescued[0] >= 1
    print(
        f"{targeted} kills mid-delivery, {rescued[0] if rescued else 0} rescued leases, "
        f"{len(deliveries)} deliveries of {len(bodies)} triggers after {kills} kills"
    )

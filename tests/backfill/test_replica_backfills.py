"""Overlapping backfills across daemon replicas: two ``scoperouter serve`` assemblies on one
PostgreSQL state store, each with its own state dir. A ``POST /backfills`` to one replica
that overlaps a backfill running on the other is refused (409 ``overlapping_backfill``
naming it); one that overlaps nothing starts; ``GET /backfills/ID`` on the other replica
names the replica running it; a backfill stopped because its claim was lost is counted on
``/metrics`` (docs/deploy-replicas.md)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from backfill_support import REPO

from scoperouter.execution_log import SqliteExecutionLog
from scoperouter.processor_registry.loader import load_config
from scoperouter.runtime.daemon import Daemon, DaemonSettings

UNRELATED = "team_defense_game_summary"  # not in player_game_summary's lineage
# runs wait for a completion event nobody sends: the backfill stays running until stopped
RUNNING = {"start": "2025-11-01", "end": "2025-11-02", "processors": ["player_game_summary"],
           "completion": "event"}  # fmt: skip


async def _post(port: int, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    url = f"http://127.0.0.1:{port}/backfills"
    async with aiohttp.ClientSession() as s, s.post(url, json=body) as r:
        got: dict[str, Any] = await r.json()
        return r.status, got


async def _get(port: int, path: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as s, s.get(f"http://127.0.0.1:{port}{path}") as r:
        return r.status, await (r.json() if path.startswith("/backfills") else r.text())


@contextlib.asynccontextmanager
async def _started(*daemons: Daemon) -> AsyncIterator[None]:
    """``daemons`` started in order, stopped in reverse (those started) at the end."""
    async with contextlib.AsyncExitStack() as stack:
        for d in daemons:
            await d.start()
            stack.push_async_callback(d.stop)
        yield


def _replica(tmp_path: Path, dsn: str, name: str, **extra: Any) -> Daemon:
    cfg = load_config(REPO / "routes.yaml")
    settings = DaemonSettings(state_dir=tmp_path / name, port=0, as_of=date(2025, 11, 22),
                              sync="normal", state=dsn, replica_id=name, **extra)  # fmt: skip
    log = SqliteExecutionLog(tmp_path / name / "execution_log.sqlite")  # serve's default
    return Daemon(cfg.registry, cfg.relations, settings, log=log)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        # reads player_game_summary on the dates replica a's backfill rewrites
        ({"start": "2025-11-02", "end": "2025-11-03", "processors": ["league_rankings"]}, 409),
        # the same processor on overlapping dates
        ({"start": "2025-11-02", "end": "2025-11-02", "processors": ["player_game_summary"]}, 409),
        # unrelated processors, the same dates
        ({"start": "2025-11-01", "end": "2025-11-02", "processors": [UNRELATED]}, 202),
        # a reader of it, far later dates
        ({"start": "2025-11-10", "end": "2025-11-11", "processors": ["league_rankings"]}, 202),
    ],
)
async def test_a_post_to_one_replica_overlapping_anothers_backfill_is_refused(
    tmp_path: Path, pg_schema_dsn: str, body: dict[str, Any], code: int
) -> None:
    """Replica b answers 409 naming replica a's running backfill when the POST overlaps it."""
    a, b = (_replica(tmp_path, pg_schema_dsn, name) for name in ("a", "b"))
    async with _started(a, b):
        assert a.port is not None and b.port is not None
        status, first = await _post(a.port, RUNNING)
        assert status == 202, first
        status, got = await _post(b.port, body)
    assert status == code, got
    if code == 409:
        assert got["error"] == "overlapping_backfill"
        assert got["backfill_id"] == first["backfill_id"]
        assert "player_game_summary" in got["detail"] and "replica a" in got["detail"]


async def test_get_on_the_other_replica_and_a_lost_claim_counted(
    tmp_path: Path, pg_schema_dsn: str
) -> None:
    """GET /backfills/ID on replica b names replica a while a runs it; once a's claim is lost,
    a stops it and counts it on /metrics (lease_lost), and b answers 404."""
    import psycopg

    # lease 3 s: replica a renews its backfill's claim every second (finds it gone within one)
    a = _replica(tmp_path, pg_schema_dsn, "a", lease_s=3.0)
    b = _replica(tmp_path, pg_schema_dsn, "b")
    async with _started(a, b):
        assert a.port is not None and b.port is not None
        status, first = await _post(a.port, RUNNING)
        assert status == 202, first
        bid = first["backfill_id"]
        on_b = await _get(b.port, f"/backfills/{bid}")
        with psycopg.connect(pg_schema_dsn, autocommit=True) as c:  # lost (ran out, taken)
            c.execute("DELETE FROM sr_backfill_claims WHERE backfill_id = %s", (bid,))
        assert a.ingress.backfills is not None
        await asyncio.gather(*a.ingress.backfills.tasks.values())
        stopped = await _get(a.port, f"/backfills/{bid}")
        after = await _get(b.port, f"/backfills/{bid}")
        _, metrics = await _get(a.port, "/metrics")
    assert on_b[0] == 200 and on_b[1]["replica"] == "a", on_b
    assert on_b[1]["status"] == "running" and "runs" not in on_b[1]
    assert stopped[1]["status"] == "stopped", stopped
    assert after[0] == 404, after
    assert 'scoperouter_backfill_claims_lost_total{reason="lease_lost"} 1.0' in metrics
    assert 'scoperouter_backfill_claims_lost_total{reason="lease_unconfirmed"} 0.0' in metrics

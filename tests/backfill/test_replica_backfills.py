"""Overlapping backfills across daemon replicas: two ``scoperouter serve`` assemblies on one
PostgreSQL state store, each with its own state dir. A ``POST /backfills`` to one replica
that overlaps a backfill running on the other is refused (409 ``overlapping_backfill``
naming it); one that overlaps nothing starts (docs/deploy-replicas.md)."""

from __future__ import annotations

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
    cfg = load_config(REPO / "routes.yaml")
    daemons = []
    for name in ("a", "b"):
        settings = DaemonSettings(state_dir=tmp_path / name, port=0, as_of=date(2025, 11, 22),
                                  sync="normal", state=pg_schema_dsn, replica_id=name)  # fmt: skip
        log = SqliteExecutionLog(tmp_path / name / "execution_log.sqlite")  # serve's default
        daemons.append(Daemon(cfg.registry, cfg.relations, settings, log=log))
    a, b = daemons
    await a.start()
    try:
        await b.start()
        try:
            assert a.port is not None and b.port is not None
            status, first = await _post(a.port, RUNNING)
            assert status == 202, first
            status, got = await _post(b.port, body)
        finally:
            await b.stop()
    finally:
        await a.stop()
    assert status == code, got
    if code == 409:
        assert got["error"] == "overlapping_backfill"
        assert got["backfill_id"] == first["backfill_id"]
        assert "player_game_summary" in got["detail"] and "replica a" in got["detail"]

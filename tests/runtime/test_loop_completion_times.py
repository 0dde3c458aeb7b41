"""Completions through the daemon's ingest (Router.submit, SQLite state) that no dedupe
catches any more -- redelivered past the dedup horizon -- or that name a trigger the
ledger no longer holds: a completion carrying its production time never closes a trigger
fired after it (docs/ledger.md, "Which completion closes which trigger")."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from runtime_support import GAME_DAY, MemorySink, RouterFactory, load, write_registry

from scoperouter.runtime.router import Inbound, Router

T0 = 1_764_000_000.0
P = "player_game_summary"


def injury(eid: str, player: str) -> dict[str, Any]:
    return {
        "event_id": eid,
        "source": "nba_raw.nbac_injury_report",
        "game_date": GAME_DAY.isoformat(),
        "affected_entities": {"players": [player]},
        "changed_fields": ["injury_status"],
    }


async def send(r: Router, body: dict[str, Any]) -> tuple[str, str | None]:
    out = await r.submit(Inbound("test", data=json.dumps(body).encode()))
    assert await r.idle()
    return out.status, out.reason


def phases(r: Router) -> list[tuple[tuple[str, ...] | None, str]]:
    """(entity ids, phase) of P's entries, first fired first."""
    loop = r.windows.engine.loop
    assert loop is not None
    entries = sorted(loop.ledger.entries(), key=lambda e: e.opened_at)
    return [(e.trigger.entity_ids, e.phase) for e in entries if e.trigger.processor == P]


async def test_unified_message_redelivered_past_the_horizon_closes_no_newer_trigger(
    tmp_path: Path, make_router: RouterFactory
) -> None:
    """Production's message (timestamp, no trigger id) redelivered after 24 h leaves T2 open."""
    cfg = load(
        write_registry(tmp_path / "cfg", defaults={"run_retries": 1, "completion_timeout": "2d"})
    )
    now = [T0]
    r = make_router(cfg, MemorySink(), clock=lambda: now[0], state_dir=tmp_path)
    r.prune_clock.monotonic = lambda: now[0]
    await r.start()
    await send(r, injury("e-1", "lalplayer01"))
    now[0] += 1
    unified = {
        "processor_name": "PlayerGameSummaryProcessor",
        "phase": "phase_3_analytics",
        "execution_id": "ab12cd34",
        "game_date": GAME_DAY.isoformat(),
        "output_table": "player_game_summary",
        "output_dataset": "nba_analytics",
        "status": "success",
        "timestamp": datetime.fromtimestamp(now[0], UTC).isoformat(),
    }
    assert await send(r, unified) == ("accepted", None)
    now[0] += 86400 + 120  # past the dedup horizon and the applied ids' day
    await r._in_state(r._prune)
    await send(r, injury("e-2", "bosplayer01"))
    now[0] += 1
    assert (await send(r, unified))[0] == "accepted"  # routed again: no dedupe is left
    assert phases(r) == [(("lalplayer01",), "succeeded"), (("bosplayer01",), "dispatched")]
    await r.stop(timeout=2.0)

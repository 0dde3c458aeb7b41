"""Shared by the closed-loop daemon tests: an injury event naming one player and a send that
waits for the router to be idle."""

from __future__ import annotations

import json
from typing import Any

from runtime_support import GAME_DAY

from scoperouter.runtime.router import Inbound, Router


def injury(eid: str, player: str) -> dict[str, Any]:
    """An injury-report change of ``player`` on the game day, with event id ``eid``."""
    return {
        "event_id": eid,
        "source": "nba_raw.nbac_injury_report",
        "game_date": GAME_DAY.isoformat(),
        "affected_entities": {"players": [player]},
        "changed_fields": ["injury_status"],
    }


async def send(r: Router, body: dict[str, Any]) -> tuple[str, str | None]:
    """Submit ``body`` and wait until the router is idle: (status, reason)."""
    out = await r.submit(Inbound("test", data=json.dumps(body).encode()))
    assert await r.idle()
    return out.status, out.reason

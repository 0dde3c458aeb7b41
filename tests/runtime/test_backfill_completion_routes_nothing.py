"""A completion event of a backfill run (``--completion event``: the processor publishes
its completion, naming the backfill trigger's id ``bf-...`` in the ``trigger_id``
attribute) is recorded but routes nothing downstream: the backfill runs the downstream
processors itself, in order, and routing the completion too would run them twice (the
double cascade production's ``skip_downstream_trigger`` flag exists to prevent,
docs/backfill.md). Any other completion routes as before."""

from __future__ import annotations

from typing import Any

import pytest
from runtime_support import GAME_DAY, MemorySink, RouterFactory, players_of

from scoperouter.backfill.daemon_executor import backfill_trigger
from scoperouter.processor_registry.loader import LoadedConfig
from scoperouter.runtime.outcomes import Inbound

BACKFILL_ID = backfill_trigger("b-1", "player_game_summary", GAME_DAY, 1).trigger_id


def _event(n: int) -> dict[str, Any]:
    return {
        "event_id": f"gamebook-{n}",
        "source": "nba_raw.nbac_gamebook_player_stats",
        "game_date": GAME_DAY.isoformat(),
        "affected_entities": {"players": [players_of("BOS")[0]]},
        "changed_fields": ["minutes"],
    }


@pytest.mark.parametrize(
    ("trigger_id", "routes"),
    [
        (None, True),  # a change event: routed
        ("t-0123456789abcdef01234567", True),  # the completion of a routed trigger: routed
        (BACKFILL_ID, False),  # the completion of a backfill run: recorded, not routed
    ],
)
async def test_a_backfill_runs_completion_routes_nothing(
    zero_cfg: LoadedConfig, make_router: RouterFactory, trigger_id: str | None, routes: bool
) -> None:
    """An event naming a backfill trigger's id is accepted with every decision skip_downstream; others route."""
    sink = MemorySink()
    r = make_router(zero_cfg, sink)
    await r.start()
    out = await r.submit(Inbound("pubsub", obj=_event(1), trigger_id=trigger_id))
    assert out.status == "accepted"
    assert await r.idle()
    assert bool(sink.received) is routes
    assert bool(out.triggers) is routes

"""The router counts the undeclared reads of accepted completion events (issue 12, drift)."""

from __future__ import annotations

from runtime_support import MemorySink, RouterFactory

from scoperouter.processor_registry.loader import LoadedConfig
from scoperouter.runtime.outcomes import Inbound


async def test_router_counts_undeclared_reads(
    zero_cfg: LoadedConfig, make_router: RouterFactory
) -> None:
    """A completion naming a table its processor does not declare increments the metric once per event."""
    r = make_router(zero_cfg, MemorySink())
    await r.start()
    body = {
        "event_id": "pgs-drift-1",
        "source": "nba_analytics.player_game_summary",
        "game_date": "2025-11-19",
        "affected_entities": {"players": ["lebronjames"]},
        "referenced_tables": [
            "nba_raw.nbac_gamebook_player_stats",
            "nba_reference.nba_players_registry",
        ],
    }
    assert (await r.submit(Inbound("test", obj=body))).status == "accepted"
    assert (await r.submit(Inbound("test", obj=body))).status == "duplicate"
    assert await r.idle()
    counter = r.metrics.undeclared_reads
    assert (
        counter.labels("player_game_summary", "nba_reference.nba_players_registry")._value.get()
        == 1
    )
    assert (
        counter.labels("player_game_summary", "nba_raw.nbac_gamebook_player_stats")._value.get()
        == 0
    )

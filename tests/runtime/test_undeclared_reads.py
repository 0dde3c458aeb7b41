"""The router counts the undeclared reads of accepted completion events (issue 12, drift)
and the events of unknown sources, on either store (the state store's thread picks the
events to note, the journal store's router looks at each)."""

from __future__ import annotations

from typing import Any

import pytest
from runtime_support import MemorySink, RouterFactory
from test_outage_state import make_shared  # noqa: F401 (a fixture)

from scoperouter.processor_registry.loader import LoadedConfig
from scoperouter.runtime.outcomes import Inbound

DRIFT = {
    "event_id": "pgs-drift-1",
    "source": "nba_analytics.player_game_summary",
    "game_date": "2025-11-19",
    "affected_entities": {"players": ["lebronjames"]},
    "referenced_tables": [
        "nba_raw.nbac_gamebook_player_stats",
        "nba_reference.arena_capacity",
    ],
}
UNKNOWN = {"event_id": "u-1", "source": "nba_raw.no_such_table", "game_date": "2025-11-19"}
PLAIN = {"event_id": "p-1", "source": "nba_raw.nbac_injury_report", "game_date": "2025-11-19"}


def _router(store: str, cfg: LoadedConfig, journal: RouterFactory, shared: Any) -> Any:
    return (journal if store == "journal" else shared)(cfg, MemorySink())


@pytest.mark.parametrize("store", ["journal", "state"])
async def test_router_counts_undeclared_reads(
    zero_cfg: LoadedConfig,
    make_router: RouterFactory,
    make_shared: Any,  # noqa: F811 (test_outage_state's fixture)
    store: str,
) -> None:
    """A completion naming a table its processor does not declare increments the metric once per event."""
    r = _router(store, zero_cfg, make_router, make_shared)
    await r.start()
    assert (await r.submit(Inbound("test", obj=DRIFT))).status == "accepted"
    assert (await r.submit(Inbound("test", obj=DRIFT))).status == "duplicate"
    assert await r.idle()
    counter = r.metrics.undeclared_reads
    assert counter.labels("player_game_summary", "nba_reference.arena_capacity")._value.get() == 1
    assert (
        counter.labels("player_game_summary", "nba_raw.nbac_gamebook_player_stats")._value.get()
        == 0
    )


@pytest.mark.parametrize("store", ["journal", "state"])
@pytest.mark.parametrize(
    ("bodies", "unknown"), [([UNKNOWN], 1), ([PLAIN], 0), ([PLAIN, UNKNOWN], 1)]
)
async def test_router_counts_events_of_unknown_sources(
    zero_cfg: LoadedConfig,
    make_router: RouterFactory,
    make_shared: Any,  # noqa: F811 (test_outage_state's fixture)
    store: str,
    bodies: list[dict[str, Any]],
    unknown: int,
) -> None:
    """Each accepted event of a source no processor knows counts once, whatever its batch holds."""
    r = _router(store, zero_cfg, make_router, make_shared)
    await r.start()
    for body in bodies:
        assert (await r.submit(Inbound("test", obj=body))).status == "accepted"
    samples = [
        s.value
        for fam in r.metrics.unknown_source_events.collect()
        for s in fam.samples
        if s.name.endswith("_total")
    ]
    assert sum(samples) == unknown

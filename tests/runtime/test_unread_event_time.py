"""A completion whose production time (``produced_at`` / ``timestamp``) the router cannot read
is routed as if it had none -- the time only informs -- and never in silence: the daemon
counts it per field (``scoperouter_event_fields_ignored_total``) and logs a WARNING naming
the event."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from runtime_support import GAME_DAY, MemorySink, RouterFactory, players_of

from scoperouter.processor_registry.loader import LoadedConfig
from scoperouter.runtime.outcomes import Inbound

EVENT: dict[str, Any] = {
    "event_id": "gamebook-1",
    "source": "nba_raw.nbac_gamebook_player_stats",
    "game_date": GAME_DAY.isoformat(),
    "affected_entities": {"players": [players_of("BOS")[0]]},
    "changed_fields": ["minutes"],
}


@pytest.mark.parametrize("as_bytes", [True, False], ids=["data", "obj"])
@pytest.mark.parametrize(
    ("fields", "ignored"),
    [
        ({"timestamp": 1763575500000}, {"timestamp": 1.0}),  # epoch milliseconds
        ({"produced_at": "2025-11-19 18:05:00 UTC"}, {"produced_at": 1.0}),
        ({"produced_at": "soon", "timestamp": True}, {"produced_at": 1.0, "timestamp": 1.0}),
        ({"produced_at": "2025-11-19T18:05:00z"}, {}),  # RFC 3339, lower-case: read
    ],
)
async def test_unread_time_routes_counted_and_logged(
    zero_cfg: LoadedConfig,
    make_router: RouterFactory,
    caplog: pytest.LogCaptureFixture,
    as_bytes: bool,
    fields: dict[str, Any],
    ignored: dict[str, float],
) -> None:
    """The event is accepted and routed; each unread field is counted and logged."""
    sink = MemorySink()
    r = make_router(zero_cfg, sink)
    await r.start()
    body = {**EVENT, **fields}
    inbound = (
        Inbound("http", data=json.dumps(body).encode()) if as_bytes else Inbound("pubsub", obj=body)
    )
    with caplog.at_level(logging.WARNING, logger="scoperouter.messages"):
        out = await r.submit(inbound)
    assert out.status == "accepted", out
    assert await r.idle()
    assert sink.received and out.triggers
    sample = r.metrics.registry.get_sample_value
    for key in ("produced_at", "timestamp"):
        got = sample("scoperouter_event_fields_ignored_total", {"field": key})
        assert (got or 0.0) == ignored.get(key, 0.0), key
    warned = [rec.getMessage() for rec in caplog.records if rec.levelno == logging.WARNING]
    assert len(warned) == len(ignored)
    assert all("gamebook-1" in w for w in warned)

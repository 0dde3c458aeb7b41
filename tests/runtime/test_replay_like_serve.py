"""``replay`` against the daemon on streams the equivalence test does not cover."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from runtime_support import (
    GAME_DAY,
    RouterFactory,
    as_lines,
    daemon_on_clock,
    load,
    write_registry,
)

from scoperouter.commands.replay import replay_events
from scoperouter.messages.models import Trigger
from scoperouter.messages.normalize import parse_event_bytes


def _injury(event_id: str, player: str, when: str) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "source": "nba_raw.nbac_injury_report",
        "game_date": "2025-11-19",
        "affected_entities": {"players": [player]},
        "changed_fields": ["injury_status"],
        "produced_at": when,
    }


async def _daemon(cfg: Any, raws: list[dict[str, Any]], make_router: RouterFactory) -> list[Any]:
    events = [parse_event_bytes(line, cfg.registry) for line in as_lines(raws)]
    stream = [(raw, ev.produced_at.timestamp()) for raw, ev in zip(raws, events, strict=True)]
    return [_key(t) for t in await daemon_on_clock(make_router, cfg, stream)]


def _key(t: Trigger) -> tuple[str, float]:
    assert t.fired_at is not None
    return (t.trigger_id, t.fired_at.timestamp())


async def test_replay_ignores_a_redelivered_event_like_serve(
    tmp_path: Path, make_router: RouterFactory
) -> None:
    """A redelivered event (same event_id, after its window fired) gives serve's triggers in replay: no second run."""
    cfg = load(write_registry(tmp_path / "cfg", quiet="10s", max_wait="30s"))
    raws = [
        _injury("e-1", "lalplayer01", "2025-11-19T18:00:00Z"),
        _injury("e-1", "lalplayer01", "2025-11-19T18:05:00Z"),  # Pub/Sub redelivery
    ]
    replayed = [
        _key(t)
        for t in replay_events(cfg.registry, cfg.relations, as_lines(raws), GAME_DAY).triggers
    ]
    daemon = await _daemon(cfg, raws, make_router)
    assert replayed == daemon


def test_replay_text_counts_every_cause_of_a_capped_window() -> None:
    """replay's text line counts caused_by_more too: a hot window's trigger names 1,000 ids but had more causes."""
    from datetime import date

    from scoperouter.commands.replay import format_trigger

    day = date(2025, 11, 19)
    t = Trigger(
        trigger_id="t-1",
        processor="player_game_summary",
        game_date=day,
        start_date=day,
        end_date=day,
        scope="date",
        reason="fallback_threshold",
        caused_by=tuple(f"e-{i:04d}" for i in range(1000)),
        caused_by_more=250,
    )
    assert "caused_by=1250" in format_trigger(t)

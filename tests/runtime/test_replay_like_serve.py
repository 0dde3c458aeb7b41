"""``replay`` against the daemon on streams the equivalence test does not cover."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
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


def _envelope(event: dict[str, Any], **message: Any) -> dict[str, Any]:
    """A Pub/Sub push body, as serve's /events takes it."""
    data = base64.b64encode(json.dumps(event).encode()).decode()
    return {"message": {"data": data, **message}, "subscription": "projects/p/subscriptions/s"}


def _no_id(event: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in event.items() if k != "event_id"}


A = _injury("m-1", "lalplayer01", "2025-11-19T18:00:00Z")
# A as serve names it from a push: its messageId qualified by the subscription
A_PUSHED = {**A, "event_id": "projects/p/subscriptions/s#m-1"}
B = _injury("e-2", "lalplayer02", "2025-11-19T18:00:05Z")


@pytest.mark.parametrize(
    ("lines", "plain", "rejected"),
    [
        # an id-less payload takes the envelope's messageId, as serve names it
        ([_envelope(_no_id(A), messageId="m-1"), B], [A_PUSHED, B], 0),
        # a payload's own event_id wins over the messageId
        ([_envelope(B, messageId="m-9"), A], [B, A], 0),
        # a push message serve would dead-letter is a rejected line; the rest replay
        ([{"message": {"messageId": "m-2"}, "subscription": "s"}, A], [A], 1),
        ([{"message": {"data": "%%%", "messageId": "m-3"}}, A], [A], 1),
    ],
)
def test_replay_takes_push_envelopes_like_serve(
    lines: list[dict[str, Any]], plain: list[dict[str, Any]], rejected: int, zero_cfg: Any
) -> None:
    """A stream of serve's HTTP bodies replays as the events they carry."""
    reg, rel = zero_cfg.registry, zero_cfg.relations
    got = replay_events(reg, rel, as_lines(lines), GAME_DAY)
    want = replay_events(reg, rel, as_lines(plain), GAME_DAY)
    assert [_key(t) for t in got.triggers] == [_key(t) for t in want.triggers]
    assert (got.events, got.rejected) == (len(plain), rejected)

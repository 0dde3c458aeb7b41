"""The game-day update stream and its Phase 2 loader."""

from __future__ import annotations

from datetime import timedelta

import pytest
from nba_support import registry, short_day

from scoperouter.examples.nba.harness import GameDay
from scoperouter.examples.nba.stream import apply_update, game_day_stream
from scoperouter.messages.normalize import normalize_event

REG = registry()


@pytest.fixture(scope="module")
def day() -> GameDay:
    return short_day(11, REG)


def test_stream_has_every_kind_of_update(day: GameDay) -> None:
    """Injury reports, line moves, stat corrections (last night and five days back), a
    critical pre-tip burst and a legacy date-level message, in time order."""
    ups = day.updates
    gd = day.game_date
    assert [u.at for u in ups] == sorted(u.at for u in ups)
    sources = {u.source for u in ups}
    assert {
        "nba_raw.nbac_injury_report",
        "nba_raw.odds_api_game_lines",
        "nba_raw.nbac_gamebook_player_stats",
    } <= sources
    days = {u.day for u in ups if u.source == "nba_raw.nbac_gamebook_player_stats"}
    assert {gd - timedelta(days=1), gd - timedelta(days=5)} <= days
    critical = [u for u in ups if u.priority == "critical"]
    assert len(critical) >= 5 and all(u.source == "nba_raw.nbac_injury_report" for u in critical)
    assert any(u.legacy and u.source == "nba_raw.nbac_injury_report" for u in ups)


def test_stream_is_deterministic(day: GameDay) -> None:
    """The same season and overnight state give the same stream."""
    assert game_day_stream(day.season, day.overnight) == day.updates


def test_loader_publishes_only_real_changes(day: GameDay) -> None:
    """Entity updates publish canonical events naming what changed; legacy ones raw_data_loaded."""
    wh = day.overnight.copy()
    seen_legacy = seen_canonical = False
    for upd in day.updates:
        msg = apply_update(wh, upd, day.game_date)
        assert msg is not None
        ev = normalize_event(msg, REG)
        if upd.legacy:
            seen_legacy = True
            assert msg["event_type"] == "raw_data_loaded" and ev.affected_entities is None
            continue
        seen_canonical = True
        keys = sorted(k for k, _ in upd.rows)
        assert ev.affected_entities is not None
        (ids,) = ev.affected_entities.values()
        assert set(ids) <= set(keys) and ids
        assert ev.priority == upd.priority
        changed = {f for _, fields in upd.rows for f, _ in fields}
        assert ev.changed_fields is not None and set(ev.changed_fields) <= changed
    assert seen_legacy and seen_canonical


@pytest.mark.parametrize("label", ["moneyline move", "broadcast change"])
def test_ignored_field_updates_route_nothing(day: GameDay, label: str) -> None:
    """A moneyline-only line move and a broadcast change are skipped as irrelevant_fields by
    every consumer of their source (the registry names the tables' real column names)."""
    from scoperouter.router.planner import plan

    wh = day.overnight.copy()
    decisions = None
    for upd in day.updates:
        msg = apply_update(wh, upd, day.game_date)
        if upd.label == label:
            assert msg is not None
            ev = normalize_event(msg, REG)
            decisions = plan(REG, day.relations, ev, day.game_date)
            break
    assert decisions is not None, f"no {label!r} update in the stream"
    consumers = {ci.processor for ci in REG.by_source[upd.source]}
    assert consumers
    for d in decisions:
        if d.processor in consumers:
            assert (d.action, d.reason) == ("skip", "irrelevant_fields"), d

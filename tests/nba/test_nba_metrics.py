"""The demo's audited metrics: an independent minimum, both single-update latencies, and
why the date-level baseline re-runs lookback dates."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Any

import pytest
from examples.nba.harness import (
    Comparison,
    GameDay,
    ModeStats,
    SingleUpdate,
    compare,
    run_date_level,
    single_update,
    truth,
)
from examples.nba.processors import BY_NAME
from nba_support import short_day, variant

SEED = 2025
D1, D2 = date(2025, 11, 18), date(2025, 11, 19)


@pytest.fixture(scope="module")
def day() -> GameDay:
    """A short season's game day with the repository's registry."""
    return short_day(SEED)


@pytest.fixture(scope="module")
def base(day: GameDay) -> Comparison:
    """The day compared date level and routed."""
    return compare(day)


def _slow_windows(data: dict[str, Any]) -> None:
    data["defaults"]["window"] = {"quiet": "5m", "max_wait": "20m"}


@pytest.mark.parametrize(
    ("entities", "dates", "all_rows", "entity_only"),
    [
        ({}, {}, 0, 0),
        ({"player_game_summary": 3}, {}, 3, 3),
        ({"a": 2, "b": 5}, {"daily_predictions_exporter": {D1: 300}}, 307, 7),
        ({}, {"league_rankings": {D1: 240, D2: 250}}, 490, 0),
    ],
)
def test_mode_stats_minimum_rule(
    entities: dict[str, int], dates: dict[str, dict[date, int]], all_rows: int, entity_only: int
) -> None:
    """The minimum sums per-run entity changes plus each changed date's rows once."""
    stats = ModeStats(changed_entities=dict(entities), changed_dates=dict(dates))
    assert stats.minimum_rows() == all_rows
    assert stats.minimum_rows(entity_processors_only=True) == entity_only


def test_minimum_comes_from_the_date_level_run(base: Comparison) -> None:
    """Comparison's minimum is the date-level run's change detection, not the routed run's."""
    assert base.minimum_rows == base.date_level.minimum_rows() > 0
    assert base.minimum_entity_processor_rows == base.date_level.minimum_rows(
        entity_processors_only=True
    )
    assert 0 < base.minimum_entity_processor_rows < base.minimum_rows
    assert base.routed_vs_minimum == pytest.approx(base.routed.entity_rows / base.minimum_rows)
    date_procs = {n for n, p in BY_NAME.items() if p.granularity == "date"}
    entity_rows = sum(v[1] for n, v in base.routed.by_processor.items() if n not in date_procs)
    assert base.routed_vs_minimum_entity_processors == pytest.approx(
        entity_rows / base.minimum_entity_processor_rows
    )


def test_minimum_independent_of_router_windows(day: GameDay, base: Comparison) -> None:
    """Changing the router's windows changes the routed work but not the minimum."""
    slow = compare(replace(day, registry=variant(_slow_windows)))
    assert slow.outputs_identical
    assert (slow.routed.processor_runs, slow.routed.changed_rows) != (
        base.routed.processor_runs,
        base.routed.changed_rows,
    )
    assert slow.minimum_rows == base.minimum_rows
    assert slow.minimum_entity_processor_rows == base.minimum_entity_processor_rows


def test_single_update_both_latencies(day: GameDay) -> None:
    """Every-consumer-done is never earlier than every-phase-reached; routed beats date level."""
    s = single_update(day)
    assert isinstance(s, SingleUpdate)
    assert 0 < s.routed_s <= s.routed_all_s < s.date_level_all_s
    assert 0 < s.date_level_s <= s.date_level_all_s
    assert s.routed_slowest in BY_NAME and s.date_level_slowest in BY_NAME


def test_baseline_needs_lookback_reruns(day: GameDay, base: Comparison) -> None:
    """Without re-running lookback dates the date-level baseline is cheaper but wrong."""
    stats, wh = run_date_level(day, rerun_lookback=False)
    assert stats.entity_rows < base.date_level.entity_rows
    assert truth(day, wh)
    assert not truth(day, base.date_wh)

"""Entity-level routing gives the same final warehouse as date-level processing, and the
comparison has teeth: a registry that loses updates is caught."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from nba_loop_support import FAST_SEEDS, LocalSeed
from nba_support import (
    check_seed,
    differing_columns,
    drop_feature_store_player_status,
    input_of,
    registry,
    variant,
)

from scoperouter.examples.nba.harness import Comparison, GameDay, ModeStats, compare, truth
from scoperouter.examples.nba.season import relation_rows
from scoperouter.examples.nba.warehouse import Warehouse
from scoperouter.processor_registry.relations import InMemoryRelations

REG = registry()
TDZA = "nba_precompute.team_defense_zone_analysis"


# Two seasons (one per core) in the default suite (conftest.py's fast_seeds, shared with
# test_nba_closed_loop.py); the other 18 are the `slow` set, which CI runs as a step of its
# own (`pytest -m slow`, .ci/run). Budgets are explicit and sized for a loaded 2-core
# machine: each item's budget covers its fixture, which the first item of the set pays for
# (about 5 s of CPU per seed; 3x that under `stress-ng --cpu 4`, and other jobs on top).
SLOW_SEEDS = tuple(range(2, 20))
FAST_BUDGET_S = 300
SLOW_BUDGET_S = 1200


def _check_seeds(seeds: tuple[int, ...]) -> dict[int, dict[str, Any]]:
    """The seeds' comparisons, computed on both cores (spawned workers, no shared state)."""
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=2, mp_context=ctx) as pool:
        return {r["seed"]: r for r in pool.map(check_seed, seeds)}


@pytest.fixture(scope="module")
def fast_seed_results(fast_seeds: dict[int, dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """The default suite's seasons (conftest.py: computed once, with test_nba_closed_loop's)."""
    return {s: r["equivalence"] for s, r in fast_seeds.items()}


@pytest.fixture(scope="module")
def slow_seed_results() -> dict[int, dict[str, Any]]:
    """The slow set's seasons."""
    return _check_seeds(SLOW_SEEDS)


@pytest.mark.parametrize(
    "seed",
    [
        *(pytest.param(s, marks=pytest.mark.timeout(FAST_BUDGET_S)) for s in FAST_SEEDS),
        *(
            pytest.param(s, marks=[pytest.mark.slow, pytest.mark.timeout(SLOW_BUDGET_S)])
            for s in SLOW_SEEDS
        ),
    ],
)
def test_routed_equals_date_level(request: pytest.FixtureRequest, seed: int) -> None:
    """For 20 seasons (2 by default, 18 more with -m slow), the routed run's final warehouse
    equals the date-level one, row by row, with less work."""
    which = "slow_seed_results" if seed in SLOW_SEEDS else "fast_seed_results"
    r: dict[str, Any] = request.getfixturevalue(which)[seed]
    assert r["differing"] == {}
    assert r["identical"] and r["missed"] == 0
    assert r["rejected"] == 0
    assert r["routed_rows"] * 5 < r["date_rows"]


@pytest.fixture(scope="module")
def teeth_day(fast_local_seed: LocalSeed) -> tuple[GameDay, tuple[ModeStats, Warehouse]]:
    """Season 1's game day and its date-level run (conftest.py: computed once)."""
    return fast_local_seed.day, fast_local_seed.baseline


@pytest.fixture(scope="module")
def good(fast_local_seed: LocalSeed) -> Comparison:
    """teeth_day routed with the repository's registry, compared with its date-level run."""
    return fast_local_seed.good


def test_both_modes_equal_a_full_rebuild(
    teeth_day: tuple[GameDay, tuple[ModeStats, Warehouse]], good: Comparison
) -> None:
    """Both final warehouses equal recomputing every date from the final raw tables."""
    day, _ = teeth_day
    assert truth(day, good.date_wh) == {}
    assert truth(day, good.routed_wh) == {}


def _no_opponent_in_defense_maps(data: dict[str, Any]) -> None:
    for proc in ("player_composite_factors", "ml_feature_store"):
        input_of(data, proc, TDZA)["map"] = {"team": ["team_players"]}


def _defense_reaches_own_players(data: dict[str, Any]) -> None:
    input_of(data, "player_composite_factors", TDZA)["map"] = {"team": ["team_players"]}


def _no_lookback(data: dict[str, Any]) -> None:
    del data["processors"]["player_shot_zone_analysis"]["lookback"]
    del data["processors"]["team_defense_zone_analysis"]["lookback"]


def _offense_misses_gamebook(data: dict[str, Any]) -> None:
    inputs = data["processors"]["team_offense_game_summary"]["inputs"]
    inputs[:] = [i for i in inputs if i["source"] != "nba_raw.nbac_gamebook_player_stats"]


def _drop_input(data: dict[str, Any], processor: str, source: str) -> None:
    inputs = data["processors"][processor]["inputs"]
    inputs[:] = [i for i in inputs if i["source"] != source]


def _player_summary_misses_team_offense(data: dict[str, Any]) -> None:
    # usage rate needs the team's possessions (player_game_summary_processor.py:331)
    _drop_input(data, "player_game_summary", "nba_analytics.team_offense_game_summary")


@pytest.mark.parametrize(
    "mutate",
    [
        _no_opponent_in_defense_maps,
        _defense_reaches_own_players,
        _no_lookback,
        _offense_misses_gamebook,
        _player_summary_misses_team_offense,
    ],
    ids=lambda f: f.__name__.strip("_"),
)
def test_broken_registry_misses_updates(
    teeth_day: tuple[GameDay, tuple[ModeStats, Warehouse]], good: Comparison, mutate: Any
) -> None:
    """Removing a needed mapping, relation, lookback, input or field from a copy of
    routes.yaml makes the routed warehouse differ from the date-level one."""
    day, baseline = teeth_day
    broken = replace(day, registry=variant(mutate))
    c = compare(broken, baseline=baseline)
    assert not c.outputs_identical
    assert c.missed_updates > 0
    assert good.outputs_identical and good.missed_updates == 0


MLFS_INJURY = "nba_raw.nbac_injury_report"


def _feature_store_status_only(data: dict[str, Any]) -> None:
    drop_feature_store_player_status(data)  # the path the reference takes instead (nba_support)


def _feature_store_misses_mates(data: dict[str, Any]) -> None:
    drop_feature_store_player_status(data)
    del input_of(data, "ml_feature_store", MLFS_INJURY)["also_map"]


def _feature_store_misses_injuries(data: dict[str, Any]) -> None:
    # feature_extractor.py:1439 reads the injury report directly
    drop_feature_store_player_status(data)
    _drop_input(data, "ml_feature_store", MLFS_INJURY)


@pytest.mark.parametrize(
    ("mutate", "columns"),
    [
        (_feature_store_status_only, {"injury_risk"}),
        (_feature_store_misses_mates, {"injury_risk", "teammate_usage_available"}),
        (
            _feature_store_misses_injuries,
            {"injury_risk", "injury_status", "teammate_usage_available"},
        ),
    ],
    ids=lambda x: x.__name__.strip("_") if callable(x) else "",
)
def test_feature_store_injury_input_teeth(
    teeth_day: tuple[GameDay, tuple[ModeStats, Warehouse]], mutate: Any, columns: set[str]
) -> None:
    """Without the upcoming context's player_status (which reaches the injured player's
    teammates in the reference), a copy of routes.yaml loses exactly the feature store's
    columns its injury input (injury_status, teammate_usage_available: the teammates through
    also_map) and that read (injury_risk) carry, and nothing downstream."""
    day, baseline = teeth_day
    c = compare(replace(day, registry=variant(mutate)), baseline=baseline)
    assert set(c.differing) == {"nba_predictions.ml_feature_store_v2"}
    assert differing_columns(c, "nba_predictions.ml_feature_store_v2") == columns


def _holes(day: GameDay, relation: str) -> GameDay:
    """The day with relation data missing: the game day and the day before for dated
    relations, one team's roster for team_players."""
    gd = day.game_date
    rows = relation_rows(day.season)
    if relation == "team_players":
        rows[relation] = [r for r in rows[relation] if r[1] != "LAL"]
    else:
        rows[relation] = [r for r in rows[relation] if r[0] not in (gd, gd - timedelta(days=1))]
    inverses = {n: r.base for n, r in REG.relations.items() if r.inverse}
    types = {n: (r.from_type, r.to_type) for n, r in REG.relations.items()}
    return replace(day, relations=InMemoryRelations(rows, inverses=inverses, types=types))


@pytest.mark.parametrize("relation", ["team_opponent", "team_players"])
def test_missing_relation_rows_never_lose_updates(
    teeth_day: tuple[GameDay, tuple[ModeStats, Warehouse]], good: Comparison, relation: str
) -> None:
    """Relation rows missing for a mapping cost work (full-date fallback), never correctness."""
    day, baseline = teeth_day
    c = compare(_holes(day, relation), baseline=baseline)
    assert c.outputs_identical and c.missed_updates == 0
    assert c.routed.entity_rows > good.routed.entity_rows


@pytest.mark.parametrize("relation", ["game_teams", "player_games"])
def test_missing_lookback_rows_never_lose_updates(
    teeth_day: tuple[GameDay, tuple[ModeStats, Warehouse]], relation: str
) -> None:
    """Relation rows missing for a lookback's `via` relation should not lose updates either."""
    day, baseline = teeth_day
    c = compare(_holes(day, relation), baseline=baseline)
    assert c.outputs_identical

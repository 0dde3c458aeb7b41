"""Helpers for the reference-pipeline tests: short seasons, relations, registry variants."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml

from scoperouter.examples.nba.harness import Comparison, GameDay, prepare
from scoperouter.examples.nba.season import (
    DEFAULT_GAME_DATE,
    Season,
    generate_season,
    relation_rows,
)
from scoperouter.processor_registry.compiled import CompiledRegistry
from scoperouter.processor_registry.loader import load_config, load_config_text
from scoperouter.processor_registry.relations import InMemoryRelations

REPO = Path(__file__).resolve().parents[2]
ROUTES = REPO / "routes.yaml"
SHORT_HISTORY_DAYS = 8  # enough for the five-days-back correction and its lookback


def registry() -> CompiledRegistry:
    return load_config(ROUTES, with_relations=False).registry


def relations_for(reg: CompiledRegistry, season: Season) -> InMemoryRelations:
    """The season's relation rows as the store the planner reads (same as the CSVs)."""
    inverses = {n: r.base for n, r in reg.relations.items() if r.inverse}
    types = {n: (r.from_type, r.to_type) for n, r in reg.relations.items()}
    return InMemoryRelations(relation_rows(season), inverses=inverses, types=types)


def short_season(seed: int) -> Season:
    return generate_season(
        seed, DEFAULT_GAME_DATE, season_start=DEFAULT_GAME_DATE - timedelta(days=SHORT_HISTORY_DAYS)
    )


def short_day(seed: int, reg: CompiledRegistry | None = None) -> GameDay:
    reg = reg or registry()
    season = short_season(seed)
    return prepare(season, reg, relations_for(reg, season))


def routes_data() -> dict[str, Any]:
    data = yaml.safe_load(ROUTES.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def variant(mutate: Callable[[dict[str, Any]], None]) -> CompiledRegistry:
    """A registry compiled from a mutated copy of routes.yaml."""
    data = copy.deepcopy(routes_data())
    mutate(data)
    return load_config_text(yaml.safe_dump(data), base_dir=REPO, with_relations=False).registry


# Production's feature store reads the upcoming context's player_status (feature 10,
# injury_risk: feature_extractor.py:619, feature_calculator.py:77-113), and so does the
# reference's. A completion names one changed_fields list for all its ids, so the reference
# context's run for an injury (the player's player_status, his teammates' teammates_out, a
# reference stand-in) sends the teammates on to the feature store through that read: in the
# demo it reaches the injured player's teammates, and the feature store's injury input and
# its also_map are redundant there (a copy of routes.yaml without that input keeps the demo's
# outputs identical). Production's upcoming context names a teammate only when his star count
# moves (team_context.py:710-1036), so there the feature store's own injury input and its
# also_map are what reach them (feature 47 sums every OUT/DOUBTFUL teammate's usage,
# feature_extractor.py:1423-1484). A copy that tests that input also drops player_status; it
# then misses injury_risk too (the feature store's run for the injury can read the context
# before the context's rerun), so those teeth name the columns that differ: injury_status and
# teammate_usage_available read the injury report, not the context.
FEATURE_STORE_STATUS = "player_status"


def drop_feature_store_player_status(data: dict[str, Any]) -> None:
    """Remove the feature store's read of the upcoming context's player_status (the path the
    reference's injuries take to the injured player's teammates)."""
    inp = input_of(data, "ml_feature_store", "nba_analytics.upcoming_player_game_context")
    assert FEATURE_STORE_STATUS in inp["fields"]
    inp["fields"] = [f for f in inp["fields"] if f != FEATURE_STORE_STATUS]


# player_daily_cache's roster expansion (tests/nba/test_daily_cache_roster.py): the also_map
# on its upcoming context input, and the routed rows it adds to the demo's day (routes.yaml,
# the nba README; test_nba_demo.py checks it on the session's demo run).
CACHE_CONTEXT_ALSO_MAP = {"player": ["player_team", "team_players"]}
CACHE_ALSO_MAP_COST = 0


def drop_cache_context_also_map(data: dict[str, Any]) -> None:
    """The gap: the cache's context input maps the named players by identity only."""
    inp = input_of(data, "player_daily_cache", "nba_analytics.upcoming_player_game_context")
    assert inp.pop("also_map") == CACHE_CONTEXT_ALSO_MAP


def differing_columns(c: Comparison, source: str) -> set[str]:
    """The columns of ``source`` whose values differ between the date-level and routed runs."""
    names = c.date_wh.defs[source].all_columns
    a, b = c.date_wh.dump([source])[source], c.routed_wh.dump([source])[source]
    out: set[str] = set()
    for key in c.differing.get(source, []):
        if key not in a or key not in b:
            out.add("<row>")
            continue
        out |= {n for n, x, y in zip(names, a[key], b[key], strict=True) if x != y}
    return out


def input_of(data: dict[str, Any], processor: str, source: str) -> dict[str, Any]:
    for inp in data["processors"][processor]["inputs"]:
        if inp["source"] == source:
            assert isinstance(inp, dict)
            return inp
    raise KeyError(f"{processor} has no input {source}")


def check_seed(seed: int) -> dict[str, Any]:
    """Run one short game day date level and routed (picklable summary, for a process pool)."""
    from scoperouter.examples.nba.harness import compare

    return seed_summary(compare(short_day(seed)))


def seed_summary(c: Comparison) -> dict[str, Any]:
    """The picklable summary of one short game day's comparison (check_seed's result)."""
    seed = c.seed
    return {
        "seed": seed,
        "identical": c.outputs_identical,
        "missed": c.missed_updates,
        "differing": {k: v[:5] for k, v in c.differing.items()},
        "rejected": c.routed.rejected_events + c.date_level.rejected_events,
        "date_rows": c.date_level.entity_rows,
        "routed_rows": c.routed.entity_rows,
    }

"""Helpers for the reference-pipeline tests: short seasons, relations, registry variants."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml

from scoperouter.examples.nba.harness import GameDay, prepare
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


# Production's feature store reads the upcoming context's player_status, star_teammates_out
# and game_total (feature_extractor.py:237, :619-623); the reference's does not. A completion
# names one changed_fields list for all its ids, so the upcoming context's run for an injury
# (the player's player_status, his teammates' teammates_out) sends the teammates on through
# them: in the demo that path reaches the injured player's teammates too. Production's upcoming
# context names a teammate only when his star count moves (team_context.py:710-1036), so there
# the feature store's own injury input and its also_map are what reach them (feature 47 sums
# every OUT/DOUBTFUL teammate's usage, feature_extractor.py:1423-1484). A copy of routes.yaml
# that tests that input drops these three names too, which the reference never needs.
UNMODELLED_FEATURE_STORE_READS = ("player_status", "star_teammates_out", "game_total")


def drop_unmodelled_feature_store_reads(data: dict[str, Any]) -> None:
    """Remove the feature store's reads of the upcoming context the reference does not model."""
    inp = input_of(data, "ml_feature_store", "nba_analytics.upcoming_player_game_context")
    assert set(UNMODELLED_FEATURE_STORE_READS) <= set(inp["fields"])
    inp["fields"] = [f for f in inp["fields"] if f not in UNMODELLED_FEATURE_STORE_READS]


def input_of(data: dict[str, Any], processor: str, source: str) -> dict[str, Any]:
    for inp in data["processors"][processor]["inputs"]:
        if inp["source"] == source:
            assert isinstance(inp, dict)
            return inp
    raise KeyError(f"{processor} has no input {source}")


def check_seed(seed: int) -> dict[str, Any]:
    """Run one short game day date level and routed (picklable summary, for a process pool)."""
    from scoperouter.examples.nba.harness import compare

    c = compare(short_day(seed))
    return {
        "seed": seed,
        "identical": c.outputs_identical,
        "missed": c.missed_updates,
        "differing": {k: v[:5] for k, v in c.differing.items()},
        "rejected": c.routed.rejected_events + c.date_level.rejected_events,
        "date_rows": c.date_level.entity_rows,
        "routed_rows": c.routed.entity_rows,
    }

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

"""Shared helpers of the backfill tests: a small reference season, its relations, a
corrupted warehouse and the ground truth (a full recompute from the raw tables)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache
from pathlib import Path

from scoperouter.backfill.overlap import Reach, reach_back
from scoperouter.backfill.plan import BackfillPlan, Request, plan_backfill
from scoperouter.backfill.runner import Summary, open_backfill, run_backfill
from scoperouter.backfill.schedule import Policy
from scoperouter.backfill.store import BackfillStore
from scoperouter.examples.nba.backfill_executor import ReferenceExecutor, corrupt_phase3
from scoperouter.examples.nba.demo import relations_from_dir
from scoperouter.examples.nba.processors import (
    OUTPUT_SOURCES,
    build_all,
    new_warehouse,
)
from scoperouter.examples.nba.season import Season, generate_season, write_relations
from scoperouter.examples.nba.warehouse import Warehouse, diff_dumps
from scoperouter.processor_registry.compiled import CompiledRegistry
from scoperouter.processor_registry.loader import load_config
from scoperouter.processor_registry.relations import InMemoryRelations

REPO = Path(__file__).resolve().parents[2]
SEASON_START = date(2025, 10, 21)
_NOT_NUMERIC = {"status", "opponent", "home", "player_status", "injury_status", "dnp_reason",
                "injury_reason"}  # fmt: skip


@cache
def repo_registry() -> CompiledRegistry:
    """The repository's routes.yaml, compiled (no relation data)."""
    return load_config(REPO / "routes.yaml", with_relations=False).registry


@cache
def repo_reach() -> Reach:
    """What each of the repository registry's processors reads back (overlap checks)."""
    return reach_back(repo_registry())


@dataclass
class World:
    season: Season
    registry: CompiledRegistry
    relations: InMemoryRelations
    truth: Warehouse  # every output built from raw: the full recompute

    @property
    def as_of(self) -> date:
        return self.season.game_date


def world(tmp: Path, last: date) -> World:
    registry = load_config(REPO / "routes.yaml", with_relations=False).registry
    season = generate_season(2025, last, season_start=SEASON_START)
    write_relations(season, tmp / "relations")
    relations = relations_from_dir(registry, tmp / "relations")
    wh = new_warehouse(season.rosters)
    wh.load_season(season)
    build_all(wh, season.dates())
    return World(season, registry, relations, wh)


def days(a: date, b: date) -> tuple[date, ...]:
    return tuple(a + timedelta(days=i) for i in range((b - a).days + 1))


def corrupted(w: World, start: date, end: date) -> Warehouse:
    """A copy whose Phase 3 rows on [start, end] are wrong, cascaded through phases 4-6 on
    every date (a bad deploy that ran for a month)."""
    wh = w.truth.copy()
    corrupt_phase3(wh, w.season.dates(), start, end)
    return wh


def wrong_rows(w: World, wh: Warehouse) -> dict[str, int]:
    diff = diff_dumps(w.truth.dump(OUTPUT_SOURCES), wh.dump(OUTPUT_SOURCES))
    return {k: len(v) for k, v in diff.items()}


def plan_for(w: World, start: date, end: date, **kw: object) -> BackfillPlan:
    return plan_backfill(
        w.registry,
        Request(start, end, **kw),
        as_of=w.as_of,
        relations=w.relations,  # type: ignore[arg-type]
    )


def run_plan(
    plan: BackfillPlan,
    wh: Warehouse,
    store_path: Path,
    *,
    executor: object | None = None,
    policies: dict[str, Policy] | None = None,
    key: str = "k",
    max_running: int = 8,
) -> Summary:
    store = BackfillStore(store_path)
    try:
        bid, plan, resumed = open_backfill(store, key, lambda: plan, 0.0)
        ex = executor or ReferenceExecutor(wh)
        return asyncio.run(
            run_backfill(store, bid, plan, ex, policies or {}, resumed=resumed,  # type: ignore[arg-type]
                         max_running=max_running)
        )  # fmt: skip
    finally:
        store.close()

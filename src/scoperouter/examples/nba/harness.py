"""Run a game day twice -- date level and routed -- and compare the warehouses row by row.

* **Date level** (today's behaviour): every message re-runs every processor that reads its
  source for the whole date (plus the later dates its lookback covers, so the baseline is
  correct), and every run publishes a date-level completion message, which cascades the
  same way. A run whose inputs are unchanged since its previous identical run is not
  re-executed (its output is provably the same) but its cost is still counted.
* **Routed**: every message goes through the routing engine
  (:class:`scoperouter.router.engine.RoutingEngine`) on a virtual clock; fired triggers are
  executed by the reference processors, which publish only what changed (sender-side
  change detection); those completion events are planned again (the cascade).

Both modes start from the same overnight warehouse and see the same Phase 2 updates.
:func:`minimum_work` measures the work neither mode can avoid from ground truth (a full
recompute after every update), independently of both runs.
Costs use :class:`CostModel`: ``overhead_s`` per run plus ``seconds_per_row`` per entity row
processed (a full Phase 3 run of 450 players takes 30 s). Runs execute when they start
(reading the state at that instant); their completion events arrive ``duration`` later.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from functools import cached_property

from scoperouter.examples.nba.faults import NO_FAULTS, Faults
from scoperouter.examples.nba.minimum import MinimumWork, minimum_work
from scoperouter.examples.nba.processors import (
    BY_NAME,
    OUTPUT_SOURCES,
    build_all,
    new_warehouse,
)
from scoperouter.examples.nba.routers import (
    DateLevelRouter,
    Job,
    PlannedRouter,
    Router,
    lookback_dates,
)
from scoperouter.examples.nba.season import Season, generate_season
from scoperouter.examples.nba.simulation import (
    FULL_PHASE3_PLAYERS,
    FULL_PHASE3_SECONDS,
    CostModel,
    ModeStats,
    simulate,
)
from scoperouter.examples.nba.stream import Update, game_day_stream
from scoperouter.examples.nba.warehouse import Warehouse, diff_dumps
from scoperouter.execution_log.api import ExecutionLog
from scoperouter.processor_registry.compiled import CompiledRegistry
from scoperouter.processor_registry.relations import InMemoryRelations
from scoperouter.router.loop_params import LoopOverrides

__all__ = [
    "FULL_PHASE3_PLAYERS",
    "FULL_PHASE3_SECONDS",
    "Comparison",
    "CostModel",
    "DateLevelRouter",
    "GameDay",
    "Job",
    "MinimumWork",
    "ModeStats",
    "PlannedRouter",
    "Router",
    "compare",
    "default_day",
    "lookback_dates",
    "minimum_work",
    "prepare",
    "run_date_level",
    "run_routed",
    "simulate",
    "truth",
]


@dataclass
class GameDay:
    """The inputs of one run: season, overnight warehouse, stream, registry, relations."""

    season: Season
    overnight: Warehouse
    updates: tuple[Update, ...]
    registry: CompiledRegistry
    relations: InMemoryRelations

    @property
    def game_date(self) -> date:
        return self.season.game_date


def prepare(season: Season, registry: CompiledRegistry, relations: InMemoryRelations) -> GameDay:
    missing = sorted(set(registry.processor_names) - set(BY_NAME))
    if missing:
        from scoperouter.errors import ConfigError

        raise ConfigError(
            f"no reference processor for: {', '.join(missing)} (the demo runs the NBA "
            "reference pipeline; it reads ./routes.yaml when present: run it from another "
            "directory to use the NBA registry shipped with scoperouter)"
        )
    wh = new_warehouse(season.rosters)
    wh.load_season(season)
    build_all(wh, season.dates())
    return GameDay(season, wh, game_day_stream(season, wh), registry, relations)


@dataclass
class Comparison:
    day: GameDay
    seed: int
    game_date: date
    events: int
    outputs_identical: bool
    missed_updates: int
    date_level: ModeStats
    routed: ModeStats
    differing: dict[str, list[tuple[str, str]]]
    routed_wh: Warehouse
    date_wh: Warehouse

    @property
    def work_ratio(self) -> float:
        return self.date_level.entity_rows / max(1, self.routed.entity_rows)

    @cached_property
    def minimum(self) -> MinimumWork:
        """Ground truth, computed on first use (a full recompute after every update)."""
        return minimum_work(self.day)

    @property
    def routed_vs_minimum(self) -> float:
        """Routed entity rows / the per-update minimum (every processor)."""
        return self.routed.entity_rows / max(1, self.minimum.rows())

    @property
    def routed_vs_minimum_entity_processors(self) -> float:
        """The same ratio over processors of entity granularity (``date`` ones excluded)."""
        return self.routed.entity_processor_rows() / max(
            1, self.minimum.rows(entity_processors_only=True)
        )

    @property
    def work_ratio_vs_dag_date_level(self) -> float:
        """DAG-orchestrated date-level rows (once per reachable pair per update) / routed."""
        return self.minimum.dag_date_level_rows / max(1, self.routed.entity_rows)

    @property
    def routed_vs_day_minimum(self) -> float:
        """Routed entity rows / the end-of-day lower bound (not reachable online)."""
        return self.routed.entity_rows / max(1, self.minimum.rows(per_day=True))


def run_date_level(
    day: GameDay,
    *,
    cost: CostModel | None = None,
    registry: CompiledRegistry | None = None,
    rerun_lookback: bool = True,
    on_run: Callable[[Job, float, float, int, frozenset[str]], None] | None = None,
) -> tuple[ModeStats, Warehouse]:
    """Today's behaviour on a copy of the overnight warehouse. ``rerun_lookback=False``
    re-runs only the message's date (cheaper, but misses lookback dates: not correct).
    ``on_run`` sees every run (:func:`simulate`'s callback: job, start, duration, rows,
    changed ids)."""
    reg = registry or day.registry
    wh = day.overnight.copy()
    router = DateLevelRouter(reg, day.relations, day.game_date, rerun_lookback=rerun_lookback)
    stats = simulate(
        wh,
        day.updates,
        router,
        reg,
        day.game_date,
        cost or CostModel(),
        date_level=True,
        on_run=on_run,
    )
    stats.rejected_events = router.rejected
    return stats, wh


def run_routed(
    day: GameDay,
    *,
    cost: CostModel | None = None,
    registry: CompiledRegistry | None = None,
    log: ExecutionLog | None = None,
    loop: bool | LoopOverrides = False,
    faults: Faults = NO_FAULTS,
    keep: list[PlannedRouter] | None = None,
) -> tuple[ModeStats, Warehouse]:
    """The router (planner + windows) on a copy of the overnight warehouse. ``loop``: the
    closed loop (ledger, re-runs, barriers); ``faults``: runs that fail, get lost, report
    late; ``keep``: receives the router (its engine's ledger, for the trace)."""
    reg = registry or day.registry
    wh = day.overnight.copy()
    router = PlannedRouter(reg, day.relations, day.game_date, log, loop=loop)
    stats = simulate(
        wh, day.updates, router, reg, day.game_date, cost or CostModel(), faults=faults
    )
    stats.rejected_events = router.rejected
    if keep is not None:
        keep.append(router)
    return stats, wh


def compare(
    day: GameDay,
    *,
    cost: CostModel | None = None,
    baseline_registry: CompiledRegistry | None = None,
    baseline: tuple[ModeStats, Warehouse] | None = None,
    log: ExecutionLog | None = None,
) -> Comparison:
    """Run the day date level (with ``baseline_registry``, default the same registry; or
    reuse ``baseline``) and routed (with ``day.registry``); compare every output table row
    by row. With ``log``, the routed run's decisions, dispatches and completions are logged."""
    dstats, date_wh = baseline or run_date_level(day, cost=cost, registry=baseline_registry)
    rstats, routed_wh = run_routed(day, cost=cost, log=log)
    diff = diff_dumps(date_wh.dump(OUTPUT_SOURCES), routed_wh.dump(OUTPUT_SOURCES))
    return Comparison(
        day=day,
        seed=day.season.seed,
        game_date=day.game_date,
        events=len(day.updates),
        outputs_identical=not diff,
        missed_updates=sum(len(v) for v in diff.values()),
        date_level=dstats,
        routed=rstats,
        differing=diff,
        routed_wh=routed_wh,
        date_wh=date_wh,
    )


def truth(day: GameDay, wh: Warehouse) -> dict[str, list[tuple[str, str]]]:
    """Rows of ``wh`` that differ from a full rebuild of every date from its raw tables."""
    fresh = wh.copy()
    build_all(fresh, day.season.dates())
    return diff_dumps(fresh.dump(OUTPUT_SOURCES), wh.dump(OUTPUT_SOURCES))


def default_day(
    seed: int, game_date: date, registry: CompiledRegistry, relations: InMemoryRelations
) -> GameDay:
    return prepare(generate_season(seed, game_date), registry, relations)

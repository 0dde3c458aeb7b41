"""``scoperouter demo``: a realistic game day through the router with the reference pipeline.

:func:`run_demo` loads the registry (``./routes.yaml`` if present, else the copy shipped
with the package), uses its relation data for the default season from ``./routes.yaml`` or
generates the season's relation CSVs into a temporary directory (any other seed, or the
packaged registry), runs the game day date level (today's behaviour: always the packaged
registry over the season's relation data, :func:`reference_baseline`) and routed (the
loaded registry), and returns a
:class:`DemoResult` with the JSON summary, a text summary and a small HTML page.
"""

from __future__ import annotations

import html
import tempfile
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any

from scoperouter.examples.nba.harness import (
    Comparison,
    CostModel,
    GameDay,
    ModeStats,
    compare,
    prepare,
    run_date_level,
)
from scoperouter.examples.nba.loop_demo import LoopComparison, compare_loop
from scoperouter.examples.nba.processors import BY_NAME, ORDER
from scoperouter.examples.nba.season import (
    DEFAULT_GAME_DATE,
    DEFAULT_SEED,
    Season,
    generate_season,
    relation_rows,
    write_relations,
)
from scoperouter.examples.nba.single import SingleUpdate, single_update
from scoperouter.examples.nba.stream import apply_update
from scoperouter.examples.nba.warehouse import Warehouse
from scoperouter.execution_log.api import ExecutionLog
from scoperouter.processor_registry.compiled import CompiledRegistry
from scoperouter.processor_registry.loader import load_config
from scoperouter.processor_registry.relations import InMemoryRelations, load_csv_relations

# The NBA registry shipped with the package: a byte-for-byte copy of the repository's
# routes.yaml (a test keeps them identical). Its relation data is generated from the season.
PACKAGED_ROUTES = Path(__file__).resolve().parent / "routes.yaml"


def default_routes() -> Path:
    """``./routes.yaml`` when present, else the NBA registry shipped with the package."""
    local = Path("routes.yaml")
    return local if local.is_file() else PACKAGED_ROUTES


def relations_from_dir(registry: CompiledRegistry, directory: Path) -> InMemoryRelations:
    """Relation data for ``registry`` read from ``<directory>/<relation>.csv``."""
    base = {n: (r.from_type, r.to_type) for n, r in registry.relations.items() if not r.inverse}
    inv = {n: r.base for n, r in registry.relations.items() if r.inverse}
    inv_types = {n: (r.from_type, r.to_type) for n, r in registry.relations.items() if r.inverse}
    daily = {n for n, r in registry.relations.items() if r.every_day and not r.inverse}
    return load_csv_relations(directory, base, inv, inv_types, every_day=daily)


def reference_baseline(day: GameDay, cost: CostModel) -> tuple[ModeStats, Warehouse]:
    """Today's behaviour, the date-level side of the comparison: the reference pipeline's
    own dependencies (the registry shipped with the package) over the season's relation
    data, whatever registry the day is routed with. Built from the registry under test, a
    registry missing an input or a lookback would drop the same runs from both sides and
    compare identical."""
    ref = load_config(PACKAGED_ROUTES, with_relations=False).registry
    inverses = {n: r.base for n, r in ref.relations.items() if r.inverse}
    types = {n: (r.from_type, r.to_type) for n, r in ref.relations.items()}
    daily = {n for n, r in ref.relations.items() if r.every_day and not r.inverse}
    rel = InMemoryRelations(
        relation_rows(day.season), inverses=inverses, types=types, every_day=daily
    )
    return run_date_level(replace(day, registry=ref, relations=rel), cost=cost)


@dataclass
class DemoResult:
    season: Season
    comparison: Comparison
    single: SingleUpdate
    routes: Path
    cost: CostModel
    loop: LoopComparison | None = None  # demo --faults: the closed loop under faults

    def to_json(self) -> dict[str, Any]:
        out = self._json()
        if self.loop is not None:
            out["closed_loop"] = self.loop.to_json()
        return out

    def _json(self) -> dict[str, Any]:
        c = self.comparison
        m = c.minimum
        return {
            "seed": c.seed,
            "game_date": c.game_date.isoformat(),
            "events": c.events,
            "outputs_identical": c.outputs_identical,
            "missed_updates": c.missed_updates,
            "date_level": c.date_level.to_json(),
            "routed": c.routed.to_json(),
            "work_ratio": round(c.work_ratio, 2),
            "single_update": {
                "date_level_s": round(self.single.date_level_s, 1),
                "routed_s": round(self.single.routed_s, 1),
                "date_level_all_s": round(self.single.date_level_all_s, 1),
                "routed_all_s": round(self.single.routed_all_s, 1),
                "slowest_processor": self.single.routed_slowest,
                "date_level_slowest_processor": self.single.date_level_slowest,
            },
            "minimum_entity_rows": m.rows(),
            "minimum_entity_rows_entity_processors": m.rows(entity_processors_only=True),
            "minimum_entity_rows_end_of_day": m.rows(per_day=True),
            "routed_vs_minimum": round(c.routed_vs_minimum, 2),
            "routed_vs_minimum_entity_processors": round(c.routed_vs_minimum_entity_processors, 2),
            "routed_vs_end_of_day_minimum": round(c.routed_vs_day_minimum, 2),
            "date_level_dag_entity_rows": m.dag_date_level_rows,
            "work_ratio_vs_date_level_dag": round(c.work_ratio_vs_dag_date_level, 2),
            "by_processor": {
                name: {
                    "granularity": BY_NAME[name].granularity,
                    "date_level_runs": c.date_level.by_processor.get(name, [0, 0])[0],
                    "date_level_rows": c.date_level.by_processor.get(name, [0, 0])[1],
                    "routed_runs": c.routed.by_processor.get(name, [0, 0])[0],
                    "routed_rows": c.routed.by_processor.get(name, [0, 0])[1],
                    "minimum_rows": m.per_update.get(name, 0),
                    "minimum_rows_end_of_day": m.per_day.get(name, 0),
                }
                for name in ORDER
            },
        }

    def stream(self) -> list[dict[str, Any]]:
        """The day's Phase 2 messages, in time order, as the loaders publish them: what both
        runs route first (``demo --export-events``; replay it with ``scoperouter replay``).
        Each update is applied to a copy of the overnight warehouse, so it announces exactly
        what it changed; an update that changes nothing publishes nothing."""
        day = self.comparison.day
        wh = day.overnight.copy()
        out: list[dict[str, Any]] = []
        for upd in sorted(day.updates, key=lambda u: u.at):  # stable: the simulation's order
            msg = apply_update(wh, upd, day.game_date)
            if msg is not None:
                out.append(msg)
        return out

    def text(self) -> str:
        c, s = self.comparison, self.season
        games = len(s.games_on(s.game_date))
        d, r, m = c.date_level, c.routed, c.minimum
        date_rows = m.rows() - m.rows(entity_processors_only=True)
        r_date_rows = r.entity_rows - r.entity_processor_rows()
        lines = [
            f"scoperouter demo: seed {c.seed}, game day {c.game_date} "
            f"({len(s.rosters)} teams, {len(s.player_team)} players, {games} games today)",
            f"registry: {self.routes}",
            f"{c.events} Phase 2 updates (injury reports, stat corrections, line moves, props, "
            "a legacy date-level message, a critical pre-tip burst)",
            "",
            f"{'':24s}{'runs':>8s}{'entity rows':>14s}{'simulated':>12s}",
            f"{'date level (today)':24s}{d.processor_runs:8d}{d.entity_rows:14,d}{_dur(d.simulated_seconds):>12s}",
            f"{'routed':24s}{r.processor_runs:8d}{r.entity_rows:14,d}{_dur(r.simulated_seconds):>12s}",
            "",
            f"work ratio: {c.work_ratio:.1f}x less work routed",
            f"  vs an orchestrator running the date-level DAG once per update "
            f"({m.dag_date_level_rows:,d} rows): {c.work_ratio_vs_dag_date_level:.1f}x",
            f"routed work vs the minimum: {c.routed_vs_minimum:.2f}x "
            f"({r.entity_rows:,d} / {m.rows():,d} rows)",
            "  minimum: the output rows that really changed after each update (full recompute);",
            "  a date-granularity processor counts its whole date per update that changed it",
            f"  ({date_rows:,d} of the {m.rows():,d} rows; routed: {r_date_rows:,d})",
            f"  entity-granularity processors only: {c.routed_vs_minimum_entity_processors:.2f}x "
            f"({r.entity_processor_rows():,d} / {m.rows(entity_processors_only=True):,d})",
            f"  end-of-day bound (each changed row once; needs every update held until night): "
            f"{c.routed_vs_day_minimum:.2f}x ({m.rows(per_day=True):,d} rows)",
            f"outputs identical: {'yes' if c.outputs_identical else 'NO'} "
            f"(missed updates: {c.missed_updates})",
            f"one critical injury update ({self.single.player}), date level -> routed:",
            f"  reaches every phase (3-6): {self.single.date_level_s:.1f} s -> "
            f"{self.single.routed_s:.1f} s; every consumer done ({_slowest(self.single)}): "
            f"{self.single.date_level_all_s:.1f} s -> {self.single.routed_all_s:.1f} s",
            f"cost model: {self.cost.overhead_s:g} s per run + {self.cost.seconds_per_row:.4f} s "
            "per entity row (450 players = 30 s)",
        ]
        if self.loop is not None:
            lines += ["", *self.loop.text()]
        return "\n".join(lines)

    def _loop_html(self) -> str:
        """The closed loop's table (demo --faults), as preformatted text."""
        if self.loop is None:
            return ""
        return f"<h2>Closed loop: faults, re-runs, barriers</h2><pre>{_loop_rows(self.loop)}</pre>"

    def html(self) -> str:
        c = self.comparison
        j = self.to_json()
        rows = []
        peak = max([1] + [v[1] for v in c.date_level.by_processor.values()])
        for name in ORDER:
            dl = c.date_level.by_processor.get(name, [0, 0])
            ro = c.routed.by_processor.get(name, [0, 0])
            gran = BY_NAME[name].granularity
            rows.append(
                f"<tr><td>{html.escape(name)}</td><td>{BY_NAME[name].phase}</td><td>{gran}</td>"
                f"<td>{dl[0]}</td><td>{dl[1]:,}</td><td>{ro[0]}</td><td>{ro[1]:,}</td>"
                f'<td><div class="bar dl" style="width:{200 * dl[1] / peak:.1f}px"></div>'
                f'<div class="bar ro" style="width:{max(1.0, 200 * ro[1] / peak):.1f}px"></div></td></tr>'
            )
        ok = "identical" if c.outputs_identical else f"DIFFERENT ({c.missed_updates} rows)"
        return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>scoperouter demo {c.game_date}</title>
<style>
body{{font-family:system-ui,sans-serif;margin:2rem;max-width:62rem;color:#222}}
table{{border-collapse:collapse}}td,th{{padding:.25rem .6rem;border-bottom:1px solid #ddd;text-align:right}}
td:first-child,th:first-child{{text-align:left}}.bar{{height:.45rem;margin:1px 0}}
.dl{{background:#c0392b}}.ro{{background:#27ae60}}.kpi{{display:flex;gap:2rem;margin:1rem 0}}
.kpi div{{background:#f4f4f4;padding:.8rem 1.2rem;border-radius:.4rem}}.kpi b{{font-size:1.6rem;display:block}}
</style></head><body>
<h1>scoperouter demo: game day {c.game_date} (seed {c.seed})</h1>
<p>{c.events} Phase 2 updates replayed twice: <b>date level</b> (every message re-runs every
consumer for the whole date) and <b>routed</b> (planner + coalescing windows, entity scope,
sender-side change detection). Final warehouses: <b>{ok}</b>.</p>
<div class="kpi">
<div><b>{j["work_ratio"]}x</b>less work</div>
<div><b>{c.date_level.entity_rows:,} &rarr; {c.routed.entity_rows:,}</b>entity rows</div>
<div><b>{_dur(c.date_level.simulated_seconds)} &rarr; {_dur(c.routed.simulated_seconds)}</b>simulated processing</div>
<div><b>{j["single_update"]["date_level_s"]} s &rarr; {j["single_update"]["routed_s"]} s</b>one injury reaches phases 3-6</div>
<div><b>{j["single_update"]["date_level_all_s"]} s &rarr; {j["single_update"]["routed_all_s"]} s</b>every consumer done</div>
</div>
<table><tr><th>processor</th><th>phase</th><th>granularity</th><th>runs (date)</th>
<th>rows (date)</th><th>runs (routed)</th><th>rows (routed)</th><th>rows</th></tr>
{"".join(rows)}
</table>
<p>Routed work is {c.routed_vs_minimum:.2f}x the minimum ({c.minimum.rows():,} entity rows:
after each update, a full recompute finds the output rows that really changed; a
date-granularity processor counts its whole date for each update that changed it);
{c.routed_vs_minimum_entity_processors:.2f}x over entity-granularity processors only (the
date-granularity processors are {c.minimum.rows() - c.minimum.rows(entity_processors_only=True):,}
of the minimum's rows);
{c.routed_vs_day_minimum:.2f}x the end-of-day bound ({c.minimum.rows(per_day=True):,} rows, each
changed row once a day: only reachable by holding every update until night).
Against an orchestrator that runs the date-level DAG once per update
({c.minimum.dag_date_level_rows:,} rows) routing does {c.work_ratio_vs_dag_date_level:.1f}x less work.</p>
{self._loop_html()}
<pre>{html.escape(_json_dump(j))}</pre>
</body></html>
"""


def _loop_rows(loop: LoopComparison) -> str:
    return "\n".join(html.escape(line) for line in loop.text())


def _slowest(single: SingleUpdate) -> str:
    """The routed run's last processor to rewrite the player's row, for the text summary."""
    name = single.routed_slowest
    if not name:
        return "no processor rewrote the row"
    if BY_NAME[name].granularity == "date":
        return f"incl. date-level {name}"
    return f"slowest: {name}"


def _json_dump(obj: object) -> str:
    import json

    return json.dumps(obj, indent=2)


def _dur(seconds: float) -> str:
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    return f"{s // 3600}h {s % 3600 // 60:02d}m"


def demo_config(
    seed: int, game_date: date, routes: Path, season: Season | None = None
) -> tuple[CompiledRegistry, InMemoryRelations]:
    """The registry and relation data the demo of ``seed`` / ``game_date`` runs with under
    ``routes`` (``report`` rebuilds them for a demo's log, :func:`demo_log_info`):
    ``routes``' own relation data for the default day under a registry other than the
    packaged one (e.g. the repository's routes.yaml and data/relations), else the season's
    (``season``: already generated)."""
    if seed == DEFAULT_SEED and game_date == DEFAULT_GAME_DATE and routes != PACKAGED_ROUTES:
        cfg = load_config(routes)
        return cfg.registry, cfg.relations
    registry = load_config(routes, with_relations=False).registry
    season = season or generate_season(seed, game_date)
    with tempfile.TemporaryDirectory(prefix="scoperouter-demo-") as tmp:
        write_relations(season, Path(tmp))
        return registry, relations_from_dir(registry, Path(tmp))


def run_demo(
    seed: int = DEFAULT_SEED,
    game_date: date = DEFAULT_GAME_DATE,
    *,
    routes: Path | None = None,
    cost: CostModel | None = None,
    log: ExecutionLog | None = None,
    faults: bool = False,
) -> DemoResult:
    routes = routes or default_routes()
    cost = cost or CostModel()
    season = generate_season(seed, game_date)
    registry, relations = demo_config(seed, game_date, routes, season)
    day = prepare(season, registry, relations)
    comparison = compare(day, cost=cost, log=log, baseline=reference_baseline(day, cost))
    loop = compare_loop(day, comparison.date_wh) if faults else None
    return DemoResult(season, comparison, single_update(day, cost), routes, cost, loop)

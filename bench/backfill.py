"""Backfill benchmark (issue 15): planning time of a full season, scheduler overhead, and
the dry-run estimate against the work a reference backfill then does.

    python bench/backfill.py [--repeat 5] [--skip-reference]

* **plan**: ``plan_backfill`` for a whole season (170 dates x the 14 processors of the
  repository's routes.yaml) with the season's relation data (occurrence lookbacks read
  30 teams' and 450 players' game dates). Target: < 2 s (median of ``--repeat``).
* **schedule**: handing out and completing every run of that plan through the scheduler
  (instant runs, random completion order): the bookkeeping cost of a season.
* **estimate** (reference pipeline, in-process): a warm-up backfill of 3 dates records
  completions (rows, measured seconds); the cost model fitted from them estimates a
  10-date Phase 3-6 backfill, which then runs; printed: estimated vs actual entity rows and
  processing seconds (acceptance: within 20 %).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from scoperouter.backfill.estimate import estimate
from scoperouter.backfill.plan import Request, plan_backfill
from scoperouter.backfill.runner import open_backfill, run_backfill
from scoperouter.backfill.schedule import Scheduler
from scoperouter.backfill.store import BackfillStore
from scoperouter.examples.nba.backfill_executor import ReferenceExecutor
from scoperouter.examples.nba.demo import relations_from_dir
from scoperouter.examples.nba.league import Game
from scoperouter.examples.nba.processors import build_all, new_warehouse
from scoperouter.examples.nba.season import (
    Season,
    generate_season,
    relation_rows,
    write_relations,
)
from scoperouter.execution_log.reader import CompletionRow, LogData
from scoperouter.processor_registry.loader import load_config

REPO = Path(__file__).resolve().parent.parent
START = date(2025, 10, 21)
DAYS = 170


def _season_relations(tmp: Path) -> Any:
    """Relation data of a 170-day season (schedule only: no raw tables are generated)."""
    small = generate_season(2025, START + timedelta(days=2), season_start=START)
    rng = random.Random(7)
    teams = sorted(small.rosters)
    games: list[Game] = []
    for i in range(DAYS):
        day = START + timedelta(days=i)
        rng.shuffle(teams)
        games += [
            Game(f"g{i:03d}{k:02d}", day, teams[2 * k], teams[2 * k + 1])
            for k in range(rng.randint(10, 15))
        ]
    season = Season(2025, START + timedelta(days=DAYS - 1), START, START + timedelta(days=DAYS - 1),
                    small.rosters, small.player_team, tuple(games))  # fmt: skip
    assert relation_rows(season)["player_games"]
    write_relations(season, tmp / "rel")
    registry = load_config(REPO / "routes.yaml", with_relations=False).registry
    return registry, relations_from_dir(registry, tmp / "rel")


def bench_plan(tmp: Path, repeat: int) -> dict[str, Any]:
    registry, relations = _season_relations(tmp)
    end = START + timedelta(days=DAYS - 1)
    req = Request(START, end)
    times = []
    plan = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        plan = plan_backfill(registry, req, as_of=end, relations=relations)
        times.append(time.perf_counter() - t0)
    assert plan is not None
    t0 = time.perf_counter()
    sched = Scheduler(plan, {}, max_running=16)
    rng = random.Random(1)
    running: list[int] = []
    while not sched.finished:
        running += sched.take(0.0)
        sched.complete(running.pop(rng.randrange(len(running))))
    sched_s = time.perf_counter() - t0
    return {
        "dates": DAYS,
        "processors": len(plan.processors),
        "runs": len(plan.runs),
        "dependency_intervals": sum(len(r.deps) for r in plan.runs),
        "plan_s_median": round(statistics.median(times), 4),
        "plan_s_max": round(max(times), 4),
        "plan_target_s": 2.0,
        "plan_ok": statistics.median(times) < 2.0,
        "schedule_all_runs_s": round(sched_s, 4),
    }


def bench_estimate(tmp: Path) -> dict[str, Any]:
    last = date(2025, 11, 8)
    registry = load_config(REPO / "routes.yaml", with_relations=False).registry
    season = generate_season(2025, last, season_start=START)
    write_relations(season, tmp / "rel2")
    relations = relations_from_dir(registry, tmp / "rel2")
    wh = new_warehouse(season.rosters)
    wh.load_season(season)
    build_all(wh, season.dates())

    def go(req: Request, name: str) -> list[tuple[str, date, int, float]]:
        plan = plan_backfill(registry, req, as_of=last, relations=relations)
        store = BackfillStore(tmp / f"{name}.sqlite")
        bid, plan, _resumed = open_backfill(store, name, lambda: plan, 0.0)
        asyncio.run(run_backfill(store, bid, plan, ReferenceExecutor(wh), {}, max_running=1))
        out = [(r.processor, r.day, r.rows or 0, r.seconds or 0.0) for r in store.runs(bid)]
        store.close()
        return out

    warm = go(Request(START, START + timedelta(days=2), phases=(3, 6)), "warm")
    log = LogData(
        (), (), tuple(CompletionRow(p, d, None, n, None, s, None) for p, d, n, s in warm), ()
    )
    req = Request(date(2025, 10, 24), date(2025, 11, 2), phases=(3, 6))
    est = estimate(
        plan_backfill(registry, req, as_of=last, relations=relations), registry, log, relations
    )
    done = go(req, "real")
    rows = sum(n for _p, _d, n, _s in done)
    secs = sum(s for _p, _d, _n, s in done)
    return {
        "runs": len(done),
        "estimated_rows": est.rows,
        "actual_rows": rows,
        "rows_error_pct": round(100 * (est.rows - rows) / rows, 1),
        "estimated_seconds": round(est.hours * 3600, 2),
        "actual_seconds": round(secs, 2),
        "seconds_error_pct": round(100 * (est.hours * 3600 - secs) / secs, 1),
        "range_only_runs": est.to_json()["range_only"]["runs"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--skip-reference", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        out: dict[str, Any] = {"plan": bench_plan(Path(d), args.repeat)}
        if not args.skip_reference:
            out["estimate"] = bench_estimate(Path(d))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()

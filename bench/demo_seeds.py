"""Benchmark: the demo's work figures over several seeds (full seasons).

    python bench/demo_seeds.py [--seeds 2025 7 1 2 3 4 5] [--json]

For each seed: the game day run date level and routed, the ground-truth minimum (a full
recompute after every update, see ``scoperouter.examples.nba.minimum.MinimumWork``), and the ratios the
demo prints: work ratio (date-level rows / routed rows), the same against a date-level DAG
run once per update, routed / minimum (all processors and
entity-granularity processors only) and routed / end-of-day bound. About 30 s of CPU per
seed.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from scoperouter.examples.nba.demo import PACKAGED_ROUTES, relations_from_dir
from scoperouter.examples.nba.harness import compare, prepare
from scoperouter.examples.nba.season import DEFAULT_GAME_DATE, generate_season, write_relations
from scoperouter.processor_registry.loader import load_config


def one(seed: int) -> dict[str, object]:
    registry = load_config(PACKAGED_ROUTES, with_relations=False).registry
    season = generate_season(seed, DEFAULT_GAME_DATE)
    with tempfile.TemporaryDirectory(prefix="scoperouter-bench-") as tmp:
        write_relations(season, Path(tmp))
        relations = relations_from_dir(registry, Path(tmp))
    t0 = time.perf_counter()
    c = compare(prepare(season, registry, relations))
    m = c.minimum
    return {
        "seed": seed,
        "outputs_identical": c.outputs_identical,
        "work_ratio": round(c.work_ratio, 2),
        "work_ratio_vs_date_level_dag": round(c.work_ratio_vs_dag_date_level, 2),
        "routed_rows": c.routed.entity_rows,
        "minimum_rows": m.rows(),
        "routed_vs_minimum": round(c.routed_vs_minimum, 3),
        "routed_vs_minimum_entity_processors": round(c.routed_vs_minimum_entity_processors, 3),
        "routed_vs_end_of_day_minimum": round(c.routed_vs_day_minimum, 3),
        "seconds": round(time.perf_counter() - t0, 1),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[2025, 7, 1, 2, 3, 4, 5])
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    rows = [one(s) for s in args.seeds]
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(
            f"{'seed':>6} {'same':>5} {'work':>7} {'vs dag':>7} {'vs min':>7} {'entity':>7} {'vs day':>7} {'s':>5}"
        )
        for r in rows:
            print(
                f"{r['seed']:>6} {r['outputs_identical']!s:>5} {r['work_ratio']:>7} "
                f"{r['work_ratio_vs_date_level_dag']:>7} "
                f"{r['routed_vs_minimum']:>7} {r['routed_vs_minimum_entity_processors']:>7} "
                f"{r['routed_vs_end_of_day_minimum']:>7} {r['seconds']:>5}"
            )
        worst = max(float(str(r["routed_vs_minimum"])) for r in rows)
        print(f"worst routed/minimum: {worst:.3f} (acceptance: <= 1.5)")
        ent = [(float(str(r["routed_vs_minimum_entity_processors"])), r["seed"]) for r in rows]
        over = [str(seed) for v, seed in ent if v > 1.5]
        print(
            f"entity-granularity processors alone: worst {max(ent)[0]:.3f}; "
            f"over 1.5 on seeds: {', '.join(over) or 'none'}"
        )
    return 0 if all(r["outputs_identical"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark (issue 12, acceptance 5): lineage of the whole reference pipeline in under 5 s.

    python bench/lineage.py [--repeat 5]

Each run is what `scoperouter lineage` does on the repository's routes.yaml: load the
registry, parse every processor's SQL (src/scoperouter/examples/nba/sql, 14 files) with
sqlglot and diff the reads against the registry. Prints the wall time of each run (the
first includes importing sqlglot), the median and the budget.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BUDGET_S = 5.0


def one() -> tuple[float, int, int]:
    t0 = time.perf_counter()
    from scoperouter.lineage.analyse import analyse_code
    from scoperouter.processor_registry.loader import load_config

    reg = load_config(REPO / "routes.yaml", with_relations=False).registry
    a = analyse_code(reg, REPO)
    return time.perf_counter() - t0, len(a.analysed), a.errors


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args(argv)
    times = []
    for i in range(args.repeat):
        s, n, errors = one()
        times.append(s)
        print(f"run {i + 1}: {s:.3f} s ({n} processors, {errors} errors)")
    worst = max(times)
    print(f"median {statistics.median(times):.3f} s, worst {worst:.3f} s (budget {BUDGET_S:.0f} s)")
    return 0 if worst < BUDGET_S else 1


if __name__ == "__main__":
    sys.exit(main())

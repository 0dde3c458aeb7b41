"""Benchmark: the CPU seconds of ``scoperouter demo`` (the README's "Demo" figure).

    python bench/demo_cpu.py [--runs 3] [--json] [--limit 60]

Runs ``python -m scoperouter demo --no-log`` as a fresh process in an empty directory (the
packaged registry, the default game day), ``--runs`` times, and prints the CPU seconds
(user + system) of each run, with the same process's bare interpreter start
(``python -c pass``) measured in the same run as the floor, and the 1-minute load average.
Target: under a minute of CPU on an idle machine (``--limit``: exit 1 over it). The test
suite runs the demo and checks its figures, but asserts no CPU or wall time: a slower
machine (or a busy one) failed the suite's former "< 60 s of CPU" check, with the demo's
figures unchanged; this script is where the figure comes from.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile


def cpu_of(cmd: list[str], cwd: str) -> float:
    """User + system CPU seconds of one child process run to its end."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(cmd, cwd=cwd, capture_output=True, timeout=1800, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--limit", type=float, default=60.0, help="CPU seconds per run")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    demo, bare, loads = [], [], []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="demo-cpu-") as d:
            loads.append(os.getloadavg()[0])
            bare.append(cpu_of([sys.executable, "-c", "pass"], d))
            demo.append(cpu_of([sys.executable, "-m", "scoperouter", "demo", "--no-log"], d))
            loads.append(os.getloadavg()[0])
    out = {
        "demo_cpu_s": [round(x, 2) for x in demo],
        "median_s": round(statistics.median(demo), 2),
        "bare_interpreter_s": round(statistics.median(bare), 3),
        "load_1min": [min(loads), max(loads)],
    }
    if args.json:
        print(json.dumps(out))
    else:
        print(
            f"scoperouter demo: {out['median_s']} s of CPU (median of {args.runs}: "
            f"{', '.join(f'{x:.1f}' for x in demo)}); bare interpreter {out['bare_interpreter_s']} s; "
            f"load {min(loads):.2f}-{max(loads):.2f}"
        )
    return 1 if max(demo) > args.limit else 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark: ``scoperouter validate`` on every broken registry of the test corpus.

    python bench/validate.py [--json] [--limit 1.0]

Runs ``python -m scoperouter.cli validate FILE`` as a fresh process (interpreter start-up
and imports included) for each ``tests/registry/broken/*.yaml`` and prints the wall time
of each, the slowest first. Target: every file is rejected in under a second (the alias
bomb and the deep nesting included). The test suite checks the same files for their
positioned error, memory limit and a generous budget, but asserts no wall clock: this
script is where the "under a second" figure comes from. Exit 1 when a file is over
``--limit`` (measure on an idle machine).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BROKEN = REPO / "tests" / "registry" / "broken"


def time_one(path: Path) -> tuple[float, int]:
    """Wall seconds and exit code of one ``validate`` process."""
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "scoperouter.cli", "validate", path.name],
        cwd=path.parent,
        capture_output=True,
        timeout=120,
        check=False,
    )
    return time.perf_counter() - start, proc.returncode


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--json", action="store_true", help="one JSON object")
    ap.add_argument("--limit", type=float, default=1.0, help="seconds per file (default 1.0)")
    args = ap.parse_args(argv)
    results = {p.name: time_one(p) for p in sorted(BROKEN.glob("*.yaml"))}
    slow = sorted(results.items(), key=lambda kv: -kv[1][0])
    over = [name for name, (s, _) in slow if s >= args.limit]
    if args.json:
        print(json.dumps({n: {"seconds": round(s, 3), "rc": rc} for n, (s, rc) in slow}))
    else:
        for name, (s, rc) in slow:
            print(f"{s:6.2f} s  rc={rc}  {name}")
        print(
            f"{len(results)} files, slowest {slow[0][1][0]:.2f} s, {len(over)} over {args.limit} s"
        )
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())

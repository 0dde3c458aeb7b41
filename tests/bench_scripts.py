"""Loading a ``bench/`` script in a test: the benchmarks are scripts, not a package, and
each test that checks one (its figures, its report, its exit code) loads it the same way.
(Not ``bench_support``: that is ``bench/bench_support.py``, which the scripts import.)"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parents[1] / "bench"


def bench_module(name: str) -> Any:
    """``bench/<name>.py`` loaded as a module of its own (a fresh one per call)."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod

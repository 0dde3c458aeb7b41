"""One short game day through the closed-loop comparison (picklable, for a process pool),
and the default suite's seeds computed once for both of their modules (the date-level run,
the costliest part, shared by tests/nba/test_nba_equivalence.py's comparison and
tests/nba/test_nba_closed_loop.py's; the ``fast_seeds`` fixture, tests/nba/conftest.py)."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

from nba_support import registry, seed_summary, short_day

from scoperouter.examples.nba.harness import (
    Comparison,
    GameDay,
    ModeStats,
    compare,
    run_date_level,
)
from scoperouter.examples.nba.loop_demo import compare_loop
from scoperouter.examples.nba.warehouse import Warehouse


def check_loop_seed(seed: int) -> dict[str, Any]:
    """Date level (the reference, no faults) and every closed-loop mode of one seed."""
    day = short_day(seed)
    return loop_summary(day, run_date_level(day))


def loop_summary(day: GameDay, baseline: tuple[ModeStats, Warehouse]) -> dict[str, Any]:
    """check_loop_seed's result for ``day`` and its date-level run (the reference)."""
    dstats, reference = baseline
    out = compare_loop(day, reference).to_json()
    out["seed"] = day.season.seed
    out["date_rows"] = dstats.entity_rows
    return out


def check_fast_seed(seed: int) -> dict[str, dict[str, Any]]:
    """check_seed's and check_loop_seed's results for one seed, from one date-level run."""
    day = short_day(seed)
    baseline = run_date_level(day)
    return {
        "equivalence": seed_summary(compare(day, baseline=baseline)),
        "loop": loop_summary(day, baseline),
    }


FAST_SEEDS = (0, 1)  # the default suite's seasons (the other 18 are the `slow` set)
LOCAL_SEED = 1  # the season computed in this process: the equivalence teeth's game day


@dataclass(frozen=True)
class LocalSeed:
    """LOCAL_SEED's game day, its date-level run and its routed comparison (read only: tests
    derive variants with ``dataclasses.replace``; every run copies the overnight warehouse)."""

    day: GameDay
    baseline: tuple[ModeStats, Warehouse]
    good: Comparison


def local_seed() -> LocalSeed:
    day = short_day(LOCAL_SEED, registry())
    baseline = run_date_level(day)
    return LocalSeed(day, baseline, compare(day, baseline=baseline))


def local_summaries(local: LocalSeed) -> dict[str, dict[str, Any]]:
    """check_fast_seed(LOCAL_SEED), from the day and runs already made."""
    return {
        "equivalence": seed_summary(local.good),
        "loop": loop_summary(local.day, local.baseline),
    }


def spawn_pool() -> ProcessPoolExecutor:
    """A worker of its own for the other fast seeds (spawned: no state shared with us)."""
    others = len(FAST_SEEDS) - 1
    return ProcessPoolExecutor(max_workers=others, mp_context=multiprocessing.get_context("spawn"))

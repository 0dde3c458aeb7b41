"""Every test here runs the reference pipeline (seasons, warehouses, whole game days), so
each gets an explicit budget sized for a loaded 2-core machine, unless it sets its own:
under `stress-ng --cpu 4` (with other jobs on the same two cores) set-ups of 20-25 s and
runs of 35-200 s were measured where the idle machine needs 1-15 s.

The default suite's two seasons are computed once per run for the two modules that check
them (``fast_seeds``, nba_loop_support.py; shared by the pytest-xdist workers through a
file): one in a spawned worker, the other in this process at the same time, its day and
date-level run also the equivalence teeth's (``fast_local_seed``, which alone does not
wait for the worker)."""

from __future__ import annotations

from typing import Any

import pytest
from nba_loop_support import (
    FAST_SEEDS,
    LOCAL_SEED,
    LocalSeed,
    check_fast_seed,
    local_seed,
    local_summaries,
    spawn_pool,
)

from run_once import computed_once

NBA_BUDGET_S = 600
Summaries = dict[str, dict[str, Any]]  # check_fast_seed's: "equivalence", "loop"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = __file__.rsplit("/", 1)[0]
    for item in items:
        if str(item.path).startswith(here) and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(NBA_BUDGET_S))


@pytest.fixture(scope="session")
def fast_local_seed() -> LocalSeed:
    """LOCAL_SEED's game day, date-level run and routed comparison (the equivalence teeth)."""
    return local_seed()


@pytest.fixture(scope="session")
def fast_seeds(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> dict[int, Summaries]:
    """Every fast seed's check_fast_seed summaries, computed once per run, not once per
    xdist worker (test_nba_equivalence.py and test_nba_closed_loop.py may run on different
    workers: tests/run_once.py). Computing: the other seeds in a spawned worker, started
    first so they run while this process computes LOCAL_SEED (``fast_local_seed``)."""
    return computed_once(tmp_path_factory, "nba-fast-seeds", lambda: _compute_fast_seeds(request))


def _compute_fast_seeds(request: pytest.FixtureRequest) -> dict[int, Summaries]:
    with spawn_pool() as pool:
        futures = {s: pool.submit(check_fast_seed, s) for s in FAST_SEEDS if s != LOCAL_SEED}
        local = local_summaries(request.getfixturevalue("fast_local_seed"))
        results = {s: f.result() for s, f in futures.items()}
    results[LOCAL_SEED] = local
    return results

"""Every test here runs the reference pipeline (seasons, warehouses, whole game days), so
each gets an explicit budget sized for a loaded 2-core machine, unless it sets its own:
under `stress-ng --cpu 4` (with other jobs on the same two cores) set-ups of 20-25 s and
runs of 35-200 s were measured where the idle machine needs 1-15 s.

The default suite's two seasons are computed once per session for the two modules that
check them (``fast_seeds``, nba_loop_support.py): one in a spawned worker, the other in
this process at the same time, its day and date-level run also the equivalence teeth's
(``fast_local_seed``, which alone does not wait for the worker)."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
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

NBA_BUDGET_S = 600
Summaries = dict[str, dict[str, Any]]  # check_fast_seed's: "equivalence", "loop"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = __file__.rsplit("/", 1)[0]
    for item in items:
        if str(item.path).startswith(here) and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(NBA_BUDGET_S))


@pytest.fixture(scope="session")
def fast_seed_workers() -> Iterator[tuple[ProcessPoolExecutor, dict[int, Future[Summaries]]]]:
    """The fast seeds other than LOCAL_SEED, started in a spawned worker."""
    with spawn_pool() as pool:
        yield pool, {s: pool.submit(check_fast_seed, s) for s in FAST_SEEDS if s != LOCAL_SEED}


@pytest.fixture(scope="session")
def fast_local_seed() -> LocalSeed:
    """LOCAL_SEED's game day, date-level run and routed comparison (the equivalence teeth)."""
    return local_seed()


@pytest.fixture(scope="session")
def fast_seeds(
    fast_seed_workers: tuple[ProcessPoolExecutor, dict[int, Future[Summaries]]],
    fast_local_seed: LocalSeed,
) -> dict[int, Summaries]:
    """Every fast seed's check_fast_seed summaries: the workers' (started first, so they run
    while this process computes LOCAL_SEED) and LOCAL_SEED's. The worker ends here."""
    pool, futures = fast_seed_workers
    local = local_summaries(fast_local_seed)
    results = {s: f.result() for s, f in futures.items()}
    pool.shutdown()
    results[LOCAL_SEED] = local
    return results

"""Every test here runs the reference pipeline (seasons, warehouses, whole game days), so
each gets an explicit budget sized for a loaded 2-core machine, unless it sets its own:
under `stress-ng --cpu 4` (with other jobs on the same two cores) set-ups of 20-25 s and
runs of 35-200 s were measured where the idle machine needs 1-15 s.

The default suite's two seasons are computed once per session for the two modules that
check them (``fast_seeds``, nba_loop_support.py): one in a spawned worker, the other in
this process at the same time, so that its day and date-level run serve the equivalence
teeth too."""

from __future__ import annotations

import pytest
from nba_loop_support import FastSeeds, compute_fast_seeds

NBA_BUDGET_S = 600


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = __file__.rsplit("/", 1)[0]
    for item in items:
        if str(item.path).startswith(here) and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(NBA_BUDGET_S))


@pytest.fixture(scope="session")
def fast_seeds() -> FastSeeds:
    """The default suite's seasons (nba_loop_support.FAST_SEEDS), computed once."""
    return compute_fast_seeds()

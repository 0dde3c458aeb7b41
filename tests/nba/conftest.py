"""Every test here runs the reference pipeline (seasons, warehouses, whole game days), so
each gets an explicit budget sized for a loaded 2-core machine, unless it sets its own:
under `stress-ng --cpu 4` (with other jobs on the same two cores) set-ups of 20-25 s and
runs of 35-200 s were measured where the idle machine needs 1-15 s."""

from __future__ import annotations

import pytest

NBA_BUDGET_S = 600


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = __file__.rsplit("/", 1)[0]
    for item in items:
        if str(item.path).startswith(here) and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(NBA_BUDGET_S))

"""Every state store fires a window a stepped-back wall clock left ahead of ``now`` at once,
and moves a window's opening back by the step when a decision joins it at a time before
its last one (the rules of the routing engine: tests/planner/test_engine_clock_step.py)."""

from __future__ import annotations

import pytest
from state_support import StoreFactory, batch, contrib

from clock_step_cases import CASES, T


@pytest.mark.parametrize(("case", "steps", "want"), CASES, ids=[c[0] for c in CASES])
def test_a_clock_step_fires_stored_windows_on_time(
    make_store: StoreFactory, case: str, steps: list[tuple[float, str]], want: int
) -> None:
    """The first window fires at the expected step (ingest, then fire_due, at each clock)."""
    s = make_store()
    got = None
    for i, (now, kind) in enumerate(steps):
        fired = list(s.ingest(batch(contrib(f"e{i}")), now).fired) if kind == "event" else []
        fired += s.fire_due(now)
        if fired:
            got = i
            break
    assert got == want


def test_a_window_ahead_found_by_a_store_opened_afterwards(make_store: StoreFactory) -> None:
    """A store opened on windows written with a clock a day ahead fires them at its first fire_due."""
    s = make_store()
    s.ingest(batch(contrib("e1")), T + 86400.0)
    s.close()  # (a restart: the SQLite store is one process's)
    s2 = make_store(owner="b")
    assert [i.trigger.caused_by for i in s2.fire_due(T + 15.0)] == [("e1",)]
    assert s2.open_window_count() == 0

"""Every state store fires a window a stepped-back wall clock left ahead of ``now`` at once,
and moves a window's opening back by the step when a decision joins it at a time before
its last one (the rules of the routing engine: tests/planner/test_engine_clock_step.py)."""

from __future__ import annotations

import pytest
from state_support import StoreFactory, batch, contrib

T = 1_763_560_000.0
FED = [(T, "event")] + [(T - 50.0 + 5.0 * i, "event") for i in range(1, 30)]

# (case, steps as (clock, event | tick), index of the step the first window fires at);
# windows: quiet 10 s, max_wait 60 s
CASES = [
    ("opened_a_day_ahead", [(T + 86400.0, "event"), (T + 15.0, "tick"), (T + 70.0, "tick")], 1),
    ("stepped_back_while_fed", FED, 13),
    ("stepped_back_within_slack", [(T, "event"), (T - 30.0, "tick"), (T + 10.0, "tick")], 2),
    ("opened_ahead_then_fed", [(T + 3600.0, "event"), (T, "event"), (T + 100.0, "tick")], 1),
]


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

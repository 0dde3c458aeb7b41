"""The wall-clock steps both the in-memory engine (tests/planner/test_engine_clock_step.py)
and the SQLite / PostgreSQL stores (tests/state/test_store_clock_step.py) must fire windows
through: one table, so the two implementations answer the same cases. Windows: quiet 10 s,
max_wait 60 s; the rules are router/window_state.py's (is_due, reopened_at)."""

from __future__ import annotations

T = 1_763_560_000.0
FED = [(T, "event")] + [(T - 50.0 + 5.0 * i, "event") for i in range(1, 30)]
SKEWED = [(T + i - (2.0 if i % 2 else 0.0), "event") for i in range(90)]

# (case, steps as (clock, event | tick), index of the step the first window fires at)
CASES = [
    # opened while the clock was a day ahead, then corrected: due at the first tick
    ("opened_a_day_ahead", [(T + 86400.0, "event"), (T + 15.0, "tick"), (T + 70.0, "tick")], 1),
    # stepped back 50 s (within the slack) while fed every 5 s: no step to the window, whose
    # max_wait counts on the clock as it reads (step 22: T + 60 s), delayed by the 50 s
    ("stepped_back_while_fed", FED, 22),
    # two replicas' clocks 2 s apart feeding one window every second, alternately: no
    # step either -- max_wait holds from the opening (step 60: T + 60 s), never earlier
    ("replicas_2s_apart", SKEWED, 60),
    # stepped back 30 s (within the slack): the window keeps its deadline
    ("stepped_back_within_slack", [(T, "event"), (T - 30.0, "tick"), (T + 10.0, "tick")], 2),
    # opened an hour ahead, then fed at the corrected time: the old window fires first
    ("opened_ahead_then_fed", [(T + 3600.0, "event"), (T, "event"), (T + 100.0, "tick")], 1),
]

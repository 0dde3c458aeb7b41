"""A wall clock stepped back (NTP) neither stalls a window nor stretches its ``max_wait``:
the engine (and its book) fires a window whose last decision lies more than
``CLOCK_SLACK_S`` ahead of ``now`` at once, and a decision joining a window at a time
before its last one moves the window's opening back by the step."""

from __future__ import annotations

import pytest
from planner_support import D, registry_from

from scoperouter.messages.models import Event
from scoperouter.router.decisions import Decision
from scoperouter.router.engine import RoutingEngine

REG = registry_from(
    {
        "version": 1,
        "entities": {"player": {}},
        "defaults": {"max_entities": 100, "window": {"quiet": "10s", "max_wait": "60s"}},
        "processors": {"p": {"phase": 3, "granularity": "player", "inputs": [{"source": "raw.a"}]}},
    }
)
DEC = Decision(
    processor="p", action="run", scope="entities", entity_type="player",
    entity_ids=("a",), dates=(D,), reason="entity_scope",
)  # fmt: skip
T = 1_763_560_000.0
FED = [(T, "event")] + [(T - 50.0 + 5.0 * i, "event") for i in range(1, 30)]

# (case, steps as (clock, event | tick), index of the step the first window fires at)
CASES = [
    # opened while the clock was a day ahead, then corrected: due at the first tick
    ("opened_a_day_ahead", [(T + 86400.0, "event"), (T + 15.0, "tick"), (T + 70.0, "tick")], 1),
    # stepped back 50 s (within the slack) while fed every 5 s: max_wait (60 s) still holds
    # from the first decision after the step (step 13: 65 s after the opening event)
    ("stepped_back_while_fed", FED, 13),
    # stepped back 30 s (within the slack): the window keeps its deadline
    ("stepped_back_within_slack", [(T, "event"), (T - 30.0, "tick"), (T + 10.0, "tick")], 2),
    # opened an hour ahead, then fed at the corrected time: the old window fires first
    ("opened_ahead_then_fed", [(T + 3600.0, "event"), (T, "event"), (T + 100.0, "tick")], 1),
]


def first_fire(steps: list[tuple[float, str]]) -> int | None:
    engine = RoutingEngine(REG)
    for i, (now, kind) in enumerate(steps):
        if kind == "event":
            fired = engine.accept(Event(event_id=f"e{i}", source="raw.a", game_date=D), [DEC], now)
        else:
            fired = engine.tick(now)
        if fired:
            return i
    return None


@pytest.mark.parametrize(("case", "steps", "want"), CASES, ids=[c[0] for c in CASES])
def test_a_clock_step_fires_windows_on_time(
    case: str, steps: list[tuple[float, str]], want: int
) -> None:
    """The first window fires at the expected step whatever the clock did meanwhile."""
    assert first_fire(steps) == want


@pytest.mark.parametrize(
    ("ahead", "want_now"), [(86400.0, True), (3600.0, True), (30.0, False), (0.0, False)]
)
def test_next_deadline_is_now_for_a_window_ahead_of_the_clock(ahead: float, want_now: bool) -> None:
    """A timer asking at ``now`` is told to fire now when a window lies past the slack ahead."""
    engine = RoutingEngine(REG)
    engine.accept(Event(event_id="e", source="raw.a", game_date=D), [DEC], T + ahead)
    got = engine.next_deadline(T)
    assert (got == T) == want_now
    assert engine.next_deadline() == T + ahead + 10.0  # without a now: the deadline

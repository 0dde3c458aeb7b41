"""A wall clock stepped back (NTP) neither stalls a window nor stretches its ``max_wait``:
the engine (and its book) fires a window whose last decision lies more than
``CLOCK_SLACK_S`` ahead of ``now`` at once, and a decision joining a window at a time
before its last one moves the window's opening back by the step."""

from __future__ import annotations

import pytest
from planner_support import D, registry_from

from clock_step_cases import CASES, T
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

"""A restart under a changed registry recomputes the closed loop's timers from it: open
triggers' completion deadlines and backoffs, held windows' barrier deadlines."""

from __future__ import annotations

from typing import Any

import pytest
from closed_loop_support import AS_OF, REL, D, done, event, registry

from scoperouter.router.engine import RoutingEngine


def _u1_open(**defaults: Any) -> RoutingEngine:
    """raw.a -> u1 fires at 10 s and never completes (its run is stuck)."""
    e = RoutingEngine(registry(None, **defaults), loop=True)
    e.receive(event("e1", "raw.a", "x"), REL, AS_OF, 0.0)
    assert [f.trigger.processor for f in e.tick(10.0)] == ["u1"]
    return e


def _entry(e: RoutingEngine, processor: str) -> Any:
    assert e.loop is not None
    (got,) = [x for x in e.loop.ledger.entries() if x.trigger.processor == processor]
    return got


@pytest.mark.parametrize(
    ("before", "after", "due"),
    [
        ({}, {"completion_timeout": "10m"}, 610.0),
        ({"completion_timeout": "1h"}, {"completion_timeout": "10m"}, 610.0),
        ({"completion_timeout": "10m"}, {"completion_timeout": "1h"}, 3610.0),
        ({"completion_timeout": "10m"}, {}, None),
    ],
    ids=["added", "shortened", "lengthened", "removed"],
)
def test_dispatched_deadline_follows_the_current_completion_timeout(
    before: dict[str, Any], after: dict[str, Any], due: float | None
) -> None:
    """A dispatched trigger is due its dispatch + the current completion_timeout (none: none)."""
    e = _u1_open(run_retries=1, **before).under(registry(None, run_retries=1, **after), loop=True)
    assert _entry(e, "u1").due_at == due
    assert e.loop is not None and e.loop.ledger.next_deadline() == due
    if due is not None:  # it times out at its new deadline (and backs off to re-run)
        e.tick(due)
        assert _entry(e, "u1")[1:3] == ("backoff", 1)
        assert _entry(e, "u1").outcome == "timed_out"


@pytest.mark.parametrize(
    ("before", "after", "due"),
    [("10m", "5s", 25.0), ("5s", "10m", 620.0)],
    ids=["shortened", "lengthened"],
)
def test_backoff_follows_the_current_retry_backoff(before: str, after: str, due: float) -> None:
    """A trigger backing off after a failure is re-sent its failure + the current backoff."""
    e = _u1_open(run_retries=1, retry_backoff=before)
    u1 = _entry(e, "u1").trigger
    e.complete(done(u1, "failed"), 20.0)
    e = e.under(registry(None, run_retries=1, retry_backoff=after), loop=True)
    assert _entry(e, "u1").phase == "backoff"
    assert _entry(e, "u1").due_at == due
    assert ("u1", 2) in [(f.trigger.processor, f.attempt) for f in e.tick(due)]


def _p_held(barrier: dict[str, Any]) -> RoutingEngine:
    """p's window held at 22 s while u2 (never completing) has open work."""
    e = RoutingEngine(registry(barrier), loop=True)
    e.receive(event("e1", "raw.a", "x"), REL, AS_OF, 0.0)
    e.tick(10.0)
    e.receive(event("c1", "an.u1", "x"), REL, AS_OF, 12.0)
    assert "p" not in [f.trigger.processor for f in e.tick(22.0)]
    assert e.loop is not None and ("p", D) in e.loop.barrier.held
    return e


@pytest.mark.parametrize(
    ("before", "after", "deadline"),
    [
        ({}, {"timeout": "1h"}, 3622.0),
        ({"timeout": "1d"}, {"timeout": "1h"}, 3622.0),
        ({"timeout": "1h"}, {"timeout": "1d"}, 86422.0),
        ({"timeout": "1h"}, {}, None),
    ],
    ids=["added", "shortened", "lengthened", "removed"],
)
def test_held_deadline_follows_the_current_barrier_timeout(
    before: dict[str, Any], after: dict[str, Any], deadline: float | None
) -> None:
    """A held window's deadline is its hold time + the current barrier.timeout."""
    e = _p_held(before).under(registry(after), loop=True)
    assert e.loop is not None
    assert e.loop.barrier.held[("p", D)].deadline == deadline
    if deadline is not None:  # on_timeout: run lets it go at its new deadline
        assert "p" in [f.trigger.processor for f in e.tick(deadline)]


def test_same_registry_restores_the_same_timers() -> None:
    """Restored under the registry that wrote it, every timer is what it was."""
    e = _p_held({"timeout": "1h"})
    e.complete(done(_entry(e, "u1").trigger, "failed"), 30.0)
    r = RoutingEngine.restore(e.registry, e.snapshot(), loop=True)
    assert r.loop is not None and e.loop is not None
    assert r.loop.ledger.entries() == e.loop.ledger.entries()
    assert r.loop.barrier.held == e.loop.barrier.held

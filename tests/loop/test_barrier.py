"""The fan-in barrier: its table (and the docs that print it), classify, and the engine
holding a downstream trigger until its upstreams complete."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from closed_loop_support import AS_OF, REL, done, event, registry

from scoperouter.processor_registry.model_loop import BarrierSpec
from scoperouter.router.barrier import Held, classify, transition_table_markdown
from scoperouter.router.engine import Fired, RoutingEngine
from scoperouter.router.window_state import WindowParams, open_window

ROOT = Path(__file__).resolve().parents[2]
W = open_window("p", AS_OF, 0.0, WindowParams(10, 60, 100, "player"))


def test_docs_print_the_table() -> None:
    """docs/ledger.md embeds the barrier's transition table exactly."""
    assert transition_table_markdown() in (ROOT / "docs" / "ledger.md").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("spec", "held", "busy", "now", "expected"),
    [
        ({}, None, set(), 0, "clear"),
        ({}, None, {"u1"}, 0, "busy"),
        ({"timeout": "10s"}, (0.0, 10.0, {"u1"}), {"u1"}, 5, "busy"),
        ({"timeout": "10s"}, (0.0, 10.0, {"u1"}), {"u1"}, 10, "timeout_run"),
        ({"timeout": "10s", "on_timeout": "hold"}, (0.0, 10.0, {"u1"}), {"u1"}, 10, "timeout_hold"),
        (
            {"timeout": "10s", "min_complete": {"critical": ["u1"]}},
            (0.0, 10.0, {"u1", "u2"}),
            {"u1"},
            10,
            "timeout_short",
        ),
        (
            {"timeout": "10s", "min_complete": {"critical": ["u1"], "share": 0.5}},
            (0.0, 10.0, {"u1", "u2"}),
            {"u2"},
            10,
            "timeout_run",
        ),
        (
            {"timeout": "10s", "min_complete": {"share": 1.0}},
            (0.0, 10.0, {"u1", "u2"}),
            {"u2"},
            10,
            "timeout_short",
        ),
        ({"timeout": "10s"}, (0.0, 10.0, {"u1"}), set(), 10, "clear"),
    ],
)
def test_classify(
    spec: dict[str, Any],
    held: tuple[float, float, set[str]] | None,
    busy: set[str],
    now: float,
    expected: str,
) -> None:
    """Busy upstreams, timeouts, on_timeout and min_complete pick the table input."""
    h = None if held is None else Held(W, held[0], held[1], frozenset(held[2]))
    assert classify(BarrierSpec.model_validate(spec), h, frozenset(busy), now) == expected


def _names(fired: list[Fired]) -> list[str]:
    return sorted(f.trigger.processor for f in fired)


def wave(barrier: dict[str, Any] | None) -> tuple[RoutingEngine, list[Fired]]:
    """raw.a -> u1 (10 s quiet) and u2 (30 s quiet); u1 completes, p's window comes due
    while u2 is still open; then u2 completes."""
    e = RoutingEngine(registry(barrier), loop=True)
    sent = e.receive(event("e1", "raw.a", "x"), REL, AS_OF, 0.0).fired
    sent += e.tick(10.0)  # u1 fires
    (u1,) = [f for f in sent if f.trigger.processor == "u1"]
    sent += e.receive(event("c1", "an.u1", "x"), REL, AS_OF, 12.0).fired
    e.complete(done(u1.trigger), 12.0)
    sent += e.tick(22.0)  # p due (quiet 10 s); u2 still has an open window
    sent += e.tick(30.0)  # u2 fires
    (u2,) = [f for f in sent if f.trigger.processor == "u2"]
    sent += e.receive(event("c2", "an.u2", "x"), REL, AS_OF, 35.0).fired
    e.complete(done(u2.trigger), 35.0)
    sent += e.tick(35.0)
    sent += e.drain()
    return e, sent


def test_without_barrier_p_runs_twice_once_on_half_updated_inputs() -> None:
    """No barrier: p runs at 22 s while u2 is open (half-updated), and again after u2."""
    _e, sent = wave(None)
    ps = [f for f in sent if f.trigger.processor == "p"]
    assert len(ps) == 2
    assert ps[0].upstream_busy == ("u2",)


def test_barrier_holds_p_until_u2_completes() -> None:
    """Barrier: p is held at 22 s, absorbs u2's decision and runs once, at 45 s (its quiet
    after u2's completion), on fully updated inputs."""
    _e, sent = wave({})
    ps = [f for f in sent if f.trigger.processor == "p"]
    assert len(ps) == 1
    assert ps[0].upstream_busy == ()
    assert ps[0].held_s > 0
    assert set(ps[0].trigger.caused_by) == {"c1", "c2"}


def test_barrier_timeout_run_lets_it_go() -> None:
    """A barrier timeout with on_timeout: run sends the held trigger although u2 is busy."""
    e = RoutingEngine(registry({"timeout": "5s"}), loop=True)
    e.receive(event("e1", "raw.a", "x"), REL, AS_OF, 0.0)
    e.tick(10.0)
    e.receive(event("c1", "an.u1", "x"), REL, AS_OF, 12.0)
    assert "p" not in _names(e.tick(22.0))
    got = e.tick(27.0)
    assert _names(got) == ["p"] and got[0].upstream_busy == ("u1", "u2")


def test_engine_snapshot_keeps_ledger_and_held_windows() -> None:
    """A restart from the engine's snapshot keeps open triggers, held windows and deadlines."""
    e = RoutingEngine(registry({"timeout": "1h"}, completion_timeout="10m"), loop=True)
    e.receive(event("e1", "raw.a", "x"), REL, AS_OF, 0.0)
    e.tick(10.0)
    e.receive(event("c1", "an.u1", "x"), REL, AS_OF, 12.0)
    e.tick(22.0)
    assert e.loop is not None and e.loop.barrier.held
    r = RoutingEngine.restore(e.registry, e.snapshot(), loop=True)
    assert r.loop is not None
    assert r.loop.barrier.held == e.loop.barrier.held
    assert r.loop.ledger.entries() == e.loop.ledger.entries()
    assert r.next_deadline() == e.next_deadline()
    assert _names(r.drain()) == _names(e.drain())


def _u2_completion_lost(**defaults: Any) -> list[Fired]:
    """The wave above, but u2's completion never arrives (its run crashed without a report,
    or the message was rejected before the ledger saw it); the clock then runs for 30 days
    (every timer the engine asks for, then one tick at the end; no drain, which would flush)."""
    e = RoutingEngine(registry({}, **defaults), loop=True)
    sent = e.receive(event("e1", "raw.a", "x"), REL, AS_OF, 0.0).fired
    sent += e.tick(10.0)
    (u1,) = [f for f in sent if f.trigger.processor == "u1"]
    sent += e.receive(event("c1", "an.u1", "x"), REL, AS_OF, 12.0).fired
    e.complete(done(u1.trigger), 12.0)
    sent += e.tick(22.0)
    sent += e.tick(30.0)  # u2 fires; nothing ever names it again
    now = 30.0
    for _ in range(100):
        d = e.next_deadline()
        if d is None or d > 30 * 86400:
            break
        now = max(now, d)
        sent += e.tick(now)
    return sent + e.tick(30 * 86400.0)


@pytest.mark.parametrize(
    ("defaults", "p_runs"),
    [({}, 0), ({"completion_timeout": "10m"}, 1)],
    ids=["no-completion-timeout", "completion-timeout"],
)
def test_lost_upstream_completion_holds_a_barrier_without_timeout(
    defaults: dict[str, Any], p_runs: int
) -> None:
    """A barrier with no timeout and an upstream with no completion_timeout: one lost
    completion holds p for good (validate: barrier_may_wait_forever); with one, u2 times out,
    is re-dispatched, dead-letters, and p runs."""
    sent = _u2_completion_lost(**defaults)
    # attempt 1 only: with a completion_timeout p's own run (never completed here) re-runs
    assert [(f.trigger.processor, f.attempt) for f in sent].count(("p", 1)) == p_runs

"""Window coverage through the routing engine against a brute-force oracle: every
(processor, date, entity type, id) a run decision asked for leaves in a fired trigger.

Extends ``test_planner_properties.test_windows_never_lose_work`` (the bare window book)
to what the daemon runs: :class:`RoutingEngine` with and without the closed loop (a
barrier holds and re-merges windows), snapshots restored at any point, and a restart
under a registry that changed the processor's granularity (windows opened under the old
one stay open). The oracle is the list of decisions itself: a trigger covers a decision's
work on a date when it names the event and is date scope, or is entity scope of the
decision's entity type with every one of its ids (over-covering is allowed, narrowing
never).
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from planner_support import D, registry_from

from scoperouter.messages.models import Event, Trigger
from scoperouter.processor_registry.compiled import CompiledRegistry
from scoperouter.router.decisions import Decision
from scoperouter.router.engine import RoutingEngine

DATES = (D, D + timedelta(days=1), D + timedelta(days=2))
IDS = {"player": ("ann", "bob", "cid", "dan", "eve"), "team": ("LAL", "BOS", "NYK")}


def _registry(p_granularity: str, loop: bool) -> CompiledRegistry:
    """u (phase 3) publishes an.u, which p (phase 4, ``p_granularity``) reads; with
    ``loop`` p waits at a barrier for u's work on its date."""
    p: dict[str, Any] = {
        "phase": 4,
        "granularity": p_granularity,
        "inputs": [{"source": "an.u"}],
        "max_entities": 3,
        "window": {"quiet": "10s", "max_wait": "40s"},
    }
    if loop:
        p["barrier"] = {"timeout": "1m"}
    return registry_from(
        {
            "version": 1,
            "entities": {"player": {}, "team": {}},
            "processors": {
                "u": {
                    "phase": 3,
                    "granularity": "player",
                    "inputs": [{"source": "raw.a"}],
                    "publishes": "an.u",
                    "max_entities": 4,
                    "window": {"quiet": "0s", "max_wait": "5s"},
                },
                "p": p,
            },
        }
    )


REGS = {(g, loop): _registry(g, loop) for g in ("player", "team") for loop in (False, True)}


@st.composite
def _step(draw: st.DrawFn) -> tuple[str, str, tuple[date, ...], bool, bool, tuple[str, ...], float]:
    """(action, processor, dates, critical, date scope, ids drawn by index, time step)."""
    action = draw(st.sampled_from(("event",) * 4 + ("tick", "snapshot", "restart", "restart")))
    proc = draw(st.sampled_from(("p", "p", "u")))
    dates = tuple(sorted(draw(st.sets(st.sampled_from(DATES), min_size=1, max_size=3))))
    critical = draw(st.integers(0, 5)) == 0
    date_scope = draw(st.integers(0, 5)) == 0
    picks = tuple(draw(st.lists(st.integers(0, 4), min_size=1, max_size=2)))
    step = draw(st.sampled_from((0.0, 0.0, 1.0, 4.0, 9.0, 11.0, 30.0, 61.0)))
    return action, proc, dates, critical, date_scope, tuple(map(str, picks)), step


def _decision(
    reg: CompiledRegistry, proc: str, dates: tuple[date, ...], date_scope: bool, picks: Any
) -> Decision:
    """What the planner decides under ``reg``: ids of the processor's granularity."""
    etype = reg.processors[proc].granularity
    if date_scope:
        return Decision(
            processor=proc, action="run", scope="date", entity_type=None, entity_ids=None,
            dates=dates, reason="empty_mapping",
        )  # fmt: skip
    pool = IDS[etype]
    ids = tuple(sorted({pool[int(i) % len(pool)] for i in picks}))
    return Decision(
        processor=proc, action="run", scope="entities", entity_type=etype, entity_ids=ids,
        dates=dates, reason="entity_scope",
    )  # fmt: skip


def _covers(t: Trigger, ev: Event, d: Decision, day: date) -> bool:
    if (t.processor, t.game_date) != (d.processor, day) or ev.event_id not in t.caused_by:
        return False
    if t.scope == "date":
        return True
    return (
        d.scope == "entities"
        and t.entity_type == d.entity_type
        and set(d.entity_ids or ()) <= set(t.entity_ids or ())
    )


@settings(max_examples=250, deadline=None, derandomize=True)
@given(st.booleans(), st.sampled_from(("player", "team")), st.lists(_step(), max_size=25))
def test_fired_triggers_cover_every_decision(loop: bool, first: str, steps: list[Any]) -> None:
    """Every id, entity type and date a run decision asked for is in a trigger naming its event."""
    gran = first
    engine = RoutingEngine(REGS[(gran, loop)], loop=loop)
    fired: list[Trigger] = []
    wanted: list[tuple[Event, Decision]] = []
    now = 0.0
    for n, (action, proc, dates, critical, date_scope, picks, step) in enumerate(steps):
        now += step
        if action == "tick":
            fired += [f.trigger for f in engine.tick(now)]
        elif action == "snapshot":
            snap = json.loads(json.dumps(engine.snapshot()))
            engine = RoutingEngine.restore(engine.registry, snap, loop=loop)
        elif action == "restart":  # a new routes.yaml: p's granularity changed
            gran = "team" if gran == "player" else "player"
            engine = engine.under(REGS[(gran, loop)], loop=loop)
        else:
            ev = Event(
                event_id=f"e{n:02d}",
                source="an.u" if proc == "p" else "raw.a",
                game_date=dates[0],
                priority="critical" if critical else "normal",
            )
            dec = _decision(engine.registry, proc, dates, date_scope, picks)
            wanted.append((ev, dec))
            fired += [f.trigger for f in engine.accept(ev, [dec], now)]
    fired += [f.trigger for f in engine.drain()]
    assert engine.open_count == 0
    assert engine.loop is None or not engine.loop.has_held
    for ev, dec in wanted:
        for day in dec.dates:
            assert any(_covers(t, ev, dec, day) for t in fired), (ev.event_id, dec, day)
    for t in fired:
        assert t.scope == "date" or len(t.entity_ids or ()) <= 4
        assert t.scope == "date" or {
            "player": set(IDS["player"]),
            "team": set(IDS["team"]),
        }[t.entity_type or ""] >= set(t.entity_ids or ())

"""The routing engine and its transition table: the code, the docs and the rules agree."""

from __future__ import annotations

import dataclasses
import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from planner_support import D, registry_from

from scoperouter.messages.models import Event
from scoperouter.router.decisions import Decision
from scoperouter.router.engine import RoutingEngine
from scoperouter.router.window_state import (
    TRANSITIONS,
    WindowParams,
    WindowState,
    classify,
    merge_decision,
    open_window,
    to_trigger,
    transition_table_markdown,
    window_from_json,
    window_to_json,
)
from scoperouter.router.windows import WindowBook

ROOT = Path(__file__).resolve().parents[2]
REG = registry_from(
    {
        "version": 1,
        "entities": {"player": {}, "team": {}},
        "defaults": {"max_entities": 3, "window": {"quiet": "10s", "max_wait": "60s"}},
        "processors": {
            "p": {"phase": 3, "granularity": "player", "inputs": [{"source": "raw.a"}]},
        },
    }
)
PARAMS = WindowParams(quiet_s=10.0, max_wait_s=60.0, max_entities=3, entity_type="player")


def ev(eid: str, priority: str = "normal", corr: str | None = None) -> Event:
    return Event(event_id=eid, source="raw.a", game_date=D, priority=priority, correlation_id=corr)  # type: ignore[arg-type]


def run(
    *ids: str, proc: str = "p", etype: str = "player", dates: tuple[date, ...] = (D,)
) -> Decision:
    if not ids:
        return Decision(
            processor=proc,
            action="run",
            scope="date",
            entity_type=None,
            entity_ids=None,
            dates=dates,
            reason="empty_mapping",
        )
    return Decision(
        processor=proc,
        action="run",
        scope="entities",
        entity_type=etype,
        entity_ids=tuple(sorted(ids)),
        dates=dates,
        reason="entity_scope",
    )


def skip_with_dates() -> Decision:
    # a skip never carries dates in practice; one that does must still not enter a window
    return Decision.model_construct(
        processor="p",
        action="skip",
        scope=None,
        entity_type=None,
        entity_ids=None,
        dates=(D,),
        reason="irrelevant_fields",
    )


def window(phase: str) -> WindowState | None:
    if phase == "closed":
        return None
    w = open_window("p", D, 0.0, PARAMS)
    w, _ = merge_decision(w, ev("e0"), run("a") if phase == "entities" else run(), D, 0.0, PARAMS)
    assert w is not None and w.phase == phase
    return w


DECISION_FOR = {
    "skip": skip_with_dates,
    "entities": lambda: run("b"),
    "entities_past_max": lambda: run("b", "c", "d", "e"),
    "entities_other_type": lambda: run("LAL", etype="team"),
    "date": lambda: run(),
}


@pytest.mark.parametrize(
    ("key", "tr"), list(TRANSITIONS.items()), ids=[f"{p}-{i}" for p, i in TRANSITIONS]
)
def test_every_table_row_is_what_merge_does(key: tuple[str, str], tr: Any) -> None:
    """Each (window, input) row of TRANSITIONS is the transition merge_decision / the timers make."""
    phase, inp = key
    w = window(phase)
    if inp in DECISION_FOR:
        d = DECISION_FOR[inp]()
        if phase != "date":  # a full-date window absorbs any entity decision alike
            assert classify(w if w is not None else open_window("p", D, 5.0, PARAMS), d) == inp
        got, fire = merge_decision(w, ev("e1"), d, D, 5.0, PARAMS)
        assert not fire
        assert (got.phase if got is not None else "closed") == tr.next
        return
    assert w is not None and tr.next == "closed" and tr.effect == "fire"
    if inp == "critical":
        got, fire = merge_decision(w, ev("e1", "critical"), run("a"), D, 5.0, PARAMS)
        assert fire and got is not None and to_trigger(got).priority == "critical"
    elif inp in ("quiet_elapsed", "max_wait_elapsed"):
        book = WindowBook(REG)
        book.put(w)
        assert book.due(w.deadline - 0.001) == []
        assert len(book.due(w.deadline)) == 1 and book.open_count == 0
    else:
        book = WindowBook(REG)
        book.put(w)
        assert len(book.flush(0.0)) == 1


def test_docs_table_is_the_code_table() -> None:
    """docs/engine.md embeds exactly the table generated from TRANSITIONS."""
    text = (ROOT / "docs" / "engine.md").read_text(encoding="utf-8")
    start = text.index("-->", text.index("<!-- transitions:begin")) + 3
    end = text.index("<!-- transitions:end -->")
    assert text[start:end].strip() == transition_table_markdown()


def test_skip_decisions_never_enter_a_window() -> None:
    """A skip decision opens no window and changes no open window, even if it carries dates."""
    eng = RoutingEngine(REG)
    assert eng.apply(ev("s1", "critical"), [skip_with_dates()], 0.0) == []
    assert eng.open_count == 0
    eng.apply(ev("e1"), [run("a")], 0.0)
    eng.apply(ev("s2"), [skip_with_dates()], 5.0)
    eng.book.add(ev("s3"), skip_with_dates(), 6.0)  # the book's own rule, below the engine
    w = eng.book.get(("p", D))
    assert w is not None and merge_decision(w, ev("s4"), skip_with_dates(), D, 7.0, PARAMS) == (
        w,
        False,
    )
    [f] = eng.drain()
    assert f.trigger.caused_by == ("e1",) and f.at == 10.0


def test_window_entity_type_comes_from_the_decision() -> None:
    """The trigger's entity type is the decision's, also for a processor the registry no longer has."""
    book = WindowBook(REG)
    book.add(ev("e1"), run("LAL", proc="gone", etype="team"), 0.0)
    book.add(ev("e2"), run("BOS", etype="team"), 0.0)
    got = {t.processor: t.entity_type for t in book.flush(0.0)}
    assert got == {"gone": "team", "p": "team"}


@pytest.mark.parametrize(
    ("first", "second"),
    [(("player", "lebronjames"), ("team", "LAL")), (("team", "LAL"), ("player", "lebronjames"))],
)
def test_ids_of_another_entity_type_make_the_window_full_date(
    first: tuple[str, str], second: tuple[str, str]
) -> None:
    """A window holding ids of one type that gets ids of another (the granularity changed
    over a restart) fires at full date, never one type's ids labelled as the other's."""
    book = WindowBook(REG)
    book.add(ev("e1"), run(first[1], etype=first[0]), 0.0)
    book = WindowBook.restore(REG, json.loads(json.dumps(book.snapshot())))
    book.add(ev("e2"), run(second[1], etype=second[0]), 1.0)
    [t] = book.flush(2.0)
    assert (t.scope, t.entity_ids, t.entity_type) == ("date", None, None)
    assert (t.reason, t.caused_by) == ("unmapped_entity_type", ("e1", "e2"))


def test_restore_keeps_last_decision_time_and_priority() -> None:
    """A restored window keeps last_at (its quiet deadline) and a critical priority."""
    book = WindowBook(REG)
    book.add(ev("e1"), run("a"), 0.0)
    book.add(ev("e2"), run("b"), 7.0)
    assert book.next_deadline() == 17.0
    snap = json.loads(json.dumps(book.snapshot()))
    snap["windows"][0]["priority"] = "critical"
    copy = WindowBook.restore(REG, snap)
    assert copy.next_deadline() == 17.0
    assert copy.due(16.9) == []
    [t] = copy.due(17.0)
    assert t.priority == "critical" and t.entity_ids == ("a", "b")


def test_window_json_round_trip() -> None:
    """window_from_json inverts window_to_json for every field a store keeps."""
    w = open_window("p", D, 1.0, PARAMS)
    w, _ = merge_decision(w, ev("e1", corr="c1"), run("x", etype="team"), D, 4.0, PARAMS)
    assert w is not None
    w2 = w._replace(priority="critical")
    # params of no granularity (a processor no longer in the registry): the entity type
    # read back is the JSON's, and no granularity now turns the team ids to full date
    unknown = dataclasses.replace(PARAMS, entity_type="")
    for state in (w, w2):
        assert window_from_json(json.loads(json.dumps(window_to_json(state))), unknown) == state


def test_receive_fires_due_windows_before_the_event_joins() -> None:
    """An event at a window's deadline opens a new window; the due one fires first, at its deadline."""
    eng = RoutingEngine(REG)
    eng.apply(ev("e1"), [run("a")], 0.0)
    fired = eng.accept(ev("e2"), [run("b")], 10.0)
    assert [(f.trigger.caused_by, f.at) for f in fired] == [(("e1",), 10.0)]
    [f] = eng.drain()
    assert f.trigger.caused_by == ("e2",) and f.at == 20.0

"""The coalescing window state machine (SPEC section 2, Windows)."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

import pytest
from planner_support import D, registry_from

from scoperouter.messages.models import Event, Trigger
from scoperouter.router.decisions import Decision
from scoperouter.router.window_state import CAUSED_BY_CAP
from scoperouter.router.windows import WindowBook

REG = registry_from(
    {
        "version": 1,
        "entities": {"player": {}},
        "defaults": {"max_entities": 3, "window": {"quiet": "10s", "max_wait": "60s"}},
        "processors": {
            "p": {"phase": 3, "granularity": "player", "inputs": [{"source": "raw.a"}]},
            "q": {
                "phase": 3,
                "granularity": "player",
                "inputs": [{"source": "raw.a"}],
                "window": {"quiet": "0s", "max_wait": "0s"},
            },
        },
    }
)
D2 = D + timedelta(days=1)


def ev(eid: str, priority: str = "normal", corr: str | None = None) -> Event:
    return Event(event_id=eid, source="raw.a", game_date=D, priority=priority, correlation_id=corr)  # type: ignore[arg-type]


def ents(*ids: str, proc: str = "p", dates: tuple[date, ...] = (D,)) -> Decision:
    return Decision(
        processor=proc,
        action="run",
        scope="entities",
        entity_type="player",
        entity_ids=tuple(sorted(ids)),
        dates=dates,
        reason="entity_scope",
    )


def full(
    reason: Any = "no_entities_in_event", proc: str = "p", dates: tuple[date, ...] = (D,)
) -> Decision:
    return Decision(
        processor=proc,
        action="run",
        scope="date",
        entity_type=None,
        entity_ids=None,
        dates=dates,
        reason=reason,
    )


def summary(t: Any) -> tuple[Any, ...]:
    return (t.processor, t.game_date, t.scope, t.entity_ids, t.reason, t.caused_by)


def test_entities_union_and_quiet() -> None:
    """Entity decisions in one window unite and fire after quiet without new decisions."""
    book = WindowBook(REG)
    assert book.add(ev("e2"), ents("a"), 0.0) == []
    assert book.add(ev("e1"), ents("b", "a"), 5.0) == []
    assert book.next_deadline() == 15.0
    assert book.due(14.9) == []
    [t] = book.due(15.0)
    assert summary(t) == ("p", D, "entities", ("a", "b"), "entity_scope", ("e1", "e2"))
    assert (t.start_date, t.end_date, t.entity_type) == (D, D, "player")
    assert book.open_count == 0 and book.next_deadline() is None


def test_max_wait() -> None:
    """A window fed faster than quiet still fires max_wait after it opened."""
    book = WindowBook(REG)
    for i in range(7):
        book.add(ev(f"e{i}"), ents("a"), i * 9.0)
    assert book.next_deadline() == 60.0
    [t] = book.due(60.0)
    assert len(t.caused_by) == 7


@pytest.mark.parametrize(
    ("decisions", "scope", "ids", "reason"),
    [
        ([ents("a", "b"), ents("c")], "entities", ("a", "b", "c"), "entity_scope"),
        ([ents("a", "b"), ents("c", "d")], "date", None, "fallback_threshold"),
        ([ents("a"), full("empty_mapping"), ents("z")], "date", None, "empty_mapping"),
        ([full("unmapped_entity_type"), ents("a")], "date", None, "unmapped_entity_type"),
        (
            [full("fallback_threshold"), full("no_entities_in_event")],
            "date",
            None,
            "fallback_threshold",
        ),
    ],
    ids=["union", "union-past-threshold", "date-absorbs", "date-first", "first-date-reason"],
)
def test_merge(decisions: list[Decision], scope: str, ids: Any, reason: str) -> None:
    """Merging follows the contract: union, threshold, full date absorbs entity scopes."""
    book = WindowBook(REG)
    for i, dec in enumerate(decisions):
        book.add(ev(f"e{i}"), dec, float(i))
    [t] = book.flush(100.0)
    assert (t.scope, t.entity_ids, t.reason) == (scope, ids, reason)
    assert t.caused_by == tuple(sorted(f"e{i}" for i in range(len(decisions))))


def test_critical_fires_at_once() -> None:
    """A critical event fires its window at once, with what the window already held."""
    book = WindowBook(REG)
    book.add(ev("e1", corr="c1"), ents("a"), 0.0)
    book.add(ev("e0"), ents("x", dates=(D2,)), 0.0)
    [t] = book.add(ev("e2", "critical", corr="c2"), ents("b"), 1.0)
    assert summary(t) == ("p", D, "entities", ("a", "b"), "entity_scope", ("e1", "e2"))
    assert (t.priority, t.correlation_id) == ("critical", "c1")
    assert book.keys() == (("p", D2),)


def test_several_dates_and_processors() -> None:
    """A decision with several dates joins one window per date; processors do not mix."""
    book = WindowBook(REG)
    book.add(ev("e1"), ents("a", dates=(D, D2)), 0.0)
    book.add(ev("e2"), ents("b", proc="q"), 0.0)
    fired = book.due(0.0)
    assert [summary(t)[:4] for t in fired] == [("q", D, "entities", ("b",))]
    fired = book.due(10.0)
    assert sorted(summary(t)[:4] for t in fired) == [
        ("p", D, "entities", ("a",)),
        ("p", D2, "entities", ("a",)),
    ]


def test_skips_ignored() -> None:
    """Skip decisions open no window."""
    book = WindowBook(REG)
    skip = Decision(
        processor="p",
        action="skip",
        scope=None,
        entity_type=None,
        entity_ids=None,
        dates=(),
        reason="not_an_input",
    )
    assert book.add(ev("e1"), skip, 0.0) == []
    assert book.open_count == 0


def test_trigger_id_deterministic() -> None:
    """Same window content gives the same trigger id; different content a different one."""
    ids = []
    for extra in ("b", "b", "c"):
        book = WindowBook(REG)
        book.add(ev("e1"), ents("a", extra), 0.0)
        ids.append(book.flush(0.0)[0].trigger_id)
    assert ids[0] == ids[1] != ids[2]


def test_snapshot_restore_roundtrip() -> None:
    """A restored book holds the same windows, deadlines and fires the same triggers."""
    book = WindowBook(REG)
    book.add(ev("e1", corr="c"), ents("a"), 0.0)
    book.add(ev("e2"), full("empty_mapping", dates=(D2,)), 3.0)
    snap = json.loads(json.dumps(book.snapshot()))
    copy = WindowBook.restore(REG, snap)
    assert copy.open_count == 2 and copy.next_deadline() == book.next_deadline()
    assert [t.model_dump() for t in copy.due(1e9)] == [t.model_dump() for t in book.due(1e9)]


@pytest.mark.parametrize(
    "snap",
    [
        {},
        {"version": 99},
        {"version": 1, "windows": [{"processor": "p"}]},
        {"version": 1, "windows": [{"processor": "p", "date": "x", "opened_at": 0, "last_at": 0}]},
    ],
)
def test_restore_rejects_malformed(snap: dict[str, Any]) -> None:
    """A malformed snapshot raises ValueError instead of restoring half a book."""
    with pytest.raises(ValueError):
        WindowBook.restore(REG, snap)


@pytest.mark.parametrize("events", [1, CAUSED_BY_CAP, CAUSED_BY_CAP + 1, 3 * CAUSED_BY_CAP + 7])
def test_caused_by_is_capped_with_a_count_of_the_rest(events: int) -> None:
    """A hot window lists its first CAUSED_BY_CAP event ids and counts the rest (also after a
    snapshot); the wire trigger carries the count only when there is one."""
    book = WindowBook(REG)
    for i in range(events):
        book.add(ev(f"e{i:05d}"), ents("a"), float(i) / events)
    snap = json.loads(json.dumps(book.snapshot()))
    for b in (book, WindowBook.restore(REG, snap)):
        [t] = b.flush(1.0)
        assert t.caused_by == tuple(f"e{i:05d}" for i in range(min(events, CAUSED_BY_CAP)))
        assert t.caused_by_more == max(0, events - CAUSED_BY_CAP)
        assert ("caused_by_more" in t.wire()) == (events > CAUSED_BY_CAP)
        assert Trigger.model_validate(t.wire()) == t

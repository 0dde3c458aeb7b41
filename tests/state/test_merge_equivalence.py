"""The pure merge (``state.merge``) and every store give the triggers of the reference
``WindowBook`` for the same decisions at the same times (brute-force oracle), driven in the
routing engine's firing order: due windows fire, the event merges, due windows fire --
also with event ids delivered again (a dedup horizon shorter than the window) into a hot
window near ``CAUSED_BY_CAP``."""

from __future__ import annotations

import importlib
import random
import sys
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from state_support import StoreFactory

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "planner"))
from planner_support import registry_from

from scoperouter.messages.models import Event, Trigger
from scoperouter.router import window_state
from scoperouter.router.decisions import Decision
from scoperouter.router.window_state import CAUSED_BY_CAP, CLOCK_SLACK_S
from scoperouter.router.windows import WindowBook
from scoperouter.state.merge import apply, contributions, is_due, to_trigger
from scoperouter.state.model import Admission, IngestBatch, Retention, WindowKey, WindowState

merge_mod = importlib.import_module("scoperouter.state.merge")  # the package exports merge()

REG = registry_from(
    {
        "version": 1,
        "entities": {"player": {}, "team": {}},
        "defaults": {"max_entities": 3, "window": {"quiet": "10s", "max_wait": "60s"}},
        "processors": {
            "p": {"phase": 3, "granularity": "player", "inputs": [{"source": "raw.a"}]},
            "q": {
                "phase": 3,
                "granularity": "team",
                "inputs": [{"source": "raw.a"}],
                "window": {"quiet": "0s", "max_wait": "0s"},
            },
        },
    }
)
D = date(2025, 11, 19)
Step = tuple[float, str, str, tuple[str, ...] | None, tuple[date, ...], bool, int | None]
HOT = CAUSED_BY_CAP - 1  # a hot prefix: events into p's window, one event below the cap

steps = st.lists(
    st.tuples(
        # time advance; negative: the wall clock stepped back (within the slack or past it)
        st.sampled_from([0.0, 1.0, 5.0, 9.9, 10.0, 30.0, 61.0, -30.0, -3600.0]),
        st.sampled_from(["p", "p", "q"]),
        st.sampled_from(["player", "team"]),
        st.one_of(st.none(), st.lists(st.sampled_from("abcde"), min_size=1, max_size=3)),
        st.sampled_from([(D,), (D, D + timedelta(days=1))]),
        st.sampled_from([False, False, False, True]),  # critical
        # None: a new event id; k: the k-th id delivered so far again (past the dedup horizon)
        st.sampled_from([None, None, 0, 1, 2, HOT - 1]),
    ),
    max_size=25,
)


def _decision(
    proc: str, etype: str, ids: list[str] | tuple[str, ...] | None, dates: tuple[date, ...]
) -> Decision:
    if ids is None:
        return Decision(
            processor=proc,
            action="run",
            scope="date",
            entity_type=None,
            entity_ids=None,
            dates=dates,
            reason="no_entities_in_event",
        )
    return Decision(
        processor=proc,
        action="run",
        scope="entities",
        entity_type=etype,
        entity_ids=tuple(sorted(set(ids))),
        dates=dates,
        reason="entity_scope",
    )


def _hot_prefix() -> list[tuple[float, Event, Decision]]:
    """``HOT`` events into p's window for ``D`` at one time (ids after the steps' ``e...``)."""
    dec = _decision("p", "player", ("a",), (D,))
    return [
        (1000.0, Event(event_id=f"h{i:04d}", source="raw.a", game_date=D), dec) for i in range(HOT)
    ]


def _events(seq: list[tuple], hot: bool = False) -> list[tuple[float, Event, Decision]]:  # type: ignore[type-arg]
    now, out = 1000.0, _hot_prefix() if hot else []
    delivered = [ev.event_id for _, ev, _ in out]
    for i, (dt, proc, etype, ids, dates, critical, again) in enumerate(seq):
        now += dt
        eid = f"e{i:03d}" if again is None or not delivered else delivered[again % len(delivered)]
        delivered.append(eid)
        ev = Event(
            event_id=eid,
            source="raw.a",
            game_date=D,
            priority="critical" if critical else "normal",
            correlation_id=f"c{i % 3}",
        )
        out.append((now, ev, _decision(proc, etype, ids, dates)))
    return out


def _key(t: Trigger) -> str:
    """A trigger's whole content but its firing time."""
    return t.model_dump_json(exclude={"fired_at"})


def _book(events: list[tuple[float, Event, Decision]]) -> Counter[str]:
    book, fired = WindowBook(REG), Counter[str]()
    for now, ev, dec in events:
        fired.update(_key(t) for t in book.due(now))  # due windows fire before the event joins
        fired.update(_key(t) for t in book.add(ev, dec, now))
        fired.update(_key(t) for t in book.due(now))
    fired.update(_key(t) for t in book.flush(1e12))
    return fired


def _pure(events: list[tuple[float, Event, Decision]]) -> Counter[str]:
    open_: dict[WindowKey, WindowState] = {}
    fired = Counter[str]()
    for now, ev, dec in events:
        for c in contributions(REG, ev, [dec]):
            w, out = apply(open_.pop(c.key, None), [c], now)
            fired.update(_key(to_trigger(x)) for x in out)
            if w is not None:
                open_[c.key] = w
        for key in sorted(open_, key=lambda k: open_[k].deadline):
            if is_due(open_[key], now):
                fired[_key(to_trigger(open_.pop(key)))] += 1
    fired.update(_key(to_trigger(w)) for w in open_.values())
    return fired


@settings(max_examples=300, deadline=None)
@given(steps, st.booleans())
@example(
    [(0.0, "p", "player", ["a"], (D,), False, 0), (0.0, "p", "player", None, (D,), False, None)],
    True,
)
def test_pure_merge_matches_windowbook(seq: list[tuple], hot: bool) -> None:  # type: ignore[type-arg]
    """Same decisions, same times (ids delivered again too): the pure merge fires the WindowBook's triggers."""
    events = _events(seq, hot)
    assert _pure(events) == _book(events)


@settings(max_examples=200, deadline=None)
@given(steps)
def test_no_decision_joins_a_window_across_a_clock_step(seq: list[tuple]) -> None:  # type: ignore[type-arg]
    """In the engine's order (due windows fire first) no decision joins a window lying past CLOCK_SLACK_S ahead of the clock, in the book or the pure merge: reopened_at never moves opened_at back."""
    stepped: list[tuple[float, float, float]] = []
    real = window_state.reopened_at

    def spy(opened_at: float, last_at: float, now: float) -> float:
        if last_at - now > CLOCK_SLACK_S:
            stepped.append((opened_at, last_at, now))
        return real(opened_at, last_at, now)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(window_state, "reopened_at", spy)
        mp.setattr(merge_mod, "reopened_at", spy)
        events = _events(seq)
        _book(events)
        _pure(events)
    assert stepped == []


@pytest.mark.parametrize("seed", range(8))
def test_store_matches_windowbook(make_store: StoreFactory, seed: int) -> None:
    """A store fed event by event (then fire_due) fires the WindowBook's triggers, also
    with ids delivered again past the dedup horizon (odd seeds: after a hot prefix)."""
    rng = random.Random(seed)
    hot = seed % 2 == 1
    # hot: two kept ids delivered again, then two new ones (the cap reached, then passed)
    start = [(0.0, "p", "player", ["a"], (D,), False, k) for k in (0, HOT - 1, None, None)]
    events = _events((start if hot else []) + _random_steps(rng), hot)
    s = make_store()
    fired = Counter[str]()
    if hot:  # the prefix in one batch (PostgreSQL appends a batch's causes to the row in SQL)
        adm = tuple(Admission(e.event_id, contributions(REG, e, [d])) for _, e, d in events[:HOT])
        fired.update(_key(i.trigger) for i in s.ingest(IngestBatch(adm), 1000.0).fired)
    for now, ev, dec in events[HOT if hot else 0 :]:
        s.prune(Retention(seen_s=-1e9), now)  # every id seen so far is past the dedup horizon
        r = s.ingest(IngestBatch((Admission(ev.event_id, contributions(REG, ev, [dec])),)), now)
        fired.update(_key(i.trigger) for i in r.fired)
        fired.update(_key(i.trigger) for i in s.fire_due(now))
    fired.update(_key(i.trigger) for i in s.fire_due(1e7))
    assert fired == _book(events) and sum(fired.values()) > 0


def _random_steps(rng: random.Random) -> list[tuple]:  # type: ignore[type-arg]
    out = []
    for _ in range(40):
        ids = None if rng.random() < 0.15 else rng.sample("abcde", rng.randint(1, 2))
        out.append(
            (
                rng.choice([0.0, 1.0, 5.0, 10.0, 61.0, -30.0, -3600.0]),
                rng.choice("ppq"),
                rng.choice(["player", "team"]),
                ids,
                rng.choice([(D,), (D, D + timedelta(days=1))]),
                rng.random() < 0.1,
                None
                if rng.random() < 0.7
                else rng.choice([0, 1, 2, 7, HOT - 1, rng.randint(0, 99)]),
            )
        )
    return out


HOT_DAY = date(2025, 11, 19)


@pytest.mark.parametrize("order", ["ascending", "descending", "shuffled"])
def test_a_hot_window_fires_the_same_trigger_in_the_book_and_the_store(order: str) -> None:
    """Past the cap, the window book's trigger (replay) has the store's caused_by and trigger id."""
    reg = registry_from(
        {
            "version": 1,
            "entities": {"player": {}},
            "processors": {
                "p": {"phase": 3, "granularity": "player", "inputs": [{"source": "raw.a"}]}
            },
        }
    )
    dec = Decision(
        processor="p", action="run", scope="entities", entity_type="player",
        entity_ids=("a",), dates=(HOT_DAY,), reason="entity_scope",
    )  # fmt: skip
    ids = [f"e{i:05d}" for i in range(CAUSED_BY_CAP + 3)]
    if order == "descending":
        ids.reverse()
    elif order == "shuffled":
        random.Random(7).shuffle(ids)
    book, stored = WindowBook(reg), None
    for eid in ids:
        ev = Event(event_id=eid, source="raw.a", game_date=HOT_DAY)
        book.add(ev, dec, 0.0)
        stored, fired = apply(stored, contributions(reg, ev, [dec]), 0.0)
        assert not fired
    assert stored is not None
    [from_book] = book.flush(1e9)
    from_store = to_trigger(stored)
    assert from_book.caused_by == from_store.caused_by == tuple(sorted(ids)[:CAUSED_BY_CAP])
    assert from_book.caused_by_more == from_store.caused_by_more == 3
    assert from_book.trigger_id == from_store.trigger_id

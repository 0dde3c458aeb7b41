"""No update is lost in the state stores' windows, against a brute-force oracle: every
(event, processor, date, entity type, id) an accepted contribution asked for is in a fired
trigger that names the event (date scope, or entity scope of that type with that id).

Beyond ``test_merge_equivalence`` (the book and the stores agree on one registry), the
contributions here change under the windows: batches of several events, the window
parameters of each contribution drawn anew (a routes.yaml changed between two events:
``quiet``, ``max_wait``, ``max_entities``, granularity), critical events, fires between
batches, and a clock that may step back. The oracle is the contributions themselves.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from state_support import StoreFactory, batch, contrib

from scoperouter.messages.models import Trigger
from scoperouter.state.core import fold, split_admissions
from scoperouter.state.merge import to_trigger
from scoperouter.state.model import (
    Admission,
    Contribution,
    IngestBatch,
    WindowKey,
    WindowState,
)

D = date(2025, 11, 19)
DAYS = (D, D + timedelta(days=1))
IDS = {"player": ("ann", "bob", "cid", "dan"), "team": ("LAL", "BOS", "NYK")}
T0 = 1_700_000_000.0

# one step: ("ingest", dt, [event's contributions...]) or ("fire", dt)
_contrib = st.tuples(
    st.sampled_from(("p", "p", "q")),  # processor
    st.sampled_from(DAYS),
    st.sampled_from(("player", "player", "team")),  # the decision's entity type
    st.one_of(st.none(), st.lists(st.integers(0, 3), min_size=1, max_size=3)),  # ids | DATE
    st.sampled_from((0.0, 5.0, 10.0)),  # quiet
    st.sampled_from((0.0, 20.0, 60.0)),  # max_wait
    st.sampled_from((1, 2, 3)),  # max_entities
    st.sampled_from(("player", "team", "")),  # granularity (""': a removed processor)
)
_event = st.tuples(st.lists(_contrib, min_size=1, max_size=3), st.integers(0, 6))
_step: st.SearchStrategy[Any] = st.one_of(
    st.tuples(
        st.just("ingest"),
        st.sampled_from((0.0, 0.0, 1.0, 5.0, 10.0, 25.0, 61.0, -7.0)),
        st.lists(_event, min_size=1, max_size=3),
    ),
    st.tuples(st.just("fire"), st.sampled_from((0.0, 5.0, 10.0, 61.0, -3.0)), st.just([])),
)


def _admissions(n: int, events: list[Any]) -> list[Admission]:
    """Admissions of the drawn events (ids numbered from ``n``)."""
    out = []
    for k, (cs, crit) in enumerate(events):
        eid = f"e{n + k:03d}"
        seen: set[WindowKey] = set()
        got = []
        for proc, day, etype, picks, quiet, max_wait, max_entities, gran in cs:
            if (proc, day) in seen:  # one decision per processor and date
                continue
            seen.add((proc, day))
            pool = IDS[etype]
            ids = None if picks is None else tuple(sorted({pool[i % len(pool)] for i in picks}))
            got.append(
                Contribution(
                    proc,
                    day,
                    eid,
                    None,
                    crit == 0,
                    None if ids is None else etype,
                    ids,
                    "entity_scope" if ids is not None else "no_entities_in_event",
                    quiet,
                    max_wait,
                    max_entities,
                    gran,
                )
            )
        out.append(Admission(eid, tuple(got)))
    return out


def _covered(t: Trigger, c: Contribution) -> bool:
    if (t.processor, t.game_date) != c.key or c.event_id not in t.caused_by:
        return False
    if t.scope == "date":
        return True
    return (
        c.entity_ids is not None
        and t.entity_type == c.entity_type
        and set(c.entity_ids) <= set(t.entity_ids or ())
    )


def _check(wanted: list[Contribution], fired: list[Trigger]) -> None:
    for c in wanted:
        assert any(_covered(t, c) for t in fired), c
    for t in fired:  # traceable: every cause named contributed to that key
        keys = {c.event_id for c in wanted if c.key == (t.processor, t.game_date)}
        assert set(t.caused_by) <= keys, t


class _Pure:
    """The pure fold driven as a store drives it: windows in a dict, fire_due by deadline."""

    def __init__(self) -> None:
        self.open: dict[WindowKey, WindowState] = {}
        self.seen: set[str] = set()

    def ingest(self, admissions: list[Admission], now: float) -> list[Trigger]:
        new = {a.event_id for a in admissions} - self.seen
        self.seen |= new
        _acc, _dup, grouped = split_admissions(admissions, new)
        f = fold({k: self.open.get(k) for k in grouped}, grouped, now)
        for k in f.delete:
            self.open.pop(k, None)
        for w in f.write:
            self.open[w.key] = w
        return [to_trigger(w) for w in f.fired]

    def fire_due(self, now: float) -> list[Trigger]:
        due = sorted((w for w in self.open.values() if w.deadline <= now), key=lambda w: w.key)
        for w in due:
            del self.open[w.key]
        return [to_trigger(w) for w in due]


@settings(max_examples=400, deadline=None, derandomize=True)
@given(st.lists(_step, max_size=20))
def test_the_pure_fold_fires_every_contribution(steps: list[Any]) -> None:
    """Every id and date an accepted contribution asked for is in a fired trigger naming it."""
    s, now, n = _Pure(), T0, 0
    wanted: list[Contribution] = []
    fired: list[Trigger] = []
    for op, dt, events in steps:
        now += dt
        if op == "fire":
            fired += s.fire_due(now)
            continue
        adm = _admissions(n, events)
        n += len(adm)
        wanted += [c for a in adm for c in a.contributions]
        fired += s.ingest(adm, now)
    fired += s.fire_due(float("inf"))
    assert not s.open
    _check(wanted, fired)


def _random_steps(rng: random.Random) -> list[Any]:
    steps: list[Any] = []
    for _ in range(30):
        if rng.random() < 0.25:
            steps.append(("fire", rng.choice((0.0, 5.0, 10.0, 61.0, -3.0)), []))
            continue
        events = []
        for _e in range(rng.randint(1, 3)):
            cs = [
                (
                    rng.choice("ppq"),
                    rng.choice(DAYS),
                    rng.choice(("player", "player", "team")),
                    None if rng.random() < 0.15 else rng.sample(range(4), rng.randint(1, 3)),
                    rng.choice((0.0, 5.0, 10.0)),
                    rng.choice((0.0, 20.0, 60.0)),
                    rng.choice((1, 2, 3)),
                    rng.choice(("player", "team", "")),
                )
                for _c in range(rng.randint(1, 3))
            ]
            events.append((cs, rng.randint(0, 6)))
        steps.append(("ingest", rng.choice((0.0, 1.0, 5.0, 10.0, 25.0, 61.0, -7.0)), events))
    return steps


def test_stores_fire_every_contribution(make_store: StoreFactory) -> None:
    """SQLite and PostgreSQL, fed changing parameters in batches, lose no contribution."""
    for seed in range(8):
        rng = random.Random(seed)
        s = make_store(owner=f"o{seed}")
        now, n = T0 + seed * 1e6, 0
        wanted: list[Contribution] = []
        fired: list[Trigger] = []
        for op, dt, events in _random_steps(rng):
            now += dt
            if op == "fire":
                fired += [i.trigger for i in s.fire_due(now)]
                continue
            adm = [
                Admission(
                    f"s{seed}-{a.event_id}", tuple(_renamed(c, seed) for c in a.contributions)
                )
                for a in _admissions(n, events)
            ]
            n += len(adm)
            wanted += [c for a in adm for c in a.contributions]
            fired += [i.trigger for i in s.ingest(IngestBatch(tuple(adm)), now).fired]
        fired += [i.trigger for i in s.fire_due(now + 1e5)]
        assert s.open_window_count() == 0
        _check(wanted, fired)


def _renamed(c: Contribution, seed: int) -> Contribution:
    """``c`` of event ``s{seed}-{id}`` (one store, several seeds: ids never repeat)."""
    return Contribution(
        c.processor, c.day + timedelta(days=10 * seed), f"s{seed}-{c.event_id}",
        c.correlation_id, c.critical, c.entity_type, c.entity_ids, c.reason, c.quiet_s,
        c.max_wait_s, c.max_entities, c.granularity,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("id_sets", "scope"),
    [
        ((("a", "b"), ("b", "c")), "entities"),  # 3 distinct ids: at the threshold
        ((("a", "b", "c"), ("c", "b", "a")), "entities"),  # repeated ids count once
        ((("a", "b"), ("c", "d")), "date"),  # 4: one over
        ((("a", "b", "c"), ("d",)), "date"),
    ],
    ids=["at-threshold-overlap", "same-ids-twice", "one-over", "one-over-late"],
)
def test_the_threshold_counts_distinct_ids_of_the_union(
    make_store: StoreFactory, id_sets: tuple[tuple[str, ...], ...], scope: str
) -> None:
    """``max_entities: 3`` counts the union's distinct ids: 3 stay entity scope, 4 are full date."""
    s = make_store()
    cs = [contrib(f"e{k}", ids, max_entities=3) for k, ids in enumerate(id_sets)]
    for k, c in enumerate(cs):
        assert not s.ingest(batch(c), T0 + k).fired
    [item] = s.fire_due(T0 + 1e4)
    t = item.trigger
    assert t.scope == scope and t.caused_by == ("e0", "e1")
    union = sorted({i for ids in id_sets for i in ids})
    assert (t.entity_ids, t.reason) == (
        (tuple(union), "entity_scope") if scope == "entities" else (None, "fallback_threshold")
    )

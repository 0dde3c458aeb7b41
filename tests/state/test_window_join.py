"""Two open windows of one key become one (a store's windows handed over into another that
holds the key: the closed loop switched across a restart): the later one's content joins the
earlier one by the window rules (router/window_state.py ``join_windows``); their capped
causes join idempotently (a hand-over carried twice changes nothing), symmetrically, and
count a lower bound of the ids dropped (router/event_ids.py ``join_causes``), the same in
the book and the stores."""

from __future__ import annotations

import importlib
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from state_support import win

from scoperouter.router.event_ids import EventIds
from scoperouter.router.window_state import join_windows
from scoperouter.state.merge import book_window, join
from scoperouter.state.model import WindowState

ids_mod = importlib.import_module("scoperouter.router.event_ids")  # EventIds' cap
SMALL_CAP = 4

JOINS = {
    "ids unite": (win({"a"}), win({"b"}, opened=105.0), {"a", "b"}, None, "player"),
    "past max_entities: full date": (
        win({"a", "b"}),
        win({"c", "d"}, opened=105.0),
        None,
        "fallback_threshold",
        "player",
    ),
    "a later full date takes the ids in": (
        win({"a"}),
        win(None, opened=105.0, reason="no_entities_in_event"),
        None,
        "no_entities_in_event",
        "player",
    ),
    "a full date absorbs later ids": (
        win(None, reason="date_granularity"),
        win({"a"}, opened=105.0),
        None,
        "date_granularity",
        "player",
    ),
    "the first reason stays": (
        win(None, reason="date_granularity"),
        win(None, opened=105.0, reason="no_entities_in_event"),
        None,
        "date_granularity",
        "player",
    ),
    "ids of another type: full date": (
        win({"a"}),
        win({"t1"}, opened=105.0, etype="team"),
        None,
        "unmapped_entity_type",
        "player",
    ),
}


@pytest.mark.parametrize(("a", "b", "ids", "reason", "etype"), JOINS.values(), ids=list(JOINS))
def test_windows_of_one_key_join_by_the_window_rules(
    a: WindowState, b: WindowState, ids: set[str] | None, reason: str | None, etype: str
) -> None:
    """Two windows of one key become one as the later one's content joining the earlier would (either order), with both windows' causes and time span."""
    for x, y in ((a, b), (b, a)):
        got = join(x, y)
        assert (got.entity_ids, got.date_reason, got.entity_type) == (
            None if ids is None else frozenset(ids),
            reason,
            etype,
        )
        assert (got.opened_at, got.last_at) == (min(a.opened_at, b.opened_at), 110.0)
        assert got.caused_by == a.caused_by | b.caused_by


@pytest.mark.parametrize(
    ("a", "b", "want"),
    [
        (win({"a"}), win({"a"}), win({"a"})),
        (win({"a"}), win({"b"}, opened=90.0, causes=("e0",), corr="c0"), None),
    ],
    ids=["equal: unchanged", "the earlier correlation id"],
)
def test_a_join_keeps_the_earlier_window_s_identity(
    a: WindowState, b: WindowState, want: WindowState | None
) -> None:
    """Equal windows join to that window (a hand-over repeated changes nothing); otherwise the earlier window's correlation id and durations are kept."""
    got = join(a, b)
    if want is not None:
        assert got == want
    else:
        assert (got.correlation_id, got.opened_at, got.caused_by) == ("c0", 90.0, {"e0", "e1"})


def _seen(ids: list[str]) -> EventIds:
    """The causes of a window those event ids joined one at a time (under the cap in force)."""
    node = EventIds()
    for i in ids:
        node = node.add(i)
    return node


def _causes(a: EventIds, b: EventIds, opened: float = 105.0) -> EventIds:
    """The causes of a book window holding ``a`` joined by a later one holding ``b``."""
    wa = book_window(replace(win({"a"}, causes=tuple(a)), caused_more=a.more))
    wb = book_window(replace(win({"b"}, opened=opened, causes=tuple(b)), caused_more=b.more))
    return join_windows(wa, wb).caused_by


HISTORY = st.lists(st.sampled_from("abcdefghij"), max_size=9)


@settings(max_examples=500, deadline=None)
@given(a_ids=HISTORY, b_ids=HISTORY, opened=st.sampled_from([90.0, 100.0, 105.0]))
def test_joining_capped_causes_is_idempotent_symmetric_and_a_lower_bound(
    a_ids: list[str], b_ids: list[str], opened: float
) -> None:
    """Two windows' capped causes joined: join(a, a) == a, joining a or b again changes nothing, either order gives the same, the smallest ids of both are kept, and the count is at least each window's and the ids the join pushes out, at most the distinct ids dropped."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ids_mod, "CAUSED_BY_CAP", SMALL_CAP)
        a, b = _seen(a_ids), _seen(b_ids)
        j = _causes(a, b, opened)
        assert _causes(a, a) == a and _causes(b, b, opened) == b
        assert _causes(j, b) == j == _causes(j, a) == _causes(b, a, opened)
        assert _causes(b, j) == j == _causes(j, j)
        every = sorted({*a_ids, *b_ids})
        assert j.frozen() == frozenset(every[:SMALL_CAP])
        pushed = len(a.frozen() | b.frozen()) - len(j.frozen())
        assert j.more >= max(a.more, b.more, pushed)
        if len(set(a_ids)) == len(a_ids) and len(set(b_ids)) == len(b_ids):  # exact counts
            assert j.more <= len(every) - len(j.frozen())
        # the stores' join of the same windows (state.merge.join): the same causes and count
        wa = replace(win({"a"}, causes=tuple(a)), caused_more=a.more)
        wb = replace(win({"b"}, opened=opened, causes=tuple(b)), caused_more=b.more)
        stored = join(wa, wb)
        assert (stored.caused_by, stored.caused_more) == (j.frozen(), j.more)
        assert join(stored, wb) == stored == join(stored, wa) == join(wb, wa)


def test_a_hot_window_carried_twice_keeps_its_count() -> None:
    """A hot window (1,200 causes) joined by another's 100 later ids, then by the same 100 again: causes and count (so the trigger id) stay; 200 counted, a lower bound of the 300 dropped (the 100 may be among the 200)."""
    hot = _seen([f"e{i:05d}" for i in range(1200)])
    other = EventIds(f"e{i:05d}" for i in range(1200, 1300))
    once = _causes(hot, other)
    assert (len(once), once.more) == (1000, 200)
    assert _causes(once, other) == once and _causes(once, other).more == 200

"""Two open windows of one key become one (a store's windows handed over into another that
holds the key: the closed loop switched across a restart): the later one's content joins the
earlier one by the window rules (router/window_state.py ``join_windows``)."""

from __future__ import annotations

import pytest
from state_support import win

from scoperouter.state.merge import join
from scoperouter.state.model import WindowState

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

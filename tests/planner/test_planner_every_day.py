"""``every_day: true`` on a relation (a daily snapshot, such as a roster): a date inside the
span of its dated rows with no dated row is a *hole*, unknown like a date outside the span
(docs/registry.md, ``relation_data``). On the event's own date a hop through it is
``empty_mapping``; on a lookback's later date or an ``ahead`` day it makes an entity-scope
decision the full date (``unknown_relation_date``). Without ``every_day`` (a schedule) the
same day is known and relates nobody, today's behaviour -- which, for a roster whose job
failed that day, misses the joiner whose only day on the team it was. An ``inverse_of``
relation inherits it from its base.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from planner_support import D, event, registry_from, relations_for

from scoperouter.processor_registry.relations import InMemoryRelations, unknown_on
from scoperouter.router.planner import plan

D1, D2, D3 = (D + timedelta(days=k) for k in (1, 2, 3))
Rows = dict[str, list[tuple[date | None, str, str]]]

# LAL's roster is loaded on D and D2; D1's load failed (a hole). The joiner was on LAL on
# D1 only (traded to BOS on D2), so the D1 roster is the only way a LAL change reaches him.
ROSTER_HOLE: Rows = {
    "team_players": [
        (D, "LAL", "p1"),
        (D, "LAL", "p2"),
        (D2, "LAL", "p1"),
        (D2, "LAL", "p2"),
        (D2, "BOS", "joiner"),
    ],
    # LAL plays on D1 (the joiner's only game with LAL), p1 again on D3
    "player_games": [
        (D, "p1", "G0"),
        (D, "p2", "G0"),
        (D1, "p1", "G1"),
        (D1, "p2", "G1"),
        (D1, "joiner", "G1"),
        (D2, "joiner", "G2"),
        (D3, "p1", "G3"),
    ],
}
# the same roster with D1 loaded: what the planner would have read, had the job not failed
ROSTER_FULL: Rows = {
    **ROSTER_HOLE,
    "team_players": [
        *ROSTER_HOLE["team_players"],
        (D1, "LAL", "p1"),
        (D1, "LAL", "p2"),
        (D1, "LAL", "joiner"),
    ],
}
# an undated row on a hole date: alone it would name only part of LAL's roster
WITH_UNDATED: Rows = {
    **ROSTER_HOLE,
    "team_players": [*ROSTER_HOLE["team_players"], (None, "LAL", "coach")],
}


def _reg(every_day: bool, inp: dict[str, Any], gran: str, lookback: dict[str, Any] | None) -> Any:
    base: dict[str, Any] = {"from": "team", "to": "player"}
    if every_day:
        base["every_day"] = True
    proc: dict[str, Any] = {"phase": 3, "granularity": gran, "inputs": [inp]}
    if lookback:
        proc["lookback"] = lookback
    return registry_from(
        {
            "version": 1,
            "entities": {"player": {}, "team": {}, "game": {}},
            "relations": {
                "team_players": base,
                "player_team": {"inverse_of": "team_players"},
                "player_games": {"from": "player", "to": "game"},
            },
            "processors": {"ctx": proc},
        }
    )


TEAM = {"source": "raw.team"}
PLAYER_TO_TEAM = {"source": "raw.player", "map": {"player": ["player_team"]}}
INJURY = {
    "source": "raw.injury",
    "ahead": {"days": 1},
    "also_map": {"player": ["player_team", "team_players"]},
}
DAYS2 = {"days": 2}
GAMES1 = {"games": 1, "via": "player_games"}
ALL3 = (D, D1, D2)

CASES = [
    # (name, every_day, input, granularity, lookback, rows, entities, event date, as-of,
    #  expected (reason, scope, ids, dates))
    (
        "days_lookback_hole_is_unknown",
        True,
        TEAM,
        "player",
        DAYS2,
        ROSTER_HOLE,
        {"teams": ["LAL"]},
        D,
        D2,
        ("unknown_relation_date", "date", None, ALL3),
    ),
    (
        "days_lookback_schedule_like_misses_the_joiner",
        False,
        TEAM,
        "player",
        DAYS2,
        ROSTER_HOLE,
        {"teams": ["LAL"]},
        D,
        D2,
        ("entity_scope", "entities", ("p1", "p2"), ALL3),
    ),
    (
        "days_lookback_loaded_roster_reaches_the_joiner",
        True,
        TEAM,
        "player",
        DAYS2,
        ROSTER_FULL,
        {"teams": ["LAL"]},
        D,
        D2,
        ("entity_scope", "entities", ("joiner", "p1", "p2"), ALL3),
    ),
    (
        "games_lookback_hole_on_a_next_game_is_unknown",
        True,
        TEAM,
        "player",
        GAMES1,
        ROSTER_HOLE,
        {"teams": ["LAL"]},
        D,
        D3,
        ("unknown_relation_date", "date", None, (D, D1)),
    ),
    (
        "games_lookback_schedule_like_misses_the_joiner",
        False,
        TEAM,
        "player",
        GAMES1,
        ROSTER_HOLE,
        {"teams": ["LAL"]},
        D,
        D3,
        ("entity_scope", "entities", ("p1", "p2"), (D, D1)),
    ),
    (
        "games_lookback_loaded_roster_reaches_the_joiner",
        True,
        TEAM,
        "player",
        GAMES1,
        ROSTER_FULL,
        {"teams": ["LAL"]},
        D,
        D3,
        ("entity_scope", "entities", ("joiner", "p1", "p2"), (D, D1)),
    ),
    (
        "lookback_capped_before_the_hole",
        True,
        TEAM,
        "player",
        DAYS2,
        ROSTER_HOLE,
        {"teams": ["LAL"]},
        D,
        D,
        ("entity_scope", "entities", ("p1", "p2"), (D,)),
    ),
    (
        "event_on_the_hole_is_empty_mapping",
        True,
        TEAM,
        "player",
        None,
        ROSTER_HOLE,
        {"teams": ["LAL"]},
        D1,
        D1,
        ("empty_mapping", "date", None, (D1,)),
    ),
    (
        "event_on_the_hole_undated_rows_do_not_stand_in",
        True,
        TEAM,
        "player",
        None,
        WITH_UNDATED,
        {"teams": ["LAL"]},
        D1,
        D1,
        ("empty_mapping", "date", None, (D1,)),
    ),
    (
        "event_on_an_empty_schedule_day_keeps_its_undated_rows",
        False,
        TEAM,
        "player",
        None,
        WITH_UNDATED,
        {"teams": ["LAL"]},
        D1,
        D1,
        ("entity_scope", "entities", ("coach",), (D1,)),
    ),
    (
        "inverse_inherits_the_hole_on_a_later_date",
        True,
        PLAYER_TO_TEAM,
        "team",
        DAYS2,
        ROSTER_HOLE,
        {"players": ["p1"]},
        D,
        D2,
        ("unknown_relation_date", "date", None, ALL3),
    ),
    (
        "inverse_schedule_like_keeps_entity_scope",
        False,
        PLAYER_TO_TEAM,
        "team",
        DAYS2,
        ROSTER_HOLE,
        {"players": ["p1"]},
        D,
        D2,
        ("entity_scope", "entities", ("LAL",), ALL3),
    ),
    (
        "inverse_event_on_the_hole_is_empty_mapping",
        True,
        PLAYER_TO_TEAM,
        "team",
        None,
        ROSTER_HOLE,
        {"players": ["p1"]},
        D1,
        D1,
        ("empty_mapping", "date", None, (D1,)),
    ),
    (
        "ahead_day_on_the_hole_is_unknown",
        True,
        INJURY,
        "player",
        None,
        ROSTER_HOLE,
        {"players": ["p1"]},
        D,
        D,
        ("unknown_relation_date", "date", None, (D, D1)),
    ),
    (
        "ahead_day_schedule_like_keeps_entity_scope",
        False,
        INJURY,
        "player",
        None,
        ROSTER_HOLE,
        {"players": ["p1"]},
        D,
        D,
        ("entity_scope", "entities", ("p1", "p2"), (D, D1)),
    ),
]


@pytest.mark.parametrize(
    ("name", "every_day", "inp", "gran", "lookback", "rows", "ents", "on", "as_of", "expected"),
    CASES,
    ids=[c[0] for c in CASES],
)
def test_every_day_hole(
    name: str,
    every_day: bool,
    inp: dict[str, Any],
    gran: str,
    lookback: dict[str, Any] | None,
    rows: Rows,
    ents: dict[str, list[str]],
    on: date,
    as_of: date,
    expected: tuple[str, str, tuple[str, ...] | None, tuple[date, ...]],
) -> None:
    """A hole of an every_day relation is unknown; the same day of a schedule relates nobody."""
    reg = _reg(every_day, inp, gran, lookback)
    ev = event(reg, source=inp["source"], affected_entities=ents, game_date=on.isoformat())
    (dec,) = plan(reg, relations_for(reg, rows), ev, as_of)
    assert (dec.reason, dec.scope, dec.entity_ids, dec.dates) == expected


STORE_CASES = [
    # (name, every_day relations, rows of r, relation asked, expected holes)
    ("gap_of_two_days", {"r"}, [(D, "a", "x"), (D3, "a", "x")], "r", {D1, D2}),
    ("gap_inherited_by_the_inverse", {"r"}, [(D, "a", "x"), (D2, "a", "x")], "r_inv", {D1}),
    ("no_gap", {"r"}, [(D, "a", "x"), (D1, "b", "y")], "r", set()),
    ("schedule_like_has_no_holes", set(), [(D, "a", "x"), (D3, "a", "x")], "r", set()),
    ("wholly_undated_has_no_holes", {"r"}, [(None, "a", "x")], "r", set()),
    (
        "undated_rows_fill_no_hole",
        {"r"},
        [(D, "a", "x"), (None, "a", "y"), (D2, "a", "x")],
        "r",
        {D1},
    ),
    ("unknown_relation", {"r"}, [(D, "a", "x"), (D2, "a", "x")], "nope", set()),
]


@pytest.mark.parametrize(
    ("name", "daily", "rows", "asked", "holes"), STORE_CASES, ids=[c[0] for c in STORE_CASES]
)
def test_store_holes(
    name: str,
    daily: set[str],
    rows: list[tuple[date | None, str, str]],
    asked: str,
    holes: set[date],
) -> None:
    """InMemoryRelations.holes: the every_day span's dates without a dated row, and unknown_on."""
    store = InMemoryRelations({"r": rows}, inverses={"r_inv": "r"}, every_day=daily)
    assert store.holes(asked) == holes
    for d in holes:
        assert unknown_on(store, asked, d)
    span = store.dated_span(asked)
    if span is not None:
        inside = {span[0] + timedelta(days=k) for k in range((span[1] - span[0]).days + 1)}
        assert {d for d in inside if unknown_on(store, asked, d)} == holes

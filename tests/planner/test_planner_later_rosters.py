"""An entity-scope decision that reaches later dates (a lookback) also maps the event's ids
on each of those dates, united with the event date's mapping: a player who joins the team
after the event's date is reached (production reads the roster of the later date,
data_processors/analytics/upcoming_player_game_context/team_context.py:735-747, and that
team's box-score rows, :770-772); a later date whose rows do not know an id adds nothing
and never turns the decision into a full date. A later date whose roster is not loaded at
all (after the relation's last dated row, or before its first) is not "nobody joins": the
decision runs the full date (``unknown_relation_date``). A date inside that span with no
row is loaded and relates nobody that day (a schedule's day without games): entity scope.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from planner_support import NBA_RELATIONS, D, event, registry_from, relations_for

from scoperouter.router.cascade import cascade
from scoperouter.router.engine import RoutingEngine
from scoperouter.router.planner import plan

AS_OF = D + timedelta(days=10)
D1, D2, D3, D4, D5 = (D + timedelta(days=n) for n in (1, 2, 3, 4, 5))


def _reg(lookback: dict[str, Any] | None, max_entities: int = 10) -> Any:
    proc: dict[str, Any] = {
        "phase": 3,
        "granularity": "player",
        "inputs": [{"source": "raw.box", "also_map": {"player": ["player_team", "team_players"]}}],
        "max_entities": max_entities,
    }
    if lookback is not None:
        proc["lookback"] = lookback
    return registry_from({"version": 1, **NBA_RELATIONS, "processors": {"ctx": proc}})


ROWS: dict[str, list[tuple[date | None, str, str]]] = {
    "team_players": [
        (D, "T1", "p1"),
        (D, "T1", "p2"),
        (D, "T2", "p4"),
        (D1, "T1", "p1"),
        (D1, "T1", "p2"),
        (D1, "T1", "p9"),  # p9 joins T1 the day after D
        (D1, "T2", "p4"),
        (D5, "T1", "p1"),
        (D5, "T1", "p7"),  # p7 joins T1 five days after D; p2 has left
        (D3, "T2", "p4"),  # D3, D4: loaded, nobody of T1 on them
        (D4, "T2", "p4"),
        # D2: no roster rows at all, inside the loaded span [D, D5]: a known day on which
        # nobody is on a team (the span rule; it was unknown under the per-date rule of
        # 693df02). After D5 nothing is loaded: a lookback reaching D6 runs the full date
        # (unknown_relation_date). LOADED has rows up to AS_OF (and D2's too).
    ],
    "game_teams": [],
    "player_games": [(D, "p1", "G1"), (D2, "p1", "G2"), (D5, "p1", "G5")],
}
LOADED: dict[str, list[tuple[date | None, str, str]]] = {  # every date up to AS_OF
    **ROWS,
    "team_players": [
        *ROWS["team_players"],
        *((D + timedelta(days=k), "T2", "p4") for k in (2, *range(6, 11))),
    ],
}

HOLE: dict[str, list[tuple[date | None, str, str]]] = {  # loaded up to AS_OF but D2
    **ROWS,
    "team_players": [
        *ROWS["team_players"],
        *((D + timedelta(days=k), "T2", "p4") for k in range(6, 11)),
    ],
}

CASES = [
    # (name, rows, lookback, max_entities, event date, event's players,
    #  expected (reason, scope, ids))
    (
        "no_lookback_event_date_only",
        ROWS,
        None,
        10,
        D,
        ["p1"],
        ("entity_scope", "entities", ("p1", "p2")),
    ),
    (
        "days_lookback_reaches_later_joiners",
        LOADED,
        {"days": 5},
        10,
        D,
        ["p1"],
        ("entity_scope", "entities", ("p1", "p2", "p7", "p9")),
    ),
    (
        "days_lookback_over_a_known_empty_day_keeps_entity_scope",
        ROWS,
        {"days": 5},
        10,
        D,
        ["p1"],
        ("entity_scope", "entities", ("p1", "p2", "p7", "p9")),
    ),
    (
        "days_lookback_past_the_last_loaded_date_is_the_full_date",
        ROWS,
        {"days": 6},
        10,
        D,
        ["p1"],
        ("unknown_relation_date", "date", None),
    ),
    (
        "days_lookback_past_the_last_loaded_date_when_loaded",
        LOADED,
        {"days": 6},
        10,
        D,
        ["p1"],
        ("entity_scope", "entities", ("p1", "p2", "p7", "p9")),
    ),
    (
        "days_lookback_short_of_the_unloaded_date",
        ROWS,
        {"days": 1},
        10,
        D,
        ["p1"],
        ("entity_scope", "entities", ("p1", "p2", "p9")),
    ),
    (
        # p1's next games are D2 and D5; D1 has no player_games row at all, so it counts
        # as a possible game date (the planner's missing-via rule) and its roster too
        "games_lookback_reaches_later_joiners",
        LOADED,
        {"games": 2, "via": "player_games"},
        10,
        D,
        ["p1"],
        ("entity_scope", "entities", ("p1", "p2", "p7", "p9")),
    ),
    (
        # p2, p7, p9 have no player_games row: their games may be any date up to AS_OF
        # (all loaded in HOLE; D2 a known empty day)
        "games_lookback_over_a_known_empty_day_keeps_entity_scope",
        HOLE,
        {"games": 2, "via": "player_games"},
        10,
        D,
        ["p1"],
        ("entity_scope", "entities", ("p1", "p2", "p7", "p9")),
    ),
    (
        # p2, p7, p9 have no player_games row: their games may be any date up to AS_OF,
        # past ROWS' last roster date D5
        "games_lookback_past_the_last_loaded_date_is_the_full_date",
        ROWS,
        {"games": 2, "via": "player_games"},
        10,
        D,
        ["p1"],
        ("unknown_relation_date", "date", None),
    ),
    (
        # past the threshold first: fallback_threshold precedes unknown_relation_date
        "later_joiners_count_toward_max_entities",
        ROWS,
        {"days": 5},
        3,
        D,
        ["p1"],
        ("fallback_threshold", "date", None),
    ),
    (
        # p4 has no roster row on D5: p1's team on D5 is still reached
        "an_unknown_id_on_a_later_date_hides_no_other",
        LOADED,
        {"days": 5},
        10,
        D,
        ["p1", "p4"],
        ("entity_scope", "entities", ("p1", "p2", "p4", "p7", "p9")),
    ),
    (
        "event_on_as_of_has_no_later_dates",
        ROWS,
        {"days": 5},
        10,
        AS_OF,
        ["p1"],
        ("empty_mapping", "date", None),
    ),
]


@pytest.mark.parametrize(
    ("name", "rows", "lookback", "max_entities", "day", "players", "expected"),
    CASES,
    ids=[c[0] for c in CASES],
)
def test_later_rosters(
    name: str,
    rows: dict[str, list[tuple[date | None, str, str]]],
    lookback: dict[str, Any] | None,
    max_entities: int,
    day: date,
    players: list[str],
    expected: tuple[str, str, tuple[str, ...] | None],
) -> None:
    """Each later date of the decision adds the ids its own relation rows reach."""
    reg = _reg(lookback, max_entities)
    rel = relations_for(reg, rows)
    ev = event(
        reg, source="raw.box", game_date=day.isoformat(), affected_entities={"players": players}
    )
    (dec,) = plan(reg, rel, ev, AS_OF)
    assert (dec.reason, dec.scope, dec.entity_ids) == expected


# A games lookback's dates grow with the ids the later rosters add; each date it gains has
# a roster of its own, read in turn until a pass adds no id. Every date D..D+10 has a
# player_games row (filler), so no date is unknown (no blanket coverage up to as_of).
D9, D10 = (D + timedelta(days=n) for n in (9, 10))
CHAIN_ROWS: dict[str, list[tuple[date | None, str, str]]] = {
    "team_players": [
        (D, "T1", "p1"),
        (D1, "T1", "p1"),
        (D1, "T1", "p2"),  # p2 joins T1 on p1's next game (D1)
        (D3, "T1", "p1"),
        (D3, "T1", "p2"),
        (D3, "T1", "p3"),  # p3 joins T1 on p2's next game (D3)
        (D9, "T1", "p1"),
        (D9, "T1", "p3"),
        (D9, "T1", "p4"),  # p4 joins T1 on p3's next game (D9); p2 has left
        # D10 (p4's next game): no T1 row, so it adds nothing; another team's rows on every
        # date keep each one loaded (an unloaded one would be unknown_relation_date)
        *((D + timedelta(days=k), "T0", "z0") for k in range(11)),
    ],
    "game_teams": [],
    "player_games": [
        *((D + timedelta(days=k), "filler", f"G{k}") for k in range(11)),
        (D, "p1", "G0"),
        (D1, "p1", "G1"),
        (D3, "p2", "G3"),
        (D9, "p3", "G9"),
        (D10, "p4", "G10"),
    ],
}

CHAIN_CASES = [
    # (name, lookback, max_entities, expected (reason, scope, ids, dates or None: not checked))
    (
        "games_lookback_reads_the_rosters_of_the_dates_it_gains",
        {"games": 1, "via": "player_games"},
        10,
        ("entity_scope", "entities", ("p1", "p2", "p3", "p4"), (D, D1, D3, D9, D10)),
    ),
    (
        # p4 is reached only on D9, which only p3 (reached on D3) brings in
        "joiners_of_gained_dates_count_toward_max_entities",
        {"games": 1, "via": "player_games"},
        3,
        ("fallback_threshold", "date", None, None),
    ),
    (
        "days_lookback_dates_do_not_depend_on_the_ids",
        {"days": 3},
        10,
        ("entity_scope", "entities", ("p1", "p2", "p3"), (D, D1, D + timedelta(days=2), D3)),
    ),
]


@pytest.mark.parametrize(
    ("name", "lookback", "max_entities", "expected"),
    CHAIN_CASES,
    ids=[c[0] for c in CHAIN_CASES],
)
def test_later_rosters_of_gained_dates(
    name: str,
    lookback: dict[str, Any],
    max_entities: int,
    expected: tuple[str, str, tuple[str, ...] | None, tuple[date, ...] | None],
) -> None:
    """A later date gained from a later date's roster has its own roster followed too."""
    reg = _reg(lookback, max_entities)
    ev = event(reg, source="raw.box", affected_entities={"players": ["p1"]})
    (dec,) = plan(reg, relations_for(reg, CHAIN_ROWS), ev, AS_OF)
    reason, scope, ids, dates = expected
    assert (dec.reason, dec.scope, dec.entity_ids) == (reason, scope, ids)
    if dates is not None:
        assert dec.dates == dates


def test_engine_and_cascade_fire_the_joiners_of_gained_dates() -> None:
    """The engine's triggers and explain --cascade's hop 1 carry the fixpoint's ids and dates."""
    reg = _reg({"games": 1, "via": "player_games"})
    rel = relations_for(reg, CHAIN_ROWS)
    ev = event(reg, source="raw.box", affected_entities={"players": ["p1"]})
    engine = RoutingEngine(reg)
    engine.receive(ev, rel, AS_OF, 0.0)
    fired = {f.trigger.game_date: f.trigger.entity_ids for f in engine.drain()}
    assert fired == {day: ("p1", "p2", "p3", "p4") for day in (D, D1, D3, D9, D10)}
    (step,) = cascade(reg, rel, ev, AS_OF).hops[0].steps
    assert step.decision == plan(reg, rel, ev, AS_OF)[0]


# A path of two hops (a team's division rivals, then their rosters): on a later date, one
# rival with no roster row hides nothing the other ids reach there (a tolerant walk: each
# hop unites the targets of the ids that have rows). The event's own date stays
# all-or-nothing: it alone decides empty_mapping.
DIVISION_ROWS: dict[str, list[tuple[date | None, str, str]]] = {
    "division_teams": [
        (None, "LAL", "LAL"),
        (None, "LAL", "PHX"),
        (None, "PHX", "LAL"),
        (None, "PHX", "PHX"),
    ],
    "team_players": [
        (D, "LAL", "lebron"),
        (D, "PHX", "booker"),
        (D1, "LAL", "lebron"),
        (D1, "LAL", "newguy"),  # newguy joins LAL on D1; PHX has no roster row on D1
        (D2, "PHX", "booker"),
        (D2, "PHX", "rookie"),  # rookie joins PHX on D2; LAL has no roster row on D2
        (D3, "BOS", "tatum"),  # D3 is loaded (no LAL or PHX row on it)
        (D5, "LAL", "late"),  # past the 3-day lookback
        (D5, "PHX", "booker"),
    ],
}

DIVISION_CASES = [
    # (name, event date, event's teams, expected (reason, scope, ids))
    (
        "a_rival_unknown_on_a_later_date_hides_no_joiner",
        D,
        ["LAL"],
        ("entity_scope", "entities", ("booker", "lebron", "newguy", "rookie")),
    ),
    (
        "the_other_team_named_reaches_the_same",
        D,
        ["PHX"],
        ("entity_scope", "entities", ("booker", "lebron", "newguy", "rookie")),
    ),
    (
        # on D1 PHX has no roster row: the event's date alone decides empty_mapping
        "a_rival_unknown_on_the_event_date_is_empty_mapping",
        D1,
        ["LAL"],
        ("empty_mapping", "date", None),
    ),
]


def _division_reg(lookback: dict[str, Any] | None = None) -> Any:
    return registry_from(
        {
            "version": 1,
            "entities": {"player": {}, "team": {}, "game": {}},
            "relations": {
                "team_players": {"from": "team", "to": "player"},
                "division_teams": {"from": "team", "to": "team"},
                "player_games": {"from": "player", "to": "game"},
            },
            "processors": {
                "division_form": {
                    "phase": 4,
                    "granularity": "player",
                    "inputs": [
                        {"source": "raw.box", "map": {"team": ["division_teams", "team_players"]}}
                    ],
                    "lookback": lookback or {"days": 3},
                }
            },
        }
    )


@pytest.mark.parametrize(
    ("name", "day", "teams", "expected"),
    DIVISION_CASES,
    ids=[c[0] for c in DIVISION_CASES],
)
def test_later_dates_walk_every_hop_tolerantly(
    name: str, day: date, teams: list[str], expected: tuple[str, str, tuple[str, ...] | None]
) -> None:
    """On a later date, an id with no row at a middle hop drops only its own branch."""
    reg = _division_reg()
    ev = event(reg, source="raw.box", game_date=day.isoformat(), affected_entities={"teams": teams})
    (dec,) = plan(reg, relations_for(reg, DIVISION_ROWS), ev, AS_OF)
    assert (dec.reason, dec.scope, dec.entity_ids) == expected


# A date-scope decision of a games lookback keeps the next games of the ids the event's
# ids reach on its date (best effort), walked tolerantly too: on D1 PHX has no roster row
# (empty_mapping), yet LAL's roster (lebron, newguy) still brings newguy's next game (D6).
# Every date has a player_games row (filler), so no date is unknown.
GAMES_ROWS: dict[str, list[tuple[date | None, str, str]]] = {
    **DIVISION_ROWS,
    "player_games": [
        *((D + timedelta(days=k), "filler", f"G{k}") for k in range(11)),
        (D1, "lebron", "G1"),
        (D + timedelta(days=4), "lebron", "G4"),
        (D + timedelta(days=6), "newguy", "G6"),
    ],
}

KNOWN_CASES = [
    # (name, event's teams, expected (reason, scope, dates))
    (
        "empty_mapping_keeps_the_next_games_of_what_known_rows_reach",
        ["LAL"],
        ("empty_mapping", "date", (D1, D2, D + timedelta(days=4), D + timedelta(days=6))),
    ),
    (
        "the_unknown_team_named_reaches_its_rival_roster_too",
        ["PHX"],
        ("empty_mapping", "date", (D1, D2, D + timedelta(days=4), D + timedelta(days=6))),
    ),
]


@pytest.mark.parametrize(
    ("name", "teams", "expected"), KNOWN_CASES, ids=[c[0] for c in KNOWN_CASES]
)
def test_date_scope_known_ids_walk_tolerantly(
    name: str, teams: list[str], expected: tuple[str, str, tuple[date, ...]]
) -> None:
    """A date-scope games lookback covers the next games of every id its known rows reach."""
    reg = _division_reg({"games": 1, "via": "player_games"})
    ev = event(reg, source="raw.box", game_date=D1.isoformat(), affected_entities={"teams": teams})
    (dec,) = plan(reg, relations_for(reg, GAMES_ROWS), ev, AS_OF)
    assert (dec.reason, dec.scope, dec.dates) == expected

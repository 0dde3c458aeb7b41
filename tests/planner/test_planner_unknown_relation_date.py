"""A later date of a lookback, or an ``ahead`` day, that a dated relation on the decision's
paths does not span (after its last dated row: its data not loaded yet, an evening report
dated D routed before D+1's roster exists) is unknown, not "nobody joins": the decision runs the full date,
reason ``unknown_relation_date`` (docs/registry.md, "Later dates of a lookback" and "Rows
dated after the event"). One id unknown on a loaded date still drops only its own branch;
a wholly undated relation knows every date; past ``max_entities`` first,
``fallback_threshold`` wins.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from planner_support import D, event, registry_from, relations_for

from scoperouter.router.cascade import cascade
from scoperouter.router.engine import RoutingEngine
from scoperouter.router.planner import plan

D1, D2 = D + timedelta(days=1), D + timedelta(days=2)
Rows = dict[str, list[tuple[date | None, str, str]]]

ROSTER = [(D, "LAL", "p1"), (D, "LAL", "p2"), (D, "BOS", "b1")]
LOADED: Rows = {  # D1's roster too: traded_in joins LAL
    "team_players": [*ROSTER, (D1, "LAL", "p1"), (D1, "LAL", "p2"), (D1, "LAL", "traded_in")]
}
NOT_LOADED: Rows = {"team_players": ROSTER}  # D1's roster not loaded yet
NO_LAL_ROW: Rows = {"team_players": [*ROSTER, (D1, "BOS", "b1")]}  # D1 loaded, LAL unknown
UNDATED: Rows = {"team_players": [(None, "LAL", "p1"), (None, "LAL", "p2")]}


def _reg(inp: dict[str, Any], lookback: dict[str, Any] | None, max_entities: int = 10) -> Any:
    proc: dict[str, Any] = {
        "phase": 3,
        "granularity": "player",
        "inputs": [inp],
        "max_entities": max_entities,
    }
    if lookback:
        proc["lookback"] = lookback
    return registry_from(
        {
            "version": 1,
            "entities": {"player": {}, "team": {}},
            "relations": {
                "team_players": {"from": "team", "to": "player"},
                "player_team": {"inverse_of": "team_players"},
            },
            "processors": {"ctx": proc},
        }
    )


TEAM = {"source": "raw.team"}
INJURY = {
    "source": "raw.injury",
    "ahead": {"days": 1},
    "also_map": {"player": ["player_team", "team_players"]},
}
DAYS1 = {"days": 1}

CASES = [
    # (name, input, lookback, max_entities, rows, event's entities, as-of,
    #  expected (reason, scope, ids, dates))
    (
        "lookback_later_roster_loaded",
        TEAM,
        DAYS1,
        10,
        LOADED,
        {"teams": ["LAL"]},
        D1,
        ("entity_scope", "entities", ("p1", "p2", "traded_in"), (D, D1)),
    ),
    (
        "lookback_later_roster_not_loaded",
        TEAM,
        DAYS1,
        10,
        NOT_LOADED,
        {"teams": ["LAL"]},
        D1,
        ("unknown_relation_date", "date", None, (D, D1)),
    ),
    (
        "lookback_capped_before_the_unloaded_date",
        TEAM,
        DAYS1,
        10,
        NOT_LOADED,
        {"teams": ["LAL"]},
        D,
        ("entity_scope", "entities", ("p1", "p2"), (D,)),
    ),
    (
        "lookback_loaded_date_without_the_team_row_drops_its_branch",
        TEAM,
        DAYS1,
        10,
        NO_LAL_ROW,
        {"teams": ["LAL"]},
        D1,
        ("entity_scope", "entities", ("p1", "p2"), (D, D1)),
    ),
    (
        "lookback_threshold_first",
        TEAM,
        DAYS1,
        1,
        NOT_LOADED,
        {"teams": ["LAL"]},
        D1,
        ("fallback_threshold", "date", None, (D, D1)),
    ),
    (
        "lookback_wholly_undated_relation",
        TEAM,
        DAYS1,
        10,
        UNDATED,
        {"teams": ["LAL"]},
        D1,
        ("entity_scope", "entities", ("p1", "p2"), (D, D1)),
    ),
    (
        "ahead_next_roster_loaded",
        INJURY,
        None,
        10,
        LOADED,
        {"players": ["p1"]},
        D,
        ("entity_scope", "entities", ("p1", "p2", "traded_in"), (D, D1)),
    ),
    (
        "ahead_next_roster_not_loaded",
        INJURY,
        None,
        10,
        NOT_LOADED,
        {"players": ["p1"]},
        D,
        ("unknown_relation_date", "date", None, (D, D1)),
    ),
    (
        "ahead_next_roster_not_loaded_with_a_lookback",
        INJURY,
        {"days": 2},
        10,
        NOT_LOADED,
        {"players": ["p1"]},
        D2,
        ("unknown_relation_date", "date", None, (D, D1, D2)),
    ),
    (
        "ahead_threshold_first",
        INJURY,
        None,
        2,
        LOADED,
        {"players": ["p1"]},
        D,
        ("fallback_threshold", "date", None, (D, D1)),
    ),
    (
        "ahead_identity_only_knows_every_date",
        {"source": "raw.injury", "ahead": {"days": 1}},
        None,
        10,
        NOT_LOADED,
        {"players": ["p1"]},
        D,
        ("entity_scope", "entities", ("p1",), (D, D1)),
    ),
]


@pytest.mark.parametrize(
    ("name", "inp", "lookback", "max_entities", "rows", "ents", "as_of", "expected"),
    CASES,
    ids=[c[0] for c in CASES],
)
def test_unknown_relation_date(
    name: str,
    inp: dict[str, Any],
    lookback: dict[str, Any] | None,
    max_entities: int,
    rows: Rows,
    ents: dict[str, list[str]],
    as_of: date,
    expected: tuple[str, str, tuple[str, ...] | None, tuple[date, ...]],
) -> None:
    """A later or ahead date a dated relation on the paths has no row for is the full date."""
    reg = _reg(inp, lookback, max_entities)
    ev = event(reg, source=inp["source"], affected_entities=ents)
    (dec,) = plan(reg, relations_for(reg, rows), ev, as_of)
    assert (dec.reason, dec.scope, dec.entity_ids, dec.dates) == expected


def test_engine_and_cascade_fire_the_full_date() -> None:
    """The engine fires the full date of each date with the reason; cascade's hop 1 agrees."""
    reg = _reg(TEAM, DAYS1)
    rel = relations_for(reg, NOT_LOADED)
    ev = event(reg, source="raw.team", affected_entities={"teams": ["LAL"]})
    engine = RoutingEngine(reg)
    engine.receive(ev, rel, D1, 0.0)
    fired = {(f.trigger.game_date, f.trigger.scope, f.trigger.reason) for f in engine.drain()}
    assert fired == {(x, "date", "unknown_relation_date") for x in (D, D1)}
    (step,) = cascade(reg, rel, ev, D1).hops[0].steps
    assert step.decision == plan(reg, rel, ev, D1)[0]

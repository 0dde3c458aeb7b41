"""A date-scope decision with a games lookback covers at least the dates of the entity-scope
decision it replaces: the joiners a later roster adds (and the joiners of the dates they
bring, to a fixpoint) bring their next games whatever made the decision the full date
(``empty_mapping``, ``unmapped_entity_type``, ``fallback_threshold``, a date-granularity
reader, an input's ``ahead`` days)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from planner_support import D, event, registry_from, relations_for

from scoperouter.router.planner import plan

D1, D2, D3, D4, D5 = (D + timedelta(days=k) for k in range(1, 6))
AS_OF = D + timedelta(days=6)

# LAL's roster grows: j joins on a's next game (D1), k on j's next game (D3); z plays on D2
# and D5 only, so every date up to D5 has a player_games row (none is unknown); BOS's rows
# keep team_players' dated span through D5 (a date past it that the walk reaches would
# make the entity-scope decisions unknown_relation_date; a day inside it with no row is
# known, nobody on a team).
ROWS: dict[str, list[tuple[date | None, str, str]]] = {
    "team_players": [
        (D, "LAL", "a"),
        (D, "LAL", "c"),
        (D1, "LAL", "a"),
        (D1, "LAL", "c"),
        (D1, "LAL", "j"),
        (D3, "LAL", "j"),
        (D3, "LAL", "k"),
        (D4, "BOS", "b"),
        (D5, "BOS", "b"),
    ],
    "player_games": [
        (D, "a", "g0"),
        (D, "c", "g0"),
        (D1, "a", "g1"),
        (D1, "c", "g1"),
        (D3, "j", "g3"),
        (D4, "k", "g4"),
        (D5, "a", "g5"),
        (D5, "c", "g5"),
        (D2, "z", "g2"),
        (D5, "z", "g5"),
    ],
}

LOOKBACK = {"games": 1, "via": "player_games"}
ENTITY = (D, D1, D3, D4)  # the entity-scope decision's dates (ids a, c, j, k)


def _doc(granularity: str, max_entities: int, ahead: int = 0) -> dict[str, Any]:
    inp: dict[str, Any] = {"source": "s.x"}
    if ahead:
        inp["ahead"] = {"days": ahead}
    proc = {
        "phase": 4,
        "granularity": granularity,
        "inputs": [inp],
        "lookback": LOOKBACK,
        "max_entities": max_entities,
    }
    return {
        "version": 1,
        "entities": {"player": {}, "team": {}, "game": {}, "arena": {}},
        "relations": {
            "team_players": {"from": "team", "to": "player"},
            "player_games": {"from": "player", "to": "game"},
        },
        "processors": {"p": proc},
    }


CASES = [
    # (name, granularity, max_entities, ahead, event's entities, reason, dates)
    ("entity_scope", "player", 10, 0, {"teams": ["LAL"]}, "entity_scope", ENTITY),
    ("fallback_mid_walk", "player", 2, 0, {"teams": ["LAL"]}, "fallback_threshold", ENTITY),
    ("fallback_on_d", "player", 1, 0, {"teams": ["LAL"]}, "fallback_threshold", ENTITY),
    ("empty_mapping", "player", 10, 0, {"teams": ["LAL", "PHX"]}, "empty_mapping", ENTITY),
    (
        "unmapped_entity_type",
        "player",
        10,
        0,
        {"teams": ["LAL"], "arenas": ["x"]},
        "unmapped_entity_type",
        ENTITY,
    ),
    ("date_granularity", "date", 10, 0, {"teams": ["LAL"]}, "date_granularity", ENTITY),
    # ahead: D1 counts as a change too; a and c's next game after D1 is D5
    ("ahead_entity_scope", "player", 10, 1, {"teams": ["LAL"]}, "entity_scope", (*ENTITY, D5)),
    ("ahead_fallback", "player", 1, 1, {"teams": ["LAL"]}, "fallback_threshold", (*ENTITY, D5)),
    (
        "ahead_date_granularity",
        "date",
        10,
        1,
        {"teams": ["LAL"]},
        "date_granularity",
        (*ENTITY, D5),
    ),
]


@pytest.mark.parametrize(
    ("name", "granularity", "max_entities", "ahead", "ents", "reason", "dates"),
    CASES,
    ids=[c[0] for c in CASES],
)
def test_date_scope_covers_the_joiners_dates(
    name: str,
    granularity: str,
    max_entities: int,
    ahead: int,
    ents: dict[str, list[str]],
    reason: str,
    dates: tuple[date, ...],
) -> None:
    """Every decision for the event covers the joiners' later games, entity scope or not."""
    reg = registry_from(_doc(granularity, max_entities, ahead))
    (dec,) = plan(
        reg, relations_for(reg, ROWS), event(reg, source="s.x", affected_entities=ents), AS_OF
    )
    assert (dec.reason, dec.dates) == (reason, dates)

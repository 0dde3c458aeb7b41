"""SPEC section 2, entity mapping: without a ``map`` entry, an event's type reaches the
granularity through *the single relation* between them, only when exactly one exists
(inverses count); never by chaining hops."""

from __future__ import annotations

from typing import Any

import pytest
from planner_support import D, event, registry_from, relations_for

from scoperouter.processor_registry.relations import Row
from scoperouter.router.planner import plan

ROWS: dict[str, list[Row]] = {
    "team_players": [(None, "LAL", "lebronjames")],
    "team_bench": [(None, "LAL", "bronnyjames")],
    "game_teams": [(D, "G1", "LAL")],
    "player_team": [(None, "anthonydavis", "LAL")],
}


def _registry(relations: dict[str, Any], inp: dict[str, Any]) -> Any:
    return registry_from(
        {
            "version": 1,
            "entities": {"player": {}, "team": {}, "game": {}},
            "relations": relations,
            "processors": {
                "p": {"phase": 3, "granularity": "player", "inputs": [{"source": "raw.a", **inp}]}
            },
        }
    )


TP = {"team_players": {"from": "team", "to": "player"}}
TB = {"team_bench": {"from": "team", "to": "player"}}
GT = {"game_teams": {"from": "game", "to": "team"}}
INV = {"player_team": {"from": "player", "to": "team"}, "team_of": {"inverse_of": "player_team"}}


@pytest.mark.parametrize(
    ("relations", "inp", "entities", "expected"),
    [
        # exactly one relation team -> player: used implicitly
        (TP, {}, {"teams": ["LAL"]}, ("entities", ("lebronjames",), "entity_scope")),
        # two relations team -> player: none is "the single relation"
        ({**TP, **TB}, {}, {"teams": ["LAL"]}, ("date", None, "unmapped_entity_type")),
        # ... unless map names the path
        (
            {**TP, **TB},
            {"map": {"team": ["team_bench"]}},
            {"teams": ["LAL"]},
            ("entities", ("bronnyjames",), "entity_scope"),
        ),
        # the single relation counts inverses: team_of (inverse of player -> team) is
        # the only team -> player relation
        (INV, {}, {"teams": ["LAL"]}, ("entities", ("anthonydavis",), "entity_scope")),
        # game -> team -> player chains two hops: never taken implicitly
        ({**TP, **GT}, {}, {"games": ["G1"]}, ("date", None, "unmapped_entity_type")),
    ],
    ids=["one", "two", "two-with-map", "inverse-counts", "no-chaining"],
)
def test_single_relation_rule(
    relations: dict[str, Any],
    inp: dict[str, Any],
    entities: dict[str, list[str]],
    expected: tuple[str, tuple[str, ...] | None, str],
) -> None:
    """The implicit relation is used only when it is the one relation between the types."""
    reg = _registry(relations, inp)
    rels = relations_for(reg, ROWS)
    [got] = plan(reg, rels, event(reg, source="raw.a", affected_entities=entities), D)
    assert (got.scope, got.entity_ids, got.reason) == expected

"""also_map: the ids a type names are ALSO mapped along its path, united with the normal
mapping (identity / map / single relation); an id reaching nothing runs the full date
(empty_mapping); max_entities counts the union; a type the event does not name adds nothing.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from planner_support import NBA_RELATIONS, D, event, registry_from, relations_for

from scoperouter.execution_log.entity_counts import mapped_count
from scoperouter.router.planner import plan

AS_OF = D + timedelta(days=10)

REG = registry_from(
    {
        "version": 1,
        **NBA_RELATIONS,
        "processors": {
            # identity + teammates
            "p_mates": {
                "phase": 3,
                "granularity": "player",
                "inputs": [
                    {"source": "raw.inj", "also_map": {"player": ["player_team", "team_players"]}},
                    {
                        "source": "raw.sched",
                        "map": {"game": ["game_teams", "team_players"]},
                        "also_map": {"player": ["player_team", "team_players"]},
                    },
                ],
                "max_entities": 5,
            },
            # the same inputs without also_map: the control
            "p_own": {
                "phase": 3,
                "granularity": "player",
                "inputs": [{"source": "raw.inj"}],
                "max_entities": 4,
            },
            # a team processor: implicit single relation player -> team, plus the opponent
            "p_team": {
                "phase": 3,
                "granularity": "team",
                "inputs": [
                    {
                        "source": "raw.inj",
                        "also_map": {"player": ["player_games", "game_teams"]},
                    }
                ],
            },
            # games lookback: a date-scope decision keeps the teammates' later games
            "p_games": {
                "phase": 4,
                "granularity": "player",
                "inputs": [
                    {"source": "raw.inj", "also_map": {"player": ["player_team", "team_players"]}}
                ],
                "lookback": {"games": 1, "via": "player_games"},
                "max_entities": 1,
            },
        },
    }
)

ROWS: dict[str, list[tuple[date | None, str, str]]] = {
    "team_players": [
        (D, "T1", "p1"),
        (D, "T1", "p2"),
        (D, "T1", "p3"),
        (D, "T2", "p4"),
        (D, "T2", "p5"),
        (D, "T3", "p6"),
        (D, "T3", "p7"),
        (D, "T3", "p8"),
        (D + timedelta(days=1), "T2", "p9"),  # joins T2 tomorrow: not a teammate on D
    ],
    "game_teams": [(D, "G1", "T1"), (D, "G1", "T2")],
    "player_games": [
        (D, "p1", "G1"),
        (D, "p2", "G1"),
        (D, "p4", "G1"),
        (D + timedelta(days=2), "p2", "G2"),
        (D + timedelta(days=3), "p3", "G3"),
    ],
}
REL = relations_for(REG, ROWS)


def _decide(processor: str, **fields: Any) -> tuple[str, str | None, tuple[str, ...] | None]:
    dec = next(x for x in plan(REG, REL, event(REG, **fields), AS_OF) if x.processor == processor)
    return dec.reason, dec.scope, dec.entity_ids


CASES = [
    # (name, processor, event fields, (reason, scope, ids))
    (
        "identity_plus_teammates",
        "p_mates",
        {"source": "raw.inj", "affected_entities": {"players": ["p1"]}},
        ("entity_scope", "entities", ("p1", "p2", "p3")),
    ),
    (
        "control_without_also_map_is_identity_only",
        "p_own",
        {"source": "raw.inj", "affected_entities": {"players": ["p1"]}},
        ("entity_scope", "entities", ("p1",)),
    ),
    (
        "two_teams_united_at_the_threshold",
        "p_mates",
        {"source": "raw.inj", "affected_entities": {"players": ["p1", "p4"]}},
        # 5 ids == max_entities 5: inclusive
        ("entity_scope", "entities", ("p1", "p2", "p3", "p4", "p5")),
    ),
    (
        "union_past_the_threshold",
        "p_mates",
        {"source": "raw.inj", "affected_entities": {"players": ["p1", "p6"]}},
        # 2 named ids, 6 after the union > max_entities 5: the union counts
        ("fallback_threshold", "date", None),
    ),
    (
        "id_without_team_row_is_empty_mapping",
        "p_mates",
        {"source": "raw.inj", "affected_entities": {"players": ["p1", "ghost"]}},
        ("empty_mapping", "date", None),
    ),
    (
        "roster_of_the_event_date_only",
        "p_mates",
        {
            "source": "raw.inj",
            "game_date": (D + timedelta(days=1)).isoformat(),
            "affected_entities": {"players": ["p9"]},
        },
        ("entity_scope", "entities", ("p9",)),
    ),
    (
        "type_not_named_has_no_effect",
        "p_mates",
        {"source": "raw.sched", "affected_entities": {"games": ["G1"]}},
        # G1 -> T1, T2 -> their five players: exactly what map gives, nothing added
        ("entity_scope", "entities", ("p1", "p2", "p3", "p4", "p5")),
    ),
    (
        "also_map_beside_map_of_another_type",
        "p_mates",
        {"source": "raw.sched", "affected_entities": {"players": ["p6"]}},
        ("entity_scope", "entities", ("p6", "p7", "p8")),
    ),
    (
        "team_granularity_adds_the_opponent",
        "p_team",
        {"source": "raw.inj", "affected_entities": {"players": ["p1"]}},
        ("entity_scope", "entities", ("T1", "T2")),
    ),
    (
        "also_map_reaching_nothing_on_team_granularity",
        "p_team",
        {"source": "raw.inj", "affected_entities": {"players": ["p6"]}},
        ("empty_mapping", "date", None),
    ),
]


@pytest.mark.parametrize(("name", "processor", "fields", "want"), CASES, ids=[c[0] for c in CASES])
def test_also_map_decision(
    name: str,
    processor: str,
    fields: dict[str, Any],
    want: tuple[str, str | None, tuple[str, ...] | None],
) -> None:
    """Each case's decision: reason, scope and ids."""
    assert _decide(processor, **fields) == want


def test_also_map_date_scope_keeps_teammates_later_games() -> None:
    """A date-scope decision with a games lookback also covers the teammates' next games."""
    dec = next(
        x
        for x in plan(
            REG,
            REL,
            event(REG, source="raw.inj", affected_entities={"players": ["p1"]}),
            AS_OF,
        )
        if x.processor == "p_games"
    )
    assert (dec.reason, dec.scope) == ("fallback_threshold", "date")
    # p3 (a teammate, no game on D) plays on D+3: that date is covered
    assert D + timedelta(days=3) in dec.dates
    assert D + timedelta(days=2) in dec.dates


def test_also_map_mapped_count_counts_the_union() -> None:
    """The execution log's mapped_count mirrors the planner: the union of both paths."""
    ev = event(REG, source="raw.inj", affected_entities={"players": ["p1"]})
    assert mapped_count(REG, REL, ev, "p_mates", D) == 3
    assert mapped_count(REG, REL, ev, "p_own", D) == 1
    ghost = event(REG, source="raw.inj", affected_entities={"players": ["ghost"]})
    assert mapped_count(REG, REL, ghost, "p_mates", D) is None

"""A games lookback (``occurrences: N, via: R``) for an id that R does not know at all (no
dated row, no undated one): its next N occurrences are unknown, so every date after D up
to as-of is covered, as for a date on which R has no rows -- never only the dates R has no
rows on (a player missing from the schedule data would lose the dates it does cover).
Entity scope, and date scope through the ids the event names (``known_ids``).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from planner_support import D, event, registry_from, relations_for

from scoperouter.router.planner import plan


def d(n: int) -> date:
    return D + timedelta(days=n)


AS_OF = d(10)
EVERY_DATE = tuple(d(k) for k in range(11))

REG = registry_from(
    {
        "version": 1,
        "entities": {"player": {}, "team": {}, "game": {}},
        "relations": {
            "player_games": {"from": "player", "to": "game"},
            "team_players": {"from": "team", "to": "player"},
        },
        "processors": {
            "by_player": {
                "phase": 4,
                "granularity": "player",
                "inputs": [{"source": "raw.players"}, {"source": "raw.teams"}],
                "lookback": {"games": 1, "via": "player_games"},
            },
            "capped": {
                "phase": 4,
                "granularity": "player",
                "inputs": [{"source": "raw.teams"}],
                "lookback": {"games": 1, "via": "player_games"},
                "max_entities": 1,
            },
            "by_date": {
                "phase": 4,
                "granularity": "date",
                "inputs": [{"source": "raw.players"}],
                "lookback": {"games": 1, "via": "player_games"},
            },
        },
    }
)

# Every date has a player_games row (filler plays daily), so no date is unknown; lebron's
# next game after D is D+3; newguy has no player_games row at all. PHX has no roster.
ROWS: dict[str, list[tuple[date | None, str, str]]] = {
    "player_games": [
        *((d(k), "filler", f"G{k}") for k in range(11)),
        (D, "lebron", "G0"),
        (d(3), "lebron", "G3"),
        (d(6), "lebron", "G6"),
    ],
    # LAL's roster on D; BOS's on every date keeps each later date loaded (an unloaded one
    # the lookback reaches would make the team's decision unknown_relation_date)
    "team_players": [
        (D, "LAL", "lebron"),
        (D, "LAL", "newguy"),
        *((d(k), "BOS", "filler") for k in range(11)),
    ],
}

CASES: list[tuple[str, str, str, dict[str, Any], tuple[str, str, tuple[date, ...]]]] = [
    # (name, processor, source, affected_entities, expected (reason, scope, dates))
    (
        "a_known_id_gets_its_next_game",
        "by_player",
        "raw.players",
        {"players": ["lebron"]},
        ("entity_scope", "entities", (D, d(3))),
    ),
    (
        "an_unknown_id_gets_every_date_to_as_of",
        "by_player",
        "raw.players",
        {"players": ["newguy"]},
        ("entity_scope", "entities", EVERY_DATE),
    ),
    (
        "one_unknown_id_among_known_ones",
        "by_player",
        "raw.players",
        {"players": ["lebron", "newguy"]},
        ("entity_scope", "entities", EVERY_DATE),
    ),
    (
        "a_team_whose_roster_holds_an_unknown_id",
        "by_player",
        "raw.teams",
        {"teams": ["LAL"]},
        ("entity_scope", "entities", EVERY_DATE),
    ),
    (
        "date_scope_known_ids_of_the_event",
        "by_date",
        "raw.players",
        {"players": ["lebron"]},
        ("date_granularity", "date", (D, d(1), d(3))),
    ),
    (
        "date_scope_an_unknown_id_of_the_event",
        "by_date",
        "raw.players",
        {"players": ["newguy"]},
        ("date_granularity", "date", EVERY_DATE),
    ),
    (
        # PHX has no roster (empty_mapping); LAL's roster still names newguy
        "empty_mapping_an_unknown_id_the_known_rows_reach",
        "by_player",
        "raw.teams",
        {"teams": ["LAL", "PHX"]},
        ("empty_mapping", "date", EVERY_DATE),
    ),
    (
        "fallback_threshold_an_unknown_id_among_the_mapped",
        "capped",
        "raw.teams",
        {"teams": ["LAL"]},
        ("fallback_threshold", "date", EVERY_DATE),
    ),
]


@pytest.mark.parametrize(
    ("name", "processor", "source", "entities", "expected"), CASES, ids=[c[0] for c in CASES]
)
def test_unknown_via_id(
    name: str,
    processor: str,
    source: str,
    entities: dict[str, Any],
    expected: tuple[str, str, tuple[date, ...]],
) -> None:
    """An id the via relation does not know at all covers every date up to as-of."""
    ev = event(REG, source=source, affected_entities=entities)
    [dec] = [x for x in plan(REG, relations_for(REG, ROWS), ev, AS_OF) if x.processor == processor]
    assert (dec.reason, dec.scope, dec.dates) == expected

"""A relation with dated rows and undated ones: a date outside the dated span is unknown.

SPEC says an undated row holds on every date. For a relation that also has dated rows, a
date before the first of them or after the last is a date whose data is not loaded yet (a
roster file up to yesterday), and its undated rows alone would name only part of who is
related then: a map hop through it on such a date is ``empty_mapping`` (the full date), as
it is for a wholly dated relation (docs/registry.md, "Entity mapping"). A date inside the
span with no dated row is known: only the undated rows hold then. A wholly undated relation
still holds on every date.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from planner_support import NBA_RELATIONS, D, event, registry_from, relations_for

from scoperouter.execution_log.entity_counts import mapped_count
from scoperouter.router.planner import plan

D1 = D + timedelta(days=1)
D2 = D + timedelta(days=2)
Rows = dict[str, list[tuple[date | None, str, str]]]

DATED = [(D, "LAL", "p1"), (D, "LAL", "p2"), (D, "BOS", "b1")]
MIXED: Rows = {"team_players": [*DATED, (None, "LAL", "newguy")]}
UNDATED: Rows = {"team_players": [(None, "LAL", "p1"), (None, "LAL", "newguy")]}
ONLY_DATED: Rows = {"team_players": DATED}
# dated on D and D2: D1 is a day inside the span with no dated row (known; undated rows hold)
SPANNED: Rows = {"team_players": [*DATED, (D2, "LAL", "p1"), (None, "LAL", "newguy")]}


def _reg(inp: dict[str, Any]) -> Any:
    proc = {"phase": 3, "granularity": "player", "inputs": [inp], "max_entities": 10}
    return registry_from({"version": 1, **NBA_RELATIONS, "processors": {"ctx": proc}})


TEAM_INPUT = {"source": "raw.team"}  # team -> player: the single relation team_players
INJURY_INPUT = {"source": "raw.injury", "also_map": {"player": ["player_team", "team_players"]}}

CASES = [
    # (name, input, rows, event date, entities, expected (reason, scope, ids))
    (
        "mixed_on_a_dated_date_adds_the_undated_row",
        TEAM_INPUT,
        MIXED,
        D,
        {"teams": ["LAL"]},
        ("entity_scope", "entities", ("newguy", "p1", "p2")),
    ),
    (
        "mixed_on_a_date_without_dated_rows_is_empty_mapping",
        TEAM_INPUT,
        MIXED,
        D1,
        {"teams": ["LAL"]},
        ("empty_mapping", "date", None),
    ),
    (
        "mixed_inside_the_span_without_dated_rows_keeps_the_undated_rows",
        TEAM_INPUT,
        SPANNED,
        D1,
        {"teams": ["LAL"]},
        ("entity_scope", "entities", ("newguy",)),
    ),
    (
        "mixed_past_the_span_is_empty_mapping",
        TEAM_INPUT,
        SPANNED,
        D + timedelta(days=3),
        {"teams": ["LAL"]},
        ("empty_mapping", "date", None),
    ),
    (
        "wholly_dated_on_a_date_without_rows_is_empty_mapping",
        TEAM_INPUT,
        ONLY_DATED,
        D1,
        {"teams": ["LAL"]},
        ("empty_mapping", "date", None),
    ),
    (
        "wholly_undated_holds_on_every_date",
        TEAM_INPUT,
        UNDATED,
        D1,
        {"teams": ["LAL"]},
        ("entity_scope", "entities", ("newguy", "p1")),
    ),
    (
        # the player's team (undated row) and then the roster: both hops unknown on D1
        "mixed_at_both_hops_of_also_map_is_empty_mapping",
        INJURY_INPUT,
        MIXED,
        D1,
        {"players": ["newguy"]},
        ("empty_mapping", "date", None),
    ),
    (
        "mixed_also_map_on_a_dated_date",
        INJURY_INPUT,
        MIXED,
        D,
        {"players": ["newguy"]},
        ("entity_scope", "entities", ("newguy", "p1", "p2")),
    ),
]


@pytest.mark.parametrize(
    ("name", "inp", "rows", "day", "ents", "expected"), CASES, ids=[c[0] for c in CASES]
)
def test_mixed_relation_dates(
    name: str,
    inp: dict[str, Any],
    rows: Rows,
    day: date,
    ents: dict[str, list[str]],
    expected: tuple[str, str, tuple[str, ...] | None],
) -> None:
    """A map hop through a dated relation on a date outside its dated span is empty_mapping;
    inside the span, a date with no dated row keeps the undated rows only."""
    reg = _reg(inp)
    ev = event(reg, source=inp["source"], game_date=day.isoformat(), affected_entities=ents)
    (dec,) = plan(reg, relations_for(reg, rows), ev, day)
    assert (dec.reason, dec.scope, dec.entity_ids) == expected


@pytest.mark.parametrize(("day", "expected"), [(D, 3), (D1, None)])
def test_mapped_count_follows_the_same_rule(day: date, expected: int | None) -> None:
    """The execution log's entity count knows no ids where the planner's mapping knows none."""
    reg = _reg(TEAM_INPUT)
    ev = event(
        reg, source="raw.team", game_date=day.isoformat(), affected_entities={"teams": ["LAL"]}
    )
    assert mapped_count(reg, relations_for(reg, MIXED), ev, "ctx", day) == expected

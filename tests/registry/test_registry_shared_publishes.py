"""A source published by several processors (a `duplicate_publishes` warning, not an error):
the entity type of its flat ``entities_changed`` lists (SPEC section 3: "the granularity of
the processor that publishes the source") is only known when every publisher agrees."""

from __future__ import annotations

import pytest
from tests.planner.planner_support import NBA_ROWS, D, event, relations_for

from scoperouter.processor_registry.loader import check_config_bytes, load_config_text
from scoperouter.router.planner import plan

# {first} and {second} publish raw.out; {first} is listed first in the YAML
TWO_PUBLISHERS = """\
version: 1
entities: {{player: {{}}, team: {{}}}}
relations:
  team_players: {{from: team, to: player}}
relation_data: {{csv: {{dir: rel}}}}
{sources}processors:
  {first}:
    phase: 3
    granularity: {first_gran}
    inputs: [{{source: raw.boxscores}}]
    publishes: raw.out
  {second}:
    phase: 3
    granularity: {second_gran}
    inputs: [{{source: raw.injuries}}]
    publishes: raw.out
  consumer:
    phase: 4
    granularity: player
    inputs: [{{source: raw.out}}]
"""


def _text(first: str, first_gran: str, second: str, second_gran: str, sources: str = "") -> str:
    return TWO_PUBLISHERS.format(
        first=first,
        first_gran=first_gran,
        second=second,
        second_gran=second_gran,
        sources=sources,
    )


@pytest.mark.parametrize(
    ("first", "first_gran", "second", "second_gran", "expected"),
    [
        # disagreeing publishers, in every name order and YAML order: no type
        ("a_team", "team", "z_player", "player", None),
        ("z_player", "player", "a_team", "team", None),
        ("a_player", "player", "z_team", "team", None),
        ("z_team", "team", "a_player", "player", None),
        # a date-granularity publisher types nothing, so the source's lists are unknown
        ("a_rank", "date", "z_player", "player", None),
        ("z_rank", "date", "a_player", "player", None),
        # agreeing publishers keep their type
        ("a_player", "player", "z_player", "player", "player"),
    ],
)
def test_source_type_needs_every_publisher_to_agree(
    first: str, first_gran: str, second: str, second_gran: str, expected: str | None
) -> None:
    """A source published at two granularities has no entity type for flat id lists."""
    text = _text(first, first_gran, second, second_gran)
    reg = load_config_text(text, with_relations=False).registry
    assert reg.entity_type_of_source("raw.out") == expected


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("a_team", "z_player"),
        ("z_player", "a_team"),
        ("a_player", "z_team"),
        ("z_team", "a_player"),
    ],
)
def test_flat_team_ids_never_scope_player_consumer_as_players(first: str, second: str) -> None:
    """A team publisher's flat ids ["LAL"] never reach a player consumer as player "LAL"."""
    grans = {n: ("team" if "team" in n else "player") for n in (first, second)}
    reg = load_config_text(
        _text(first, grans[first], second, grans[second]), with_relations=False
    ).registry
    rels = relations_for(reg, NBA_ROWS)
    ev = event(reg, output_table="raw.out", metadata={"entities_changed": ["LAL"]})
    by_name = {d.processor: d for d in plan(reg, rels, ev, D)}
    got = by_name["consumer"]
    # the event may come from the team publisher: LAL's players, or the full date
    assert got.action == "run"
    assert got.scope == "date" or set(got.entity_ids or ()) >= {"lebronjames", "anthonydavis"}


@pytest.mark.parametrize(
    ("first", "first_gran", "second", "second_gran", "bad"),
    [
        ("a_team", "team", "z_player", "player", "a_team"),
        ("z_player", "player", "a_team", "team", "a_team"),
        ("a_player", "player", "z_team", "team", "z_team"),
        ("z_team", "team", "a_player", "player", "z_team"),
    ],
)
def test_declared_source_entity_checked_against_every_publisher(
    first: str, first_gran: str, second: str, second_gran: str, bad: str
) -> None:
    """sources: raw.out {entity: player} is an error when any publisher is team-granular."""
    sources = "sources:\n  raw.out: {entity: player}\n"
    result = check_config_bytes(
        _text(first, first_gran, second, second_gran, sources), with_relations=False
    )
    conflicts = [i for i in result.errors if i.code == "source_entity_conflict"]
    assert [(i.line, i.column) for i in conflicts] == [(7, 21)]
    assert bad in conflicts[0].message

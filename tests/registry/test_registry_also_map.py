"""also_map is validated like map: every finding is positioned (file:line:col); an unknown
type or relation, or a path that does not chain from the type to the granularity, is an
error; on a date-granularity processor it is a map_ignored warning; on the granularity's
own type it is valid (identity, plus the path)."""

from __future__ import annotations

import pytest

from scoperouter.processor_registry.loader import check_config_bytes

BASE = """\
version: 1
entities:
  player: {}
  team: {}
  game: {}
relations:
  team_players: {from: team, to: player}
  player_team: {inverse_of: team_players}
  game_teams: {from: game, to: team}
relation_data: {csv: {dir: relations}}
processors:
  summary:
    phase: 3
    granularity: player
    inputs:
      - source: raw.injury
        also_map: ALSO
"""


def _issues(also: str, granularity: str = "player") -> list[tuple[str, str, int, int, str]]:
    text = BASE.replace("ALSO", also).replace("granularity: player", f"granularity: {granularity}")
    result = check_config_bytes(text, file="routes.yaml", with_relations=False)
    return [
        (i.severity, i.code, i.line or 0, i.column or 0, ".".join(map(str, i.path)))
        for i in result.issues
        if i.code != "unmapped_input"
    ]


def test_also_map_teammates_is_valid() -> None:
    """player -> team -> players on a player processor: no finding (identity is kept)."""
    assert _issues("{player: [player_team, team_players]}") == []


@pytest.mark.parametrize(
    ("also", "want"),
    [
        (
            "{player: [player_team, team_playrs]}",
            ("error", "unknown_relation", 17, 42, "processors.summary.inputs.0.also_map.player.1"),
        ),
        (
            "{player: [player_team, game_teams]}",
            ("error", "bad_path", 17, 42, "processors.summary.inputs.0.also_map.player.1"),
        ),
        (
            "{player: [player_team]}",
            ("error", "bad_path", 17, 29, "processors.summary.inputs.0.also_map.player.0"),
        ),
        (
            "{player: [team_players]}",
            ("error", "bad_path", 17, 29, "processors.summary.inputs.0.also_map.player.0"),
        ),
        (
            "{player: []}",
            ("error", "bad_path", 17, 20, "processors.summary.inputs.0.also_map.player"),
        ),
        (
            "{coach: [player_team, team_players]}",
            ("error", "unknown_entity", 17, 20, "processors.summary.inputs.0.also_map.coach"),
        ),
    ],
)
def test_also_map_bad_path_is_a_positioned_error(
    also: str, want: tuple[str, str, int, int, str]
) -> None:
    """A wrong also_map is one error at the offending key or hop."""
    assert _issues(also) == [want]


def test_also_map_on_date_granularity_warns_map_ignored() -> None:
    """also_map can never apply to a date-granularity processor: map_ignored warning."""
    got = _issues("{player: [player_team, team_players]}", granularity="date")
    assert got == [
        ("warning", "map_ignored", 17, 20, "processors.summary.inputs.0.also_map.player")
    ]


def test_also_map_message_names_the_key() -> None:
    """A path starting at the wrong type says 'also_map', not 'map'."""
    text = BASE.replace("ALSO", "{player: [team_players]}")
    result = check_config_bytes(text, file="routes.yaml", with_relations=False)
    (issue,) = [i for i in result.issues if i.code == "bad_path"]
    assert "also_map key's type 'player'" in issue.message
    assert issue.format().startswith("routes.yaml:17:29: error: ")

"""SPEC section 2: "`relation_data` is required when any relation is used" -- by a `map` or
`also_map` path, a lookback's `via`, or the single relation from an event's type to a
processor's granularity. Relations declared but used by nothing need no data."""

from __future__ import annotations

import pytest

from scoperouter.processor_registry.loader import check_config_bytes

HEAD = """\
version: 1
entities: {player: {}, team: {}, game: {}}
relations:
"""


def _proc(granularity: str, extra: str = "") -> str:
    return (
        "processors:\n"
        "  p:\n"
        "    phase: 3\n"
        f"    granularity: {granularity}\n"
        "    inputs:\n"
        "      - source: nba_raw.boxscores\n"
        f"{extra}"
    )


TEAM_PLAYERS = "  team_players: {from: team, to: player}\n"
PLAYER_TEAM = "  player_team: {inverse_of: team_players}\n"
PLAYER_GAMES = "  player_games: {from: player, to: game}\n"
GAME_TEAMS = "  game_teams: {from: game, to: team}\n"
TEAM_BENCH = "  team_bench: {from: team, to: player}\n"


@pytest.mark.parametrize(
    ("relations", "processor", "needs_data"),
    [
        # used by nothing: no processor is game- or team-granular, no path, no via
        (TEAM_PLAYERS, _proc("game"), False),
        (TEAM_PLAYERS + PLAYER_GAMES, _proc("date"), False),
        # two relations team -> player: neither is "the single relation", no map uses one
        (TEAM_PLAYERS + TEAM_BENCH, _proc("player"), False),
        # the single relation team -> player, used implicitly by a player processor
        (TEAM_PLAYERS, _proc("player"), True),
        # an inverse relation used implicitly: its base relation's rows are needed
        (TEAM_PLAYERS + PLAYER_TEAM, _proc("team"), True),
        # a map path
        (
            TEAM_PLAYERS + TEAM_BENCH + GAME_TEAMS,
            _proc("player", "        map: {game: [game_teams, team_bench]}\n"),
            True,
        ),
        # an also_map path
        (
            TEAM_PLAYERS + PLAYER_TEAM,
            _proc("player", "        also_map: {player: [player_team, team_players]}\n"),
            True,
        ),
        # a lookback's via
        (
            PLAYER_GAMES,
            _proc("game", "    lookback: {games: 3, via: player_games}\n").replace(
                "granularity: game", "granularity: date"
            ),
            True,
        ),
    ],
    ids=["unused", "date-only", "two-candidates", "single", "inverse", "map", "also_map", "via"],
)
def test_relation_data_required_only_when_a_relation_is_used(
    relations: str, processor: str, needs_data: bool
) -> None:
    """missing_relation_data is reported exactly when some relation is used."""
    result = check_config_bytes(HEAD + relations + processor, with_relations=False)
    codes = [i.code for i in result.errors]
    assert ("missing_relation_data" in codes) == needs_data, codes
    if needs_data:
        [err] = [i for i in result.errors if i.code == "missing_relation_data"]
        assert (err.line, err.column) == (3, 1)  # the relations key
    else:
        assert not result.errors

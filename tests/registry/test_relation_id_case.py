"""Relation ids of one entity type that differ only by case (``LAL`` and ``lal``) are two
entities: an event naming one never reaches the other's rows. Loading says so with a
``relation_id_case`` warning at the file:line of the second spelling (``validate``
prints it, ``--strict`` fails on it, ``validate.ignore`` silences it)."""

from __future__ import annotations

from pathlib import Path

import pytest
from warning_cases import WARNING_CASE_KEYS, warning_cases

from scoperouter.cli import main
from scoperouter.processor_registry.loader import check_config, load_config

ROUTES = """\
version: 1
entities: {player: {}, team: {}, game: {}}
relations:
  team_players: {from: team, to: player}
  player_team: {inverse_of: team_players}
  game_teams: {from: game, to: team}
relation_data:
  csv: {dir: rel}
processors:
  p:
    phase: 3
    granularity: player
    inputs: [{source: raw.box, map: {game: [game_teams, team_players]}}]
"""

HEADER = "date,from,to\n"

CASES: list[tuple[str, dict[str, str], list[tuple[str, int, str, str]]]] = [
    # (name, CSV bodies, expected warnings (file, line, second spelling, first spelling))
    (
        "same_file_from_column",
        {"team_players": ",LAL,lebron\n,lal,ad\n"},
        [("team_players.csv", 3, "lal", "LAL")],
    ),
    (
        "same_file_to_column",
        {"team_players": ",LAL,lebron\n,BOS,LeBron\n"},
        [("team_players.csv", 3, "LeBron", "lebron")],
    ),
    (
        "across_files_one_entity_type",
        {"team_players": ",LAL,lebron\n", "game_teams": "2025-11-19,G1,lal\n"},
        [("game_teams.csv", 2, "lal", "LAL")],
    ),
    (
        "one_warning_per_spelling",
        {"team_players": ",LAL,lebron\n,lal,ad\n2025-11-19,lal,ad\n,Lal,x\n"},
        [("team_players.csv", 3, "lal", "LAL"), ("team_players.csv", 5, "Lal", "LAL")],
    ),
    (
        "different_entity_types_do_not_clash",
        {"team_players": ",LAL,lal\n", "game_teams": "2025-11-19,lal,LAL\n"},
        [],
    ),
    (
        "one_spelling_repeated_is_no_warning",
        {"team_players": ",LAL,lebron\n2025-11-19,LAL,lebron\n"},
        [],
    ),
]


def _write(tmp_path: Path, bodies: dict[str, str]) -> Path:
    (tmp_path / "rel").mkdir()
    for name in ("team_players", "game_teams"):
        (tmp_path / "rel" / f"{name}.csv").write_text(HEADER + bodies.get(name, ""), "utf-8")
    routes = tmp_path / "routes.yaml"
    routes.write_text(ROUTES, encoding="utf-8")
    return routes


@pytest.mark.parametrize(("name", "bodies", "expected"), CASES, ids=[c[0] for c in CASES])
def test_ids_differing_only_by_case_warn_at_the_second_spelling(
    tmp_path: Path, name: str, bodies: dict[str, str], expected: list[tuple[str, int, str, str]]
) -> None:
    """Each second spelling of an id of one entity type is a warning at its file:line."""
    result = check_config(_write(tmp_path, bodies))
    assert result.valid
    found = [w for w in result.warnings if w.code == "relation_id_case"]
    assert [(Path(w.file).name, w.line) for w in found] == [(f, n) for f, n, _s, _t in expected]
    for w, (_f, _n, second, first) in zip(found, expected, strict=True):
        assert f"'{second}'" in w.message and f"'{first}'" in w.message
    assert load_config(tmp_path / "routes.yaml").warnings == result.warnings


@pytest.mark.parametrize(WARNING_CASE_KEYS, warning_cases("relation_id_case"))
def test_validate_shows_a_case_clash(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    extra: str,
    args: list[str],
    code: int,
    shown: bool,
) -> None:
    """validate prints the warning (file:line), --strict fails on it, an ignore silences it."""
    routes = _write(tmp_path, {"team_players": ",LAL,lebron\n,lal,ad\n"})
    routes.write_text(ROUTES + extra, encoding="utf-8")
    assert main(["validate", *args, str(routes)]) == code
    err = capsys.readouterr().err
    assert (f"{tmp_path / 'rel' / 'team_players.csv'}:3:" in err) == shown

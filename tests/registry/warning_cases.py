"""The cases every relation-data warning's ``validate`` test runs: shown without
``--strict`` (exit 0), failing with it, silenced by ``validate.ignore`` in routes.yaml or by
``--ignore`` (shared by test_relation_every_day, _mixed_dates and _id_case)."""

from __future__ import annotations

from pathlib import Path

WARNING_CASE_KEYS = ("extra", "args", "code", "shown")


def warning_cases(code: str) -> list[tuple[str, list[str], int, bool]]:
    """(routes.yaml extra, validate's arguments, its exit code, whether the warning shows)."""
    return [
        ("", [], 0, True),
        ("", ["--strict"], 1, True),
        (f"validate: {{ignore: [{code}]}}\n", ["--strict"], 0, False),
        ("", ["--strict", "--ignore", code], 0, False),
    ]


# one relation (team_players, dated or not) feeding one processor: the relation-data
# warnings' tests write its CSV body
ONE_RELATION_TEMPLATE = """\
version: 1
entities: {player: {}, team: {}}
relations:
  team_players: {from: team, to: player%s}
  player_team: {inverse_of: team_players%s}
relation_data:
  csv: {dir: rel}
processors:
  p:
    phase: 3
    granularity: player
    inputs: [{source: raw.box, map: {team: [team_players]}}]
"""
"""``%`` (what the base relation adds, what its inverse adds): ``every_day`` settings."""
ONE_RELATION_ROUTES = ONE_RELATION_TEMPLATE % ("", "")


def write_one_relation(
    tmp_path: Path, body: str, extra: str = "", *, every_day: bool = False
) -> Path:
    """``ONE_RELATION_ROUTES`` (``every_day`` on the base relation: ``every_day: true``;
    + ``extra``) and ``rel/team_players.csv`` holding ``body`` under its header; the
    routes.yaml's path."""
    (tmp_path / "rel").mkdir()
    (tmp_path / "rel" / "team_players.csv").write_text("date,from,to\n" + body, "utf-8")
    routes = tmp_path / "routes.yaml"
    base = ", every_day: true" if every_day else ""
    routes.write_text(ONE_RELATION_TEMPLATE % (base, "") + extra, encoding="utf-8")
    return routes

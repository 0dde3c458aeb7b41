"""A small registry for the relation reload tests: teams, players and games, the relations
team_players (with its inverse player_team) and game_teams, their CSVs in ``<tmp>/rel``."""

from __future__ import annotations

import argparse
from datetime import date
from pathlib import Path
from typing import Any

DAY = date(2025, 11, 19)
ROSTER = "date,from,to\n,LAL,p1\n,LAL,p2\n,LAL,p3\n,LAL,p4\n"
SCHEDULE = "date,from,to\n2025-11-19,g1,LAL\n2025-11-19,g1,BOS\n"


def small_registry(tmp: Path, *, ready_file: str | None = None) -> Path:
    """routes.yaml of the small registry in ``tmp``, the CSVs (ROSTER, SCHEDULE) in
    ``tmp/rel``; ``ready_file`` names its relation_data.csv.ready_file."""
    rel = tmp / "rel"
    rel.mkdir(parents=True)
    (rel / "team_players.csv").write_text(ROSTER, encoding="utf-8")
    (rel / "game_teams.csv").write_text(SCHEDULE, encoding="utf-8")
    ready = f", ready_file: {ready_file}" if ready_file else ""
    path = tmp / "routes.yaml"
    path.write_text(
        f"""version: 1
entities: {{team: {{}}, player: {{}}, game: {{}}}}
relations:
  team_players: {{from: team, to: player}}
  player_team: {{inverse_of: team_players}}
  game_teams: {{from: game, to: team}}
relation_data:
  csv: {{dir: rel{ready}}}
sources:
  raw.team_stats: {{entity: team}}
defaults:
  window: {{quiet: 10s, max_wait: 1m}}
  target: {{outbox: {{}}}}
processors:
  player_summary:
    phase: 1
    granularity: player
    inputs: [{{source: raw.team_stats}}]
    publishes: mart.player_summary
""",
        encoding="utf-8",
    )
    return path


def recording_router() -> tuple[Any, list[Any]]:
    """A router stand-in and the list of the relation stores handed to it, in order."""
    got: list[Any] = []
    return argparse.Namespace(set_relations=got.append), got


def players(relations: Any) -> set[str]:
    """The players LAL reaches on DAY."""
    return set(relations.targets("team_players", DAY, "LAL"))

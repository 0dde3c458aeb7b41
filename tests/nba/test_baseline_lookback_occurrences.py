"""The demo's date-level baseline re-runs a lookback's later dates by the router's
occurrence rule: an undated ``via`` row holds on every date (its entity occurs on
D+1..D+N), and a date with no dated ``via`` row says nothing about who occurred, so every
date up to as-of may follow. A baseline that skipped them would miss updates the router
makes, and the demo would blame the registry."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from scoperouter.examples.nba.routers import lookback_dates
from scoperouter.processor_registry.loader import load_config_text
from scoperouter.processor_registry.relations import InMemoryRelations, Row

D = date(2025, 11, 10)
AS_OF = D + timedelta(days=6)
REGISTRY = """\
version: 1
entities: {team: {}, game: {}}
relations:
  team_games: {from: team, to: game}
  game_teams: {inverse_of: team_games}
relation_data: {csv: {dir: unused}}
processors:
  form:
    phase: 1
    granularity: team
    inputs: [{source: raw.box}]
    lookback: {occurrences: 2, via: team_games}
"""


def _days(*offsets: int) -> tuple[date, ...]:
    return tuple(D + timedelta(days=k) for k in offsets)


def _row(offset: int | None, team: str) -> Row:
    return (None if offset is None else D + timedelta(days=offset), team, f"g-{team}-{offset}")


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        # dated rows only: A plays on D, D+2, D+5 -> its next two games
        ([_row(0, "A"), _row(2, "A"), _row(5, "A")], _days(2, 5)),
        # B's undated row: B occurs on every date, so D+1 and D+2 are its next two
        ([_row(0, "A"), _row(2, "A"), _row(5, "A"), _row(None, "B")], _days(1, 2, 5)),
        # no dated row on D (only an undated one): D is unknown -> every date to as-of
        ([_row(None, "B"), _row(3, "A")], _days(1, 2, 3, 4, 5, 6)),
    ],
    ids=["dated_only", "undated_row_occurs_every_date", "unknown_event_date"],
)
def test_baseline_lookback_dates(rows: list[Row], expected: tuple[date, ...]) -> None:
    """lookback_dates follows undated via rows and unknown dates as the router does."""
    reg = load_config_text(REGISTRY, with_relations=False).registry
    rel = InMemoryRelations({"team_games": rows}, types={"team_games": ("team", "game")})
    assert lookback_dates(reg.processors["form"], rel, D, AS_OF) == expected

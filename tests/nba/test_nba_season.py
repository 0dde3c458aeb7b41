"""The synthetic season and its relation data."""

from __future__ import annotations

import csv
import re
from collections import Counter
from datetime import date
from pathlib import Path

import pytest
from nba_support import REPO

from scoperouter.examples.nba.league import TEAMS
from scoperouter.examples.nba.season import (
    DEFAULT_GAME_DATE,
    DEFAULT_SEED,
    RAW_SOURCES,
    Season,
    generate_season,
    relation_rows,
    write_relations,
    write_relations_for_seed,
)


@pytest.fixture(scope="module")
def season() -> Season:
    return generate_season()


def test_league_shape(season: Season) -> None:
    """30 real teams, 15 players each (450 unique slugs), 10-15 games every day, NBA game ids."""
    assert sorted(season.rosters) == sorted(TEAMS) and len(TEAMS) == 30
    assert len(season.player_team) == 450
    assert all(re.fullmatch(r"[a-z0-9]+", p) for p in season.player_team)
    per_day = Counter(g.day for g in season.games)
    assert set(per_day.values()) <= set(range(10, 16))
    assert all(re.fullmatch(r"00225\d{5}", g.game_id) for g in season.games)
    for day in per_day:
        teams = [t for g in season.games_on(day) for t in (g.home, g.away)]
        assert len(teams) == len(set(teams))


def test_raw_data_by_date(season: Season) -> None:
    """Box scores exist only before the game day; the game day has lines, props and injuries."""
    gd = season.game_date
    box_days = {r["game_date"] for r in season.raw["nba_raw.nbac_gamebook_player_stats"]}
    assert all(isinstance(d, date) for d in box_days)
    assert max(d for d in box_days if isinstance(d, date)) < gd
    for src in (
        "nba_raw.odds_api_game_lines",
        "nba_raw.odds_api_player_points_props",
        "nba_raw.nbac_injury_report",
        "nba_raw.nbac_schedule",
    ):
        assert any(r["game_date"] == gd for r in season.raw[src]), src
    assert set(season.raw) == set(RAW_SOURCES)


@pytest.mark.parametrize("seed", [1, 99])
def test_deterministic_per_seed(seed: int) -> None:
    """The same seed gives the same season; another seed gives another one."""
    a, b = generate_season(seed), generate_season(seed)
    assert a.raw == b.raw and a.games == b.games and a.rosters == b.rosters
    assert generate_season(seed + 1).raw != a.raw


def test_committed_relations_match_default_season(tmp_path: Path) -> None:
    """data/relations/*.csv is exactly what the default seed generates (and stays small)."""
    write_relations_for_seed(DEFAULT_SEED, tmp_path, DEFAULT_GAME_DATE)
    committed = REPO / "data" / "relations"
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(p.name for p in committed.glob("*.csv"))
    for name in names:
        assert (tmp_path / name).read_bytes() == (committed / name).read_bytes(), name
    assert sum(p.stat().st_size for p in committed.glob("*.csv")) < 2_000_000


def test_relation_rows_follow_the_schedule(season: Season, tmp_path: Path) -> None:
    """Rosters are undated, games/opponents/player games dated and consistent with the schedule."""
    rows = relation_rows(season)
    assert all(d is None for d, _, _ in rows["team_players"])
    g = season.games_on(season.game_date)[0]
    assert (season.game_date, g.home, g.away) in rows["team_opponent"]
    assert (season.game_date, g.game_id, g.away) in rows["game_teams"]
    star = season.rosters[g.home][0]
    assert (season.game_date, star, g.game_id) in rows["player_games"]
    write_relations(season, tmp_path)
    with (tmp_path / "team_opponent.csv").open(newline="") as fh:
        reader = csv.reader(fh)
        assert next(reader) == ["date", "from", "to"]
        first = next(reader)
    assert date.fromisoformat(first[0]) >= season.season_start

"""What every reference processor module shares: source names, production's windows, the
:class:`RefProcessor` record and small numeric helpers.

Invariant: every window constant is the one production's code uses, cited ``path:line`` in
najicham/nba-stats-scraper; ``routes.yaml`` declares lookbacks at least that long.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta

from scoperouter.examples.nba.warehouse import RowDict, TableDef, Warehouse

Ids = frozenset[str] | None
Compute = Callable[[Warehouse, date, Ids], dict[str, RowDict]]

# ---------------------------------------------------------------------- raw (phase 2)
GAMEBOOK = "nba_raw.nbac_gamebook_player_stats"
BDL = "nba_raw.bdl_player_boxscores"
PBP = "nba_raw.nbac_play_by_play"
PROPS = "nba_raw.odds_api_player_points_props"
LINES = "nba_raw.odds_api_game_lines"
SCHEDULE = "nba_raw.nbac_schedule"
INJURY = "nba_raw.nbac_injury_report"
TEAM_BOX = "nba_raw.nbac_team_boxscore"
SCOREBOARD = "nba_raw.nbac_scoreboard_v2"

# ---------------------------------------------------------------------- outputs
PGS = "nba_analytics.player_game_summary"
TDGS = "nba_analytics.team_defense_game_summary"
TOGS = "nba_analytics.team_offense_game_summary"
UPGC = "nba_analytics.upcoming_player_game_context"
UTGC = "nba_analytics.upcoming_team_game_context"
TDZA = "nba_precompute.team_defense_zone_analysis"
PSZA = "nba_precompute.player_shot_zone_analysis"
PCF = "nba_precompute.player_composite_factors"
PDC = "nba_precompute.player_daily_cache"
MLFS = "nba_predictions.ml_feature_store_v2"
LEAGUE = "nba_precompute.league_rankings"
PRED = "nba_predictions.player_prop_predictions"
PEXP = "publishing.player_predictions"
DEXP = "publishing.daily_predictions"

# ---------------------------------------------------------------------- production's windows
# data_processors/precompute/player_shot_zone_analysis/player_shot_zone_analysis_processor.py:453-454
PSZA_GAMES = 10  # sample_window
PSZA_TREND_GAMES = 20  # trend_window
# data_processors/precompute/team_defense_zone_analysis/team_defense_zone_analysis_processor.py:94
TDZA_GAMES = 15
# data_processors/analytics/upcoming_player_game_context/upcoming_player_game_context_processor.py:168
UPGC_HISTORY_DAYS = 30
# data_processors/analytics/upcoming_player_game_context/player_stats.py:67
UPGC_FATIGUE_DAYS = 14
# .../upcoming_player_game_context/team_context.py:749-791 (star_teammates_out): the team's
# STARS, by their player_game_summary rows: >= 10 played games in the season (:763-776,
# :786) and, over the last 10 days (:756; else the season, COALESCE), >= 18 points, or >= 28
# minutes with >= 12 points (:788-790). The season starts at the fixed 2025-10-22 (:771): a
# season at most, so 365 days here, as the daily cache's.
UPGC_STAR_RECENT_DAYS = 10
UPGC_STAR_MIN_GAMES = 10
UPGC_STAR_POINTS = 18
UPGC_STAR_MINUTES = 28
UPGC_STAR_MINUTES_POINTS = 12
UPGC_SEASON_DAYS = 365
# .../upcoming_player_game_context/team_context.py:81 (opponent pace, rn <= 10) and :317
UPGC_LAST_GAMES = 10
# data_processors/precompute/player_composite_factors/player_composite_factors_processor.py:551
PCF_HISTORY_DAYS = 14
# data_processors/precompute/player_daily_cache/player_daily_cache_processor.py:435-444: the
# season (season_year, game_rank <= 82), October to September (shared/config/nba_season_dates.py:136-160),
# so at most 365 days; :251's 180 is the dependency check's lookback_days, not a read window
PDC_SEASON_DAYS = 365
# .../player_daily_cache/aggregators/stats_aggregator.py:40; player_daily_cache_processor.py:470
PDC_LAST_GAMES = 10
# .../player_daily_cache/player_daily_cache_processor.py:532-533: the roster expansion's players
# have a player_game_summary row in the 30 days before the date
PDC_ROSTER_DAYS = 30
# data_processors/precompute/ml_feature_store/feature_extractor.py:661 and :722
MLFS_RECENT_DAYS = 60
MLFS_LAST_GAMES = 10
# data_processors/precompute/ml_feature_store/feature_extractor.py:677 (season lower bound)
MLFS_SEASON_DAYS = 365
# data_processors/precompute/ml_feature_store/feature_extractor.py:1452-1455 (feature 47): the
# injured teammates' usage over the 30 days before the date, games with minutes > 10
MLFS_MATE_USAGE_DAYS = 30
MLFS_MATE_MIN_MINUTES = 10
# data_processors/publishing/tonight_player_exporter.py:301
PEXP_LAST_GAMES = 10

LEAGUE_AVG_ALLOWED = 112.0

# The injury statuses production counts a teammate as missing with:
# data_processors/analytics/upcoming_player_game_context/team_context.py:798 (star_teammates_out)
# and data_processors/precompute/ml_feature_store/feature_extractor.py:1441 (feature 47)
OUT_STATUSES = frozenset({"out", "doubtful"})


@dataclass(frozen=True)
class RefProcessor:
    name: str
    phase: int
    granularity: str  # player | team | date
    entity_type: str  # the entity type of its rows (player | team)
    table: TableDef
    reads: Mapping[str, frozenset[str]]
    compute: Compute

    @property
    def publishes(self) -> str:
        return self.table.source


def table(
    source: str, key: str, cols: tuple[str, ...], structural: tuple[str, ...] = ()
) -> TableDef:
    return TableDef(source, key, cols, structural)


def fs(*cols: str) -> frozenset[str]:
    return frozenset(cols)


def f(x: object) -> float | None:
    return None if x is None else float(x)  # type: ignore[arg-type]


def i(x: object) -> int:
    return 0 if x is None else int(x)  # type: ignore[call-overload]


def r(x: float | None, n: int = 4) -> float | None:
    return None if x is None else round(x, n)


def avg(total: float, n: float) -> float | None:
    return r(total / n) if n else None


def before(day: date, days: int = 1) -> date:
    return day - timedelta(days=days)


def squad_injuries(wh: Warehouse, day: date, players: Iterable[str]) -> dict[str, RowDict]:
    """The injury report on ``day`` for every player rostered on the teams of ``players``
    (their teammates' rows included: the ``also_map`` of the injury inputs in routes.yaml)."""
    teams = {wh.player_team[p] for p in players}
    return wh.rows(INJURY, day, [q for t in sorted(teams) for q in wh.rosters[t]])


def teammates_out(wh: Warehouse, injuries: Mapping[str, RowDict], player: str) -> int:
    """How many of ``player``'s teammates (rostered on his team, himself excluded) are OUT or
    DOUBTFUL in ``injuries`` (the report of one date, see :func:`squad_injuries`)."""
    return sum(
        1
        for q in wh.rosters[wh.player_team[player]]
        if q != player and injuries.get(q, {}).get("injury_status") in OUT_STATUSES
    )

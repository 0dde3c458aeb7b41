"""The reference pipeline: every processor in ``routes.yaml`` (phases 3-6), its output table,
the columns it reads per input source, and how one run executes.

The computations live in :mod:`.phase3`, :mod:`.phase4` and :mod:`.phase56`; each is a
deterministic ``compute(warehouse, day, ids)`` returning one row per entity of its
granularity for ``day`` (every entity of the date for ``ids=None``, else only those ids).

Invariant: ``reads`` lists, per input source, every column a processor reads; the tests
check it against ``routes.yaml`` (the read sources stored in the reference warehouse are
exactly the processor's inputs, and every read column is in the input's ``fields``) -- the
contract that keeps routing and processing in agreement. :func:`run` replaces only the
scope's rows and diffs old against new with :mod:`scoperouter.sdk.change_detection`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

from scoperouter.examples.nba import phase3, phase4, phase56
from scoperouter.examples.nba.refbase import (
    BDL,
    DEXP,
    GAMEBOOK,
    INJURY,
    LEAGUE,
    LINES,
    MLFS,
    PBP,
    PCF,
    PDC,
    PEXP,
    PGS,
    PRED,
    PROPS,
    PSZA,
    SCHEDULE,
    SCOREBOARD,
    TDGS,
    TDZA,
    TEAM_BOX,
    TOGS,
    UPGC,
    UTGC,
    Compute,
    Ids,
    RefProcessor,
    fs,
    table,
)
from scoperouter.examples.nba.warehouse import RAW_TABLES, TableDef, Warehouse
from scoperouter.sdk.change_detection import ChangeDetector, EntityChanges, diff_rows

__all__ = [
    "BY_NAME", "GAMEBOOK", "INJURY", "LINES", "ORDER", "OUTPUT_SOURCES", "PROCESSORS", "PROPS",
    "SCOREBOARD", "TEAM_BOX", "Ids", "RefProcessor", "RunResult", "build_all", "new_warehouse",
    "run",
]  # fmt: skip

_BOX = phase3.BOXCOLS
_TEAM_SUMS = phase3.TEAM_SUMS
_DEF_SUMS = ("points", "rebounds", "fg_made", "fg_attempted", "three_made", "turnovers")


def _p(name: str, phase: int, gran: str, tdef: TableDef, reads: dict[str, frozenset[str]],
       compute: Compute, entity: str | None = None) -> RefProcessor:  # fmt: skip
    return RefProcessor(name, phase, gran, entity or gran, tdef, reads, compute)


PROCESSORS: tuple[RefProcessor, ...] = (
    # ------------------------------------------------------------------ phase 3
    _p("player_game_summary", 3, "player",
       table(PGS, "player", (*_BOX, "plus_minus", "dnp_reason", "paint_fga", "mid_fga",
                             "three_fga", "points_line", "injury_status", "injury_reason",
                             "usage_rate"), ("team", "game_id")),
       {GAMEBOOK: fs(*_BOX, "plus_minus", "dnp_reason"), BDL: fs(*_BOX),
        PBP: fs("paint_fga", "mid_fga", "three_fga"), PROPS: fs("points_line"),
        INJURY: fs("injury_status", "injury_reason"),
        TOGS: fs("fg_attempted", "turnovers", "possessions")},
       phase3.player_game_summary),
    _p("team_defense_game_summary", 3, "team",
       table(TDGS, "team", ("status", "points_allowed", "opp_fg_made", "opp_fg_attempted",
                            "opp_three_made", "opp_paint_fga", "def_rebounds", "steals",
                            "blocks", "points_scored", "margin", "team_rebounds",
                            "team_turnovers", "team_fg_made", "team_fg_attempted",
                            "team_three_made"), ("game_id", "opponent")),
       {SCOREBOARD: fs("status"), GAMEBOOK: fs(*_DEF_SUMS), BDL: fs(*_DEF_SUMS),
        PBP: fs("paint_fga"),
        TEAM_BOX: fs("opp_points", "opp_fg_made", "opp_fg_attempted", "opp_three_made",
                     "def_rebounds", "steals", "blocks")},
       phase3.team_defense_game_summary),
    _p("team_offense_game_summary", 3, "team",
       table(TOGS, "team", ("status", *_TEAM_SUMS, "three_fga", "possessions", "pace"),
             ("game_id",)),
       {SCOREBOARD: fs("status", "periods"), TEAM_BOX: fs("possessions"),
        PBP: fs("three_fga"), GAMEBOOK: fs(*_TEAM_SUMS), BDL: fs(*_TEAM_SUMS)},
       phase3.team_offense_game_summary),
    _p("upcoming_player_game_context", 3, "player",
       table(UPGC, "player", ("opponent", "home", "start_time", "points_line", "over_price",
                              "under_price", "team_spread", "game_total", "player_status",
                              "teammates_out", "star_teammates_out", "points_avg_last_10",
                              "usage_avg_last_10",
                              "games_last_14", "minutes_last_14", "opp_pace_last_10",
                              "opp_points_allowed_last_10"), ("team", "game_id")),
       {SCHEDULE: fs("start_time"), PROPS: fs("points_line", "over_price", "under_price"),
        LINES: fs("spread_home", "total"), INJURY: fs("injury_status"),
        PGS: fs("minutes", "points", "usage_rate"), TOGS: fs("status", "pace"),
        TDGS: fs("status", "points_allowed")},
       phase3.upcoming_player_game_context),
    _p("upcoming_team_game_context", 3, "team",
       table(UTGC, "team", ("opponent", "home", "spread", "total", "players_out",
                            "players_questionable"), ("game_id",)),
       {SCHEDULE: fs(), LINES: fs("spread_home", "total"), INJURY: fs("injury_status")},
       phase3.upcoming_team_game_context),
    # ------------------------------------------------------------------ phase 4
    _p("team_defense_zone_analysis", 4, "team",
       table(TDZA, "team", ("games", "avg_points_allowed", "opp_fg_pct", "avg_opp_three_made",
                            "avg_steals")),
       {TDGS: fs("status", "points_allowed", "opp_fg_made", "opp_fg_attempted",
                 "opp_three_made", "steals")},
       phase4.team_defense_zone_analysis),
    _p("player_shot_zone_analysis", 4, "player",
       table(PSZA, "player", ("games_played", "avg_points", "avg_minutes", "paint_rate",
                              "mid_rate", "three_rate", "paint_rate_last_20")),
       {PGS: fs("minutes", "points", "paint_fga", "mid_fga", "three_fga")},
       phase4.player_shot_zone_analysis),
    _p("player_composite_factors", 4, "player",
       table(PCF, "player", ("opponent", "points_line", "avg_points", "three_rate",
                             "opp_points_allowed", "opp_fg_pct", "team_spread", "game_total",
                             "games_last_14", "minutes_last_14", "back_to_back",
                             "star_teammates_out", "matchup_factor")),
       {UPGC: fs("opponent", "points_line", "home", "star_teammates_out"), UTGC: fs("spread", "total"),
        PSZA: fs("avg_points", "three_rate"), TDZA: fs("avg_points_allowed", "opp_fg_pct"),
        PGS: fs("minutes", "usage_rate")},
       phase4.player_composite_factors),
    _p("player_daily_cache", 4, "player",
       table(PDC, "player", ("games_last_14", "minutes_last_14", "games_played_season",
                             "points_avg_season", "points_avg_last_10", "minutes_avg_last_10",
                             "usage_rate_last_10", "shot_zone_avg_points", "team_pace_last_10")),
       {UPGC: fs("games_last_14", "minutes_last_14"), PGS: fs("minutes", "points", "usage_rate"),
        PSZA: fs("avg_points"), TOGS: fs("status", "pace")},
       phase4.player_daily_cache),
    _p("ml_feature_store", 4, "player",
       table(MLFS, "player", ("points_line", "avg_points", "three_rate", "opp_points_allowed",
                              "matchup_factor", "team_pace", "team_pace_season", "avg_minutes",
                              "usage_rate",
                              "points_avg_last_10", "points_avg_season", "home",
                              "injury_status", "teammate_usage_available", "injury_risk",
                              "star_teammates_out", "game_total")),
       {PCF: fs("opponent", "matchup_factor"), PSZA: fs("avg_points", "three_rate"),
        TDZA: fs("avg_points_allowed"),
        PDC: fs("team_pace_last_10", "minutes_avg_last_10", "usage_rate_last_10"),
        PGS: fs("minutes", "points", "usage_rate"),
        UPGC: fs("home", "player_status", "star_teammates_out", "game_total"),
        PROPS: fs("points_line"),
        TOGS: fs("status", "pace"),
        INJURY: fs("injury_status")},
       phase4.ml_feature_store),
    _p("league_rankings", 4, "date",
       table(LEAGUE, "player", ("points", "minutes", "points_pct")),
       {PGS: fs("points", "minutes")}, phase4.league_rankings, "player"),
    # ------------------------------------------------------------------ phases 5-6
    _p("prediction_coordinator", 5, "player",
       table(PRED, "player", ("predicted_points", "points_line", "edge", "recommendation",
                              "teammate_usage_boost", "teammate_opportunity_score")),
       {MLFS: fs("avg_points", "points_avg_last_10", "opp_points_allowed", "matchup_factor",
                 "team_pace"),
        PROPS: fs("points_line"), UPGC: fs("points_avg_last_10", "player_status"),
        INJURY: fs("injury_status")},
       phase56.prediction_coordinator),
    _p("player_prediction_exporter", 6, "player",
       table(PEXP, "player", ("predicted_points", "points_line", "recommendation", "opponent",
                              "home", "injury_status", "last_10_ppg")),
       {PRED: fs("predicted_points", "points_line", "recommendation"),
        UPGC: fs("opponent", "home"), INJURY: fs("injury_status"), PGS: fs("points")},
       phase56.player_prediction_exporter),
    _p("daily_predictions_exporter", 6, "date",
       table(DEXP, "player", ("predicted_points", "recommendation", "edge", "edge_rank")),
       {PRED: fs("predicted_points", "recommendation", "edge")},
       phase56.daily_predictions_exporter, "player"),
)  # fmt: skip

BY_NAME: Mapping[str, RefProcessor] = {p.name: p for p in PROCESSORS}
OUTPUT_SOURCES: tuple[str, ...] = tuple(p.publishes for p in PROCESSORS)
# Topological order (upstream first). Team offense runs before player game summary, as in
# production (main_analytics_service.py:703-726: usage rate needs team possessions).
ORDER: tuple[str, ...] = (
    "team_defense_game_summary", "team_offense_game_summary", "player_game_summary",
    "upcoming_team_game_context", "upcoming_player_game_context",
    "team_defense_zone_analysis", "player_shot_zone_analysis", "league_rankings",
    "player_composite_factors", "player_daily_cache", "ml_feature_store",
    "prediction_coordinator", "player_prediction_exporter", "daily_predictions_exporter",
)  # fmt: skip


def new_warehouse(rosters: Mapping[str, tuple[str, ...]]) -> Warehouse:
    return Warehouse((*RAW_TABLES, *(p.table for p in PROCESSORS)), rosters)


@dataclass(frozen=True)
class RunResult:
    processor: str
    day: date
    rows: int  # entity rows processed (the scope's rows before and after, united)
    changes: EntityChanges


def run(
    wh: Warehouse, proc: RefProcessor, day: date, ids: Ids, detector: ChangeDetector | None = None
) -> RunResult:
    """Run ``proc`` for ``day`` on the scope (``None`` = full date); replace only the scope's
    rows and report what changed (also to ``detector``, which builds the completion event)."""
    if proc.granularity == "date":
        ids = None
    before = wh.rows(proc.publishes, day, ids)
    after = proc.compute(wh, day, ids)
    changes = detector.observe(day, before, after) if detector else diff_rows(before, after)
    # Rewriting identical rows is a no-op: write only the rows that changed.
    wh.replace(
        proc.publishes,
        day,
        changes.entities,
        {e: after[e] for e in changes.entities if e in after},
    )
    return RunResult(proc.name, day, len(set(before) | set(after)), changes)


def build_all(wh: Warehouse, days: tuple[date, ...]) -> None:
    """Compute every processor for every date (the overnight state), upstream first."""
    for name in ORDER:
        proc = BY_NAME[name]
        for d in days:
            wh.replace(proc.publishes, d, None, proc.compute(wh, d, None))

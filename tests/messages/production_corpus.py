"""Message bodies the production pipeline really sends, rebuilt from its code.

Source: najicham/nba-stats-scraper at 18f6ecfee0e93e61e3ef16604e9958670a4256f1 (paths below
are in that repository). Every completion goes through
``UnifiedPubSubPublisher._build_message`` (shared/publishers/unified_pubsub_publisher.py:188-223):
``processor_name`` is a class name, ``phase`` a string, ``metadata`` is ``{}`` when None
(:219), top-level None values are dropped (:223; nested ones are kept), and a publish with
``skip_downstream=True`` is never sent (:129-131), so a backfill with
``skip_downstream_trigger`` produces no message at all.

Each :class:`Case` says what production's own trigger tables run for it, in our registry's
processor names (class -> processor by the table it writes):

* ``direct``: processors production runs for this message itself --
  ``ANALYTICS_TRIGGER_GROUPS`` (data_processors/analytics/main_analytics_service.py:703-760)
  for Phase 2 tables, ``PRECOMPUTE_TRIGGERS`` (data_processors/precompute/
  main_precompute_service.py:76-82) for Phase 3 tables (reached through the Phase 3->4
  orchestrator's per-table triggers, orchestration/cloud_functions/phase3_to_phase4/
  main.py:1969-1976), the Phase 5->6 export (orchestration/cloud_functions/phase5_to_phase6/
  main.py:193,231).
* ``reaches``: processors production runs once a whole phase is done (the Phase 4->5
  fan-in, orchestration/cloud_functions/phase4_to_phase5/main.py:1482-1623): ours must run
  them directly or downstream of what it runs.
* ``h11c``: the ``direct`` processors our registry on main does not run yet (missing
  input edges; issue 11 item 4 rebuilds routes.yaml) -- tests mark exactly these xfail.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

_RUN = itertools.count(1)  # every run has its own id (run_id / batch_id)
DAY = "2026-01-15"
TS = "2026-01-15T23:41:07.512345+00:00"  # datetime.now(timezone.utc).isoformat() (:206)

# production class -> our processor (by the table it writes)
CLASS_TO_PROCESSOR = {
    "PlayerGameSummaryProcessor": "player_game_summary",
    "TeamOffenseGameSummaryProcessor": "team_offense_game_summary",
    "TeamDefenseGameSummaryProcessor": "team_defense_game_summary",
    "UpcomingPlayerGameContextProcessor": "upcoming_player_game_context",
    "UpcomingTeamGameContextProcessor": "upcoming_team_game_context",
    "TeamDefenseZoneAnalysisProcessor": "team_defense_zone_analysis",
    "PlayerShotZoneAnalysisProcessor": "player_shot_zone_analysis",
    "PlayerCompositeFactorsProcessor": "player_composite_factors",
    "PlayerDailyCacheProcessor": "player_daily_cache",
    "MLFeatureStoreProcessor": "ml_feature_store",
    "PredictionCoordinator": "prediction_coordinator",
}
PHASE3_TEAM_PLAYER = frozenset(
    {"team_offense_game_summary", "team_defense_game_summary", "player_game_summary"}
)


@dataclass(frozen=True)
class Case:
    name: str
    cite: str  # path:line in production's repository
    body: dict[str, Any]
    completion: bool = True
    direct: frozenset[str] = frozenset()
    reaches: frozenset[str] = frozenset()
    h11c: frozenset[str] = frozenset()
    skip_reason: str | None = None  # every decision has this reason
    entity_scope: dict[str, tuple[str, ...]] = field(default_factory=dict)
    reject: str | None = None  # rejection reason (triggers)
    source: str | None = None  # the normalised source


def _raw(cls: str, table: str, *, rows: int = 57, **extra: Any) -> dict[str, Any]:
    """A Phase 2 completion: data_processors/raw/processor_base.py:1803-1824."""
    body: dict[str, Any] = {
        "processor_name": cls,  # :1805
        "phase": "phase_2_raw",  # :1806
        "execution_id": f"{next(_RUN):08x}",  # self.run_id (:1807)
        "correlation_id": "sched-7f3a",  # opts correlation_id (:1789)
        "game_date": DAY,  # :1809
        "output_table": table,  # self.table_name, usually dataset-qualified (:1810)
        "output_dataset": "nba_raw",  # self.dataset_id (:1811, :381)
        "status": "success",  # always (:1812)
        "record_count": rows,
        "records_failed": 0,
        "timestamp": TS,
        "duration_seconds": 4.2,
        "trigger_source": "pubsub",  # opts default (:1795)
        "trigger_message_id": "1234567890",
        "metadata": {"rows_updated": 0, "processing_strategy": "INSERT"},  # :1819-1822
    }
    body.update(extra)
    return body


def _p3(
    cls: str, table: str, *, status: str = "success", ids: list[str] | None = None, **extra: Any
) -> dict[str, Any]:
    """A Phase 3 completion: data_processors/analytics/analytics_base.py:1638-1673."""
    incremental = ids is not None
    body: dict[str, Any] = {
        "processor_name": cls,  # self.__class__.__name__ (:1640)
        "phase": "phase_3_analytics",  # :1641
        "execution_id": f"{next(_RUN):08x}",  # self.run_id
        "correlation_id": "sched-7f3a",
        "game_date": DAY,  # opts end_date (:1622, :1644)
        "output_table": table,  # bare table_name, e.g. player_game_summary_processor.py:194
        "output_dataset": "nba_analytics",  # get_analytics_dataset() (analytics_base.py:298)
        "status": status,  # success / failed / no_data (:1627-1632)
        "record_count": 0 if status != "success" else (len(ids) if ids else 452),
        "records_failed": 0,
        "timestamp": TS,
        "duration_seconds": 28.4,
        "trigger_source": "pubsub",
        "metadata": {  # nested None values are kept (:223 drops top-level ones only)
            "is_incremental": incremental,  # :1658
            "entities_changed_count": len(ids) if ids else None,  # :1659
            "entities_total": 452 if incremental else None,  # :1660
            "efficiency_gain_pct": 99.6 if incremental else None,
            "change_detection_time": 0.8 if incremental else None,
            "entities_changed": ids or [],  # flat list, [] on a full run (:1665)
            "extract_time": 9.1,
            "transform_time": 12.3,
            "save_time": 7.0,
        },
    }
    body.update(extra)
    return body


def _p4(cls: str, table: str, dataset: str = "nba_precompute", **extra: Any) -> dict[str, Any]:
    """A Phase 4 completion: data_processors/precompute/base/precompute_base.py:639-663
    (success only, :385; no entities_changed in metadata)."""
    body: dict[str, Any] = {
        "processor_name": cls,
        "phase": "phase_4_precompute",  # :642
        "execution_id": f"{next(_RUN):08x}",  # run_id (:643)
        "correlation_id": "sched-7f3a",
        "game_date": DAY,  # opts analysis_date (:623)
        "output_table": table,
        "output_dataset": dataset,  # get_precompute_dataset() (:197)
        "status": "success",
        "record_count": 431,
        "records_failed": 0,
        "timestamp": TS,
        "duration_seconds": 51.0,
        "trigger_source": "orchestrator",  # from the Phase 3->4 trigger (main_precompute_service.py:139,176)
        "trigger_message_id": "9876543210",
        "metadata": {"total_runtime": 51.0, "rows_processed": 431, "rows_skipped": 0},  # :657-661
    }
    body.update(extra)
    return body


def _p5(status: str, **extra: Any) -> dict[str, Any]:
    """A Phase 5 completion: predictions/coordinator/coordinator.py:4304-4335."""
    body: dict[str, Any] = {
        "processor_name": "PredictionCoordinator",  # :4306
        "phase": "phase_5_predictions",  # :4307
        "execution_id": f"batch_2026-01-15_{next(_RUN):04d}",  # batch_id (:4308)
        "correlation_id": "batch_2026-01-15_1737",
        "game_date": DAY,
        "output_table": "player_prop_predictions",  # :4311
        "output_dataset": "nba_predictions",  # :4312
        "status": status,  # success / partial / failed (:4283-4288)
        "record_count": 0 if status == "failed" else 388,
        "records_failed": 6,
        "timestamp": TS,
        "duration_seconds": 312.5,
        "trigger_source": "scheduler",  # :4317 (trigger_message_id/error_* None: dropped)
        "metadata": {
            "batch_id": "batch_2026-01-15_1737",
            "expected_predictions": 394,
            "completed_predictions": 0 if status == "failed" else 388,
            "failed_predictions": 6,
            "completion_pct": 0.0 if status == "failed" else 98.5,
            "stall_detected": False,
            "summary": {"completed": 388, "expected": 394, "failed": 6},
        },
    }
    body.update(extra)
    return body


def _p3to4(table: str, entities: dict[str, list[str]]) -> dict[str, Any]:
    """The Phase 3->4 orchestrator's per-table trigger (phase3_to_phase4/main.py:1953-1976)."""
    return {
        "source_table": table,  # one per EXPECTED_PROCESSORS entry (:1969-1971, :102-108)
        "analysis_date": DAY,
        "game_date": DAY,
        "success": True,
        "correlation_id": "sched-7f3a",
        "trigger_source": "orchestrator",
        "triggered_by": "phase3_to_phase4_orchestrator",
        "timestamp": TS,
        "entities_changed": entities,  # {'players': [...], 'teams': [...]} (:1936-1940)
        "is_incremental": bool(entities),
        "mode": "overnight",
        "trigger_reason": "all_complete",
        "data_freshness_verified": True,
        "minutes_coverage_pct": None,  # json.dumps keeps None as null (:1979)
        "parent_execution_id": "a1b2c3d4",
        "parent_processor": "Phase3Orchestrator",
    }


GAMEBOOK_DIRECT = PHASE3_TEAM_PLAYER  # main_analytics_service.py:707-727
TO_EXPORTERS = frozenset({"player_prediction_exporter", "daily_predictions_exporter"})
PLAYERS = ["lebronjames", "stephencurry", "nikolajokic"]

CASES: list[Case] = [
    # ------------------------------------------------------------ Phase 2 (raw)
    Case(
        "p2_gamebook",
        "data_processors/raw/nbacom/nbac_gamebook_processor.py:113",
        _raw("NbacGamebookProcessor", "nba_raw.nbac_gamebook_player_stats", rows=512),
        direct=GAMEBOOK_DIRECT,
        source="nba_raw.nbac_gamebook_player_stats",
    ),
    Case(
        "p2_player_boxscores_bare_table",
        "data_processors/raw/nbacom/nbac_player_boxscore_processor.py:68",
        _raw("NbacPlayerBoxscoreProcessor", "nbac_player_boxscores", rows=498),
        direct=PHASE3_TEAM_PLAYER,
        h11c=PHASE3_TEAM_PLAYER,  # main_analytics_service.py:731-751
        source="nba_raw.nbac_player_boxscores",
    ),
    Case(
        "p2_scoreboard_v2",
        "data_processors/raw/nbacom/nbac_scoreboard_v2_processor.py:45",
        _raw("NbacScoreboardV2Processor", "nba_raw.nbac_scoreboard_v2", rows=9),
        direct=frozenset(
            {"team_offense_game_summary", "team_defense_game_summary", "upcoming_team_game_context"}
        ),  # main_analytics_service.py:754
        h11c=frozenset({"upcoming_team_game_context"}),
        source="nba_raw.nbac_scoreboard_v2",
    ),
    Case(
        "p2_team_boxscore",
        "data_processors/raw/nbacom/nbac_team_boxscore_processor.py:103",
        _raw("NbacTeamBoxscoreProcessor", "nba_raw.nbac_team_boxscore", rows=18),
        direct=frozenset({"team_defense_game_summary", "team_offense_game_summary"}),  # :755
        source="nba_raw.nbac_team_boxscore",
    ),
    Case(
        "p2_schedule",
        "data_processors/raw/nbacom/nbac_schedule_processor.py:57",
        _raw("NbacScheduleProcessor", "nba_raw.nbac_schedule", rows=1230),
        direct=frozenset({"upcoming_team_game_context"}),
        source="nba_raw.nbac_schedule",
    ),  # :756
    Case(
        "p2_standings_routes_nothing",
        "data_processors/raw/balldontlie/bdl_standings_processor.py:41",
        _raw("BdlStandingsProcessor", "nba_raw.bdl_standings", rows=30),
        skip_reason="not_an_input",
        source="nba_raw.bdl_standings",
    ),  # [] at :757
    Case(
        "p2_injury_report",
        "data_processors/raw/nbacom/nbac_injury_report_processor.py:48",
        _raw("NbacInjuryReportProcessor", "nba_raw.nbac_injury_report", rows=61),
        direct=frozenset({"player_game_summary"}),
        source="nba_raw.nbac_injury_report",
    ),  # :758
    Case(
        "p2_odds_props",
        "data_processors/raw/oddsapi/odds_api_props_processor.py:54",
        _raw("OddsApiPropsProcessor", "nba_raw.odds_api_player_points_props", rows=840),
        direct=frozenset({"upcoming_player_game_context"}),  # :759
        source="nba_raw.odds_api_player_points_props",
    ),
    Case(
        "p2_bdl_boxscores",
        "data_processors/raw/balldontlie/bdl_boxscores_processor.py:45",
        _raw("BdlBoxscoresProcessor", "nba_raw.bdl_player_boxscores", rows=470),
        source="nba_raw.bdl_player_boxscores",
    ),
    Case(
        "p2_game_lines",
        "data_processors/raw/oddsapi/odds_game_lines_processor.py:51",
        _raw("OddsGameLinesProcessor", "nba_raw.odds_api_game_lines", rows=144),
        source="nba_raw.odds_api_game_lines",
    ),
    Case(
        "p2_bettingpros",
        "data_processors/raw/bettingpros/bettingpros_player_props_processor.py:46",
        _raw("BettingPropsProcessor", "nba_raw.bettingpros_player_points_props", rows=2210),
        source="nba_raw.bettingpros_player_points_props",
    ),
    Case(
        "p2_bigdataball_pbp",
        "data_processors/raw/bigdataball/bigdataball_pbp_processor.py:54",
        _raw("BigDataBallPbpProcessor", "nba_raw.bigdataball_play_by_play", rows=4630),
        source="nba_raw.bigdataball_play_by_play",
    ),
    Case(
        "p2_nbac_pbp",
        "data_processors/raw/nbacom/nbac_play_by_play_processor.py:54",
        _raw("NbacPlayByPlayProcessor", "nba_raw.nbac_play_by_play", rows=4711),
        source="nba_raw.nbac_play_by_play",
    ),
    Case(
        "p2_bdl_injuries_unknown",
        "data_processors/raw/balldontlie/bdl_injuries_processor.py:50",
        _raw("BdlInjuriesProcessor", "nba_raw.bdl_injuries", rows=88),
        skip_reason="unknown_source",
        source="nba_raw.bdl_injuries",
    ),
    Case(
        # an input of the coordinator since production_tables.py (player_loader.py:895);
        # production's trigger tables run nothing on it
        "p2_kalshi",
        "data_processors/raw/kalshi/kalshi_props_processor.py:62",
        _raw(
            "KalshiPropsProcessor",
            "nba_raw.kalshi_player_props",
            rows=35,
            trigger_source="manual",
            parent_processor="KalshiPropsScraper",
        ),
        source="nba_raw.kalshi_player_props",
    ),
    Case(
        "p2_referee_unknown",
        "data_processors/raw/nbacom/nbac_referee_processor.py:25, :45",
        _raw("NbacRefereeProcessor", "nba_raw.nbac_referee_game_assignments", rows=33),
        skip_reason="unknown_source",
        source="nba_raw.nbac_referee_game_assignments",
    ),
    Case(
        "p2_bdb_retry_phase2_shape",
        "orchestration/cloud_functions/bdb_retry_processor/main.py:184-192",
        {
            "source_table": "nbac_gamebook_player_stats",
            "output_table": "nba_raw.nbac_gamebook_player_stats",
            "game_date": DAY,
            "status": "success",
            "backfill_mode": True,
            "trigger_reason": "bdb_data_available",
            "source": "bdb_retry_processor",
        },
        direct=GAMEBOOK_DIRECT,
        source="nba_raw.nbac_gamebook_player_stats",
    ),
    # ------------------------------------------------------------ Phase 3 (analytics)
    Case(
        "p3_pgs_incremental",
        "data_processors/analytics/analytics_base.py:1638-1673 (entities :861-881)",
        _p3("PlayerGameSummaryProcessor", "player_game_summary", ids=PLAYERS),
        direct=frozenset({"player_daily_cache"}),  # main_precompute_service.py:77
        entity_scope={
            "player_daily_cache": tuple(sorted(PLAYERS)),
            "player_shot_zone_analysis": tuple(sorted(PLAYERS)),
        },
        source="nba_analytics.player_game_summary",
    ),
    Case(
        "p3_pgs_full_run",
        "data_processors/analytics/analytics_base.py:1665 (entities_changed [] :888)",
        _p3("PlayerGameSummaryProcessor", "player_game_summary"),
        direct=frozenset({"player_daily_cache"}),
        source="nba_analytics.player_game_summary",
    ),
    Case(
        "p3_pgs_failed",
        "data_processors/analytics/analytics_base.py:1055,1629-1630",
        _p3(
            "PlayerGameSummaryProcessor",
            "player_game_summary",
            status="failed",
            error_message="DependencyError: nbac_gamebook_player_stats stale (26h)",
            error_type="str",
        ),  # type(error).__name__ of a str (:1655)
        skip_reason="upstream_failed",
        source="nba_analytics.player_game_summary",
    ),
    Case(
        "p3_pgs_no_data",
        "data_processors/analytics/analytics_base.py:1055,1631-1632 (str(e) == '')",
        _p3(
            "PlayerGameSummaryProcessor", "player_game_summary", status="no_data", error_message=""
        ),
        skip_reason="no_data",
        source="nba_analytics.player_game_summary",
    ),
    Case(
        "p3_pgs_manual_backfill_retry",
        "data_processors/analytics/main_analytics_service.py:1239-1249 "
        "(backfill_mode with skip_downstream_trigger false; game_date = end_date, analytics_base.py:1622)",
        _p3("PlayerGameSummaryProcessor", "player_game_summary", trigger_source="manual"),
        direct=frozenset({"player_daily_cache"}),
        source="nba_analytics.player_game_summary",
    ),
    Case(
        "p3_team_offense",
        "data_processors/analytics/team_offense_game_summary/team_offense_game_summary_processor.py:163",
        _p3("TeamOffenseGameSummaryProcessor", "team_offense_game_summary"),
        direct=frozenset({"player_shot_zone_analysis"}),  # main_precompute_service.py:79
        h11c=frozenset({"player_shot_zone_analysis"}),
        source="nba_analytics.team_offense_game_summary",
    ),
    Case(
        "p3_team_defense",
        "data_processors/analytics/team_defense_game_summary/team_defense_game_summary_processor.py:149",
        _p3("TeamDefenseGameSummaryProcessor", "team_defense_game_summary"),
        direct=frozenset({"team_defense_zone_analysis"}),  # main_precompute_service.py:78
        source="nba_analytics.team_defense_game_summary",
    ),
    Case(
        "p3_team_defense_incremental_teams",
        "data_processors/analytics/analytics_base.py:841-849 "
        "(opts entities_changed from upstream), :1665",
        _p3("TeamDefenseGameSummaryProcessor", "team_defense_game_summary", ids=["BOS", "LAL"]),
        direct=frozenset({"team_defense_zone_analysis"}),
        # no entity scope: the zone analysis averages every team's games into each team's
        # row (team_defense_zone_analysis_processor.py:464-485, also_map league_teams), so
        # two teams' changes reach all 30 teams: full date
        source="nba_analytics.team_defense_game_summary",
    ),
    Case(
        "p3_upcoming_player",
        "data_processors/analytics/upcoming_player_game_context/upcoming_player_game_context_processor.py:142",
        _p3("UpcomingPlayerGameContextProcessor", "upcoming_player_game_context"),
        direct=frozenset({"player_daily_cache"}),  # main_precompute_service.py:80
        source="nba_analytics.upcoming_player_game_context",
    ),
    Case(
        "p3_upcoming_team",
        "data_processors/analytics/upcoming_team_game_context/upcoming_team_game_context_processor.py:167",
        _p3("UpcomingTeamGameContextProcessor", "upcoming_team_game_context"),
        source="nba_analytics.upcoming_team_game_context",
    ),  # [] at main_precompute_service.py:81
    # ------------------------------------------------------------ Phase 4 (precompute)
    Case(
        "p4_team_defense_zone",
        "data_processors/precompute/team_defense_zone_analysis/team_defense_zone_analysis_processor.py:90",
        _p4("TeamDefenseZoneAnalysisProcessor", "team_defense_zone_analysis"),
        reaches=frozenset({"prediction_coordinator"}),
        source="nba_precompute.team_defense_zone_analysis",
    ),
    Case(
        "p4_player_shot_zone",
        "data_processors/precompute/player_shot_zone_analysis/player_shot_zone_analysis_processor.py:447",
        _p4("PlayerShotZoneAnalysisProcessor", "player_shot_zone_analysis"),
        reaches=frozenset({"prediction_coordinator"}),
        source="nba_precompute.player_shot_zone_analysis",
    ),
    Case(
        "p4_composite",
        "data_processors/precompute/player_composite_factors/player_composite_factors_processor.py:87",
        _p4("PlayerCompositeFactorsProcessor", "player_composite_factors"),
        reaches=frozenset({"prediction_coordinator"}),
        source="nba_precompute.player_composite_factors",
    ),
    Case(
        "p4_daily_cache",
        "data_processors/precompute/player_daily_cache/player_daily_cache_processor.py:140",
        _p4("PlayerDailyCacheProcessor", "player_daily_cache"),
        reaches=frozenset({"prediction_coordinator"}),
        source="nba_precompute.player_daily_cache",
    ),
    Case(
        "p4_ml_feature_store_cross_dataset",
        "data_processors/precompute/ml_feature_store/ml_feature_store_processor.py:466-467",
        _p4("MLFeatureStoreProcessor", "ml_feature_store_v2", dataset="nba_predictions"),
        reaches=frozenset({"prediction_coordinator"}),
        source="nba_predictions.ml_feature_store_v2",
    ),
    # ------------------------------------------------------------ Phase 5 (predictions)
    Case(
        "p5_success_firestore_path",
        "predictions/coordinator/coordinator.py:3941-3963",
        {
            **_p5("success"),
            "trigger_source": "automatic",
            "metadata": {
                "batch_id": "batch_2026-01-15_1737",
                "expected_players": 394,
                "completed_players": 388,
                "completed_predictions": 388,
                "total_predictions": 1940,
                "completion_pct": 98.5,
            },
        },
        direct=TO_EXPORTERS,
        source="nba_predictions.player_prop_predictions",
    ),
    Case(
        "p5_partial",
        "predictions/coordinator/coordinator.py:4283-4335",
        _p5("partial"),
        direct=TO_EXPORTERS,
        source="nba_predictions.player_prop_predictions",
    ),
    Case(
        "p5_failed",
        "predictions/coordinator/coordinator.py:4287-4288",
        _p5("failed"),
        skip_reason="upstream_failed",
        source="nba_predictions.player_prop_predictions",
    ),
    # ------------------------------------------------------------ orchestrators' triggers
    Case(
        # the ids are every incremental Phase 3 processor's changes united (:1913-1940) and
        # the same on every table's message: not this table's own -- its processor may have
        # run in full -- so they never narrow its consumers (full date)
        "trig_p3to4_player_incremental",
        "orchestration/cloud_functions/phase3_to_phase4/main.py:1913-1976",
        _p3to4("player_game_summary", {"players": PLAYERS, "teams": ["DEN"]}),
        direct=frozenset({"player_daily_cache"}),
        source="nba_analytics.player_game_summary",
    ),
    Case(
        "trig_p3to4_team_defense_full",
        "orchestration/cloud_functions/phase3_to_phase4/main.py:1953-1976",
        _p3to4("team_defense_game_summary", {}),
        direct=frozenset({"team_defense_zone_analysis"}),
        source="nba_analytics.team_defense_game_summary",
    ),
    Case(
        "trig_p4to5",
        "orchestration/cloud_functions/phase4_to_phase5/main.py:1580-1597",
        {
            "game_date": DAY,
            "correlation_id": "sched-7f3a",
            "trigger_source": "orchestrator",
            "triggered_by": "phase4_to_phase5_orchestrator",
            "upstream_processors_count": 5,
            "expected_processors": [
                "team_defense_zone_analysis",
                "player_shot_zone_analysis",
                "player_composite_factors",
                "player_daily_cache",
                "ml_feature_store",
            ],
            "timestamp": TS,
            "parent_execution_id": "p4-9e1f",
            "parent_processor": "Phase4Orchestrator",
            "data_freshness_verified": True,
            "missing_tables": [],
            "table_row_counts": {"ml_feature_store_v2": 431},
        },
        completion=False,
        reject="not_a_completion",
    ),
    Case(
        "trig_coordinator_start",
        "orchestration/cloud_functions/phase4_to_phase5/main.py:1673-1677",
        {"game_date": DAY, "correlation_id": "sched-7f3a", "trigger_source": "phase4_orchestrator"},
        completion=False,
        reject="missing_source",
    ),
    Case(
        "trig_p5to6_export",
        "orchestration/cloud_functions/phase5_to_phase6/main.py:276-291",
        {
            "export_types": ["tonight", "tonight-players", "predictions"],
            "target_date": DAY,
            "update_latest": True,
            "trigger_source": "orchestrator",
            "triggered_by": "phase5_to_phase6_orchestrator",
            "correlation_id": "batch_2026-01-15_1737",
            "timestamp": TS,
            "upstream_batch_id": "batch_2026-01-15_1737",
            "upstream_predictions": 388,
        },
        completion=False,
        reject="not_a_completion",
    ),
    Case(
        "trig_auto_retry_phase3",
        "orchestration/cloud_functions/auto_retry_processor/main.py:173-179",
        {
            "game_date": DAY,
            "source_table": "PlayerGameSummaryProcessor",
            "status": "success",
            "triggered_by": "auto_retry",
            "retry_count": 2,
        },
        completion=False,
        reject="not_a_completion",
    ),
    Case(
        "trig_auto_retry_phase5",
        "orchestration/cloud_functions/auto_retry_processor/main.py:182-185",
        {"game_date": DAY, "action": "predict"},
        completion=False,
        reject="not_a_completion",
    ),
    Case(
        "trig_auto_retry_fallback",
        "orchestration/cloud_functions/auto_retry_processor/main.py:188-196",
        {
            "action": "retry",
            "processor_name": "PlayerDailyCacheProcessor",
            "game_date": DAY,
            "correlation_id": "retry-20260115234107",
            "retry_count": 1,
            "trigger_source": "auto_retry",
            "timestamp": TS,
        },
        completion=False,
        reject="not_a_completion",
    ),
    Case(
        "trig_backfill_date_range",
        "orchestration/cloud_functions/backfill_trigger/main.py:324-331",
        {
            "start_date": "2026-01-10",
            "end_date": DAY,
            "processors": ["PlayerGameSummaryProcessor"],
            "backfill_mode": True,
            "skip_dependency_check": True,
            "correlation_id": "backfill-42",
        },
        completion=False,
        reject="not_a_completion",
    ),
    Case(
        "trig_scheduler_process_date_range",
        "bin/orchestrators/setup_evening_analytics_schedulers.sh:106",
        {
            "start_date": "TODAY",
            "end_date": "TODAY",
            "processors": ["PlayerGameSummaryProcessor"],
            "backfill_mode": True,
        },
        completion=False,
        reject="not_a_completion",
    ),
]

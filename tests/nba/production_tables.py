"""The tables production's NBA code reads that routes.yaml did not list as inputs, classified.

Invariant: every entry is a ``missing_input`` that ``scoperouter lineage`` reported over
production's code (najicham/nba-stats-scraper, commit 18f6ecf; ``--code`` per processor as in
docs/lineage.md) against the registry before these entries, checked by hand at its
``path:line`` (the line lineage reports) and around it; each has one class:

* ``INPUT``: a change to the table changes the processor's output and production reruns it on
  no event of that table (a missed update): the table, or for a view the table under it
  (``ROUTED_AS``), is one of the processor's inputs in routes.yaml, with ``fields``;
* ``IGNORED``: a deliberate unrouted read (reference or static data, monitoring, a gate or
  circuit-breaker check, its own bookkeeping, dead code): in ``lineage.ignore_tables``;
* ``FALSE_POSITIVE``: no table at all (a CTE of SQL fragments composed in Python), which
  lineage no longer reports (tests/lineage/test_python_sql_missed.py); neither an input nor
  ignored.
"""

from __future__ import annotations

from typing import Literal

A = "data_processors/analytics/"
P = "data_processors/precompute/"
PGS = A + "player_game_summary/player_game_summary_processor.py"
UPGC = A + "upcoming_player_game_context/"
UTGC = A + "upcoming_team_game_context/calculators/"
MLFS = P + "ml_feature_store/ml_feature_store_processor.py"
PSZA = P + "player_shot_zone_analysis/player_shot_zone_analysis_processor.py"
COORD = "predictions/coordinator/coordinator.py"
PUB = "data_processors/publishing/"

Class = Literal["input", "ignored", "false_positive"]
INPUT: Class = "input"
IGNORED: Class = "ignored"
FALSE_POSITIVE: Class = "false_positive"

SCHEDULE = "nba_raw.nbac_schedule"
VIEW = "nba_raw.v_nbac_schedule_latest"
BREAKER = "the circuit breaker's upstream check (get_upstream_data_check_query), not the rows"

# (processor, table read) -> (path:line, class, why)
PRODUCTION_TABLES: dict[tuple[str, str], tuple[str, Class, str]] = {
    # ---------------------------------------------------------------- phase 3
    ("player_game_summary", "nba_reference.nba_schedule"): (
        f"{PGS}:389",
        IGNORED,
        "_check_team_stats_available: expected team-games, monitoring only (:358)",
    ),
    ("player_game_summary", "nba_raw.nbac_schedule"): (
        f"{A}player_game_summary/sources/shot_zone_analyzer.py:136",
        IGNORED,
        "its own bookkeeping: the games to re-run when BigDataBall data arrives",
    ),
    ("player_game_summary", VIEW): (f"{PGS}:619", IGNORED, BREAKER),
    ("team_defense_game_summary", VIEW): (
        f"{A}team_defense_game_summary/team_defense_game_summary_processor.py:268",
        IGNORED,
        BREAKER,
    ),
    ("team_offense_game_summary", VIEW): (
        f"{A}team_offense_game_summary/team_offense_game_summary_processor.py:290",
        IGNORED,
        BREAKER,
    ),
    ("upcoming_player_game_context", VIEW): (
        f"{UPGC}async_upcoming_player_game_context_processor.py:379",
        INPUT,
        "the async variant's schedule (game times, primetime): a view over nbac_schedule, "
        "already routed as that input",
    ),
    ("upcoming_player_game_context", "injuries"): (
        f"{UPGC}queries/shared_ctes.py:317",
        FALSE_POSITIVE,
        "the final SELECT names the CTE injuries_cte (:159-179) defines",
    ),
    ("upcoming_player_game_context", "players_with_games"): (
        f"{UPGC}queries/shared_ctes.py:316",
        FALSE_POSITIVE,
        "the final SELECT names the CTE of :134-156 and :264-293",
    ),
    ("upcoming_player_game_context", "props"): (
        f"{UPGC}queries/shared_ctes.py:318",
        FALSE_POSITIVE,
        "the final SELECT names the CTE props_cte (:182-227) defines",
    ),
    ("upcoming_team_game_context", VIEW): (
        f"{UTGC}dependency_validator.py:100",
        IGNORED,
        BREAKER,
    ),
    ("upcoming_team_game_context", "nba_static.travel_distances"): (
        f"{UTGC}source_fallback.py:336",
        IGNORED,
        "static reference: team-to-team miles",
    ),
    # ---------------------------------------------------------------- phase 4
    ("player_shot_zone_analysis", "nba_raw.bigdataball_play_by_play"): (
        f"{PSZA}:535",
        IGNORED,
        BREAKER,
    ),
    ("player_shot_zone_analysis", "nba_reference.nba_schedule"): (
        f"{PSZA}:625",
        IGNORED,
        "the season's first game date, fixed once the season has begun",
    ),
    ("player_daily_cache", "nba_reference.nba_schedule"): (
        f"{P}player_daily_cache/builders/completeness_checker.py:63",
        IGNORED,
        "break detection for the completeness windows: the calendar of days already played",
    ),
    ("ml_feature_store", "nba_reference.nba_schedule"): (
        f"{MLFS}:905",
        IGNORED,
        "with no players: skip (no games) or fail; no row depends on it",
    ),
    ("ml_feature_store", "nba_raw.bdl_injuries"): (
        f"{MLFS}:2296",
        IGNORED,
        "dead code: _get_injured_teammates_ppg (:2225) has no caller",
    ),
    ("ml_feature_store", "nba_predictions.prediction_accuracy"): (
        f"{P}ml_feature_store/feature_extractor.py:1705",
        INPUT,
        "features 55-56: the player's graded lines of his last 10 games; grading reruns nothing",
    ),
    # ---------------------------------------------------------------- phase 5
    ("prediction_coordinator", VIEW): (
        f"{COORD}:258",
        IGNORED,
        "the completeness gate (503 below 80% of the 7 days' games); no prediction reads it",
    ),
    ("prediction_coordinator", "nba_analytics.player_game_summary"): (
        f"{COORD}:268",
        IGNORED,
        "the same gate; box scores reach it through the feature store, which reads them",
    ),
    ("prediction_coordinator", "nba_orchestration.game_postponements"): (
        f"{COORD}:358",
        IGNORED,
        "a warning only (non-blocking, :1008-1012)",
    ),
    ("prediction_coordinator", "nba_reference.nba_schedule"): (
        f"{COORD}:1859",
        IGNORED,
        "the line-check endpoint's guard (games left to start)",
    ),
    ("prediction_coordinator", "nba_predictions.dynamic_subset_definitions"): (
        f"{COORD}:2151",
        IGNORED,
        "the morning Slack summary: monitoring",
    ),
    ("prediction_coordinator", "nba_predictions.daily_prediction_signals"): (
        f"{COORD}:3390",
        IGNORED,
        "the signal-check endpoint (Slack alert): monitoring",
    ),
    ("prediction_coordinator", "nba_raw.kalshi_player_props"): (
        "predictions/coordinator/player_loader.py:895",
        INPUT,
        "the Kalshi line, written into each prediction row (predictions/worker/worker.py:2159)",
    ),
    # ---------------------------------------------------------------- phase 6
    ("player_prediction_exporter", "nba_reference.nba_players_registry"): (
        f"{PUB}tonight_player_exporter.py:171",
        IGNORED,
        "the player's display name: reference data",
    ),
    ("player_prediction_exporter", "nba_precompute.player_composite_factors"): (
        f"{PUB}tonight_player_exporter.py:232",
        INPUT,
        "the fatigue shown; it reaches the export otherwise only if a prediction changes",
    ),
    ("player_prediction_exporter", "nba_precompute.team_defense_zone_analysis"): (
        f"{PUB}tonight_player_exporter.py:536",
        INPUT,
        "the opponent's defense tier, a ranking of every team's latest defense",
    ),
    ("daily_predictions_exporter", "nba_predictions.prediction_accuracy"): (
        f"{PUB}predictions_exporter.py:97",
        IGNORED,
        "team labels from a grading that exists only after this tonight export; never rerun",
    ),
}

# A view read: the table production's raw processor writes under it, routed instead (the
# view itself is in ignore_tables, as lineage sees its name).
ROUTED_AS = {VIEW: SCHEDULE}

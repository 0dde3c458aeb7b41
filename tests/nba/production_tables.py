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

``RUNTIME_TABLES`` does the same for the reads lineage lists ``unresolved: table name built at
run time``: each resolved by hand to its table (citing the constant that names it) and found
already an input, a deliberate read (``lineage.ignore_tables``), the processor's own output,
or a CTE.
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

# ---------------------------------------------------------------- tables named at run time
# The reads ``scoperouter lineage`` leaves ``unresolved: table name built at run time`` over
# production's code (the same run, after lineage reads a hole naming a module-level string
# constant: signal_calculator.py:24's SIGNALS_TABLE), each read at its ``path:line`` with
# the table its name resolves to (the line of the dataset or table constant in ``why``).
# ``ALREADY_INPUT``: an input of the processor; ``IGNORED``: a deliberate read, the table
# in ``lineage.ignore_tables``; ``OWN``: the processor's own output (or a staging copy of it)
# read back; ``NO_TABLE``: the hole names a CTE of the same query. No missed update is here.
Kind = Literal["already_input", "ignored", "own", "no_table"]
ALREADY_INPUT: Kind = "already_input"
OWN: Kind = "own"
NO_TABLE: Kind = "no_table"
COORDS = "predictions/coordinator/"
WORKER = "predictions/worker/data_loaders.py"
FEATURES = "nba_predictions.ml_feature_store_v2"
UPCOMING = "nba_analytics.upcoming_player_game_context"
BOX = "nba_analytics.player_game_summary"
SIMILARITY = (
    "the player's history for the similarity system, decommissioned (predictions/worker/"
    "worker.py:296-299): the worker only counts it for its execution log (:1543-1558, :985)"
)

# path:line -> (processor, table the name resolves to, kind, why)
RUNTIME_TABLES: dict[str, tuple[str, str, Kind, str]] = {
    f"{WORKER}:161": (
        "prediction_coordinator",
        FEATURES,
        ALREADY_INPUT,
        "the feature version of the date; dataset: data_loaders.py:72",
    ),
    f"{WORKER}:401": (
        "prediction_coordinator",
        BOX,
        IGNORED,
        f"{SIMILARITY}; dataset: data_loaders.py:73",
    ),
    f"{WORKER}:626": (
        "prediction_coordinator",
        UPCOMING,
        ALREADY_INPUT,
        "load_game_context_batch, dead code (load_game_context, :547, has no caller); "
        "dataset: data_loaders.py:73",
    ),
    f"{WORKER}:740": (
        "prediction_coordinator",
        BOX,
        IGNORED,
        f"{SIMILARITY}; the coordinator's batch of it, coordinator.py:1164; "
        "dataset: data_loaders.py:73",
    ),
    f"{WORKER}:940": (
        "prediction_coordinator",
        FEATURES,
        ALREADY_INPUT,
        "the features of each prediction; dataset: data_loaders.py:72",
    ),
    f"{WORKER}:1129": (
        "prediction_coordinator",
        FEATURES,
        ALREADY_INPUT,
        "the players of the date; dataset: data_loaders.py:72",
    ),
    f"{COORDS}quality_gate.py:139": (
        "prediction_coordinator",
        "nba_predictions.player_prop_predictions",
        OWN,
        "the players already predicted; dataset: quality_gate.py:135",
    ),
    f"{COORDS}quality_gate.py:193": (
        "prediction_coordinator",
        FEATURES,
        ALREADY_INPUT,
        "the feature quality gate; dataset: quality_gate.py:182",
    ),
    f"{COORDS}quality_gate.py:534": (
        "prediction_coordinator",
        BOX,
        IGNORED,
        "yesterday's analytics quality: a warning only, never blocks (coordinator.py:1271-1297); "
        "dataset: quality_gate.py:526",
    ),
    f"{COORDS}coordinator.py:442": (
        "prediction_coordinator",
        FEATURES,
        ALREADY_INPUT,
        "the vegas-line source coverage check; dataset: coordinator.py:433",
    ),
    f"{COORDS}player_loader.py:341": (
        "prediction_coordinator",
        UPCOMING,
        ALREADY_INPUT,
        "the players of the date and their baselines; dataset: player_loader.py:321",
    ),
    f"{COORDS}run_history.py:348": (
        "prediction_coordinator",
        "nba_reference.processor_run_history",
        IGNORED,
        "its own run bookkeeping (start_batch / complete_batch write it, run_history.py:168, "
        ":262); the read, check_already_running (:333), has no caller; table: run_history.py:57",
    ),
    f"{COORDS}signal_calculator.py:176": (
        "prediction_coordinator",
        "nba_predictions.daily_prediction_signals",
        IGNORED,
        "the Slack signal alert reads back what calculate_daily_signals wrote (:58, :73); "
        "table: signal_calculator.py:24 (lineage resolves it now)",
    ),
    f"{COORDS}signal_calculator.py:334": (
        "prediction_coordinator",
        "nba_predictions.daily_prediction_signals",
        IGNORED,
        "get_daily_signal, the signal-check endpoint; table: signal_calculator.py:24 "
        "(lineage resolves it now)",
    ),
    f"{P}ml_feature_store/batch_writer.py:393": (
        "ml_feature_store",
        FEATURES,
        OWN,
        "the MERGE from its staging copy ({table_id}_temp_..., batch_writer.py:75, :89) into "
        "its output; table: ml_feature_store_processor.py:466-467, passed at :2387-2391",
    ),
    f"{MLFS}:2434": (
        "ml_feature_store",
        FEATURES,
        OWN,
        "post-write validation of the rows just written; table: "
        "ml_feature_store_processor.py:466-467",
    ),
    f"{PGS}:1036": (
        "player_game_summary",
        "nba_com_data",
        NO_TABLE,
        "SELECT * FROM the CTE nbac_boxscore_data or nba_com_data, picked by "
        "_use_boxscore_fallback (CTEs of the same query)",
    ),
    f"{P}team_defense_zone_analysis/team_defense_zone_analysis_processor.py:280": (
        "team_defense_zone_analysis",
        "nba_analytics.team_defense_game_summary",
        ALREADY_INPUT,
        "the per-team game-count dependency check; table: get_dependencies' key, "
        "team_defense_zone_analysis_processor.py:217",
    ),
    f"{A}upcoming_team_game_context/upcoming_team_game_context_processor.py:1697": (
        "upcoming_team_game_context",
        "nba_analytics.upcoming_team_game_context",
        OWN,
        "the MERGE from its staging copy (:1624) into its output; table: :1607 "
        "(table_name :167, dataset_id analytics_base.py:298)",
    ),
}

# ---------------------------------------------------------------- reads in shared code
# Reads found by hand (an audit, stop 51) in production's shared code that lineage was not
# run on (``shared/``, not a processor's ``--code``): the table, read for the processor's
# rows, is in ``lineage.ignore_tables`` because production re-runs those dates out of band
# and no completion names the table.
REGISTRY = "nba_reference.nba_players_registry"
ALIASES = "nba_reference.player_aliases"
REGISTRY_READ = "shared/utils/player_registry/reader.py:103"
ALIASES_READ = (
    "names the registry lacks resolve through the aliases (shared/utils/player_registry/"
    "reader.py:627-628, :508); re-run by hand as the registry's"
)
OUT_OF_BAND: dict[tuple[str, str], tuple[str, str]] = {
    ("player_game_summary", ALIASES): (
        f"{A}player_game_summary/sources/player_registry.py:74",
        ALIASES_READ,
    ),
    ("upcoming_player_game_context", ALIASES): (
        f"{UPGC}upcoming_player_game_context_processor.py:1285",
        ALIASES_READ,
    ),
    ("player_game_summary", REGISTRY): (
        f"{A}player_game_summary/sources/player_registry.py:36",
        f"RegistryReader ({REGISTRY_READ}): an unresolved player's row is dropped "
        f"({PGS}:1962-1981); newly resolved names' dates re-run by hand "
        "(tools/player_registry/reprocess_resolved.py)",
    ),
    ("upcoming_player_game_context", REGISTRY): (
        f"{UPGC}upcoming_player_game_context_processor.py:1043",
        f"RegistryReader ({REGISTRY_READ}): an unresolved player's universal_player_id is "
        "NULL (:1043, :1197); re-run by hand (tools/player_registry/reprocess_resolved.py)",
    ),
}

# ---------------------------------------------------------------- reads lineage does not report
# Reads found by hand (an audit of phase 4, stop 52) that ``scoperouter lineage`` over the
# processors' ``--code`` does not report as ``missing_input``: the completeness check's queries
# are in shared code (``shared/utils/completeness_checker.py``, cc below, called from each
# processor), the circuit breakers' tables are written by the same code that reads them
# (lineage excepts tables a processor's own jobs write), and the worker's tables are read by
# code outside the coordinator's globs or named by a hole. Same classes as PRODUCTION_TABLES.
CC = "shared/utils/completeness_checker.py"
PDC = P + "player_daily_cache/"
PCF = P + "player_composite_factors/player_composite_factors_processor.py"
TDZA = P + "team_defense_zone_analysis/team_defense_zone_analysis_processor.py"
ATTEMPTS = "nba_orchestration.reprocess_attempts"
GAMES_WINDOW = (
    "the completeness check's expected games, a games window (at most 10 of the team's Final "
    "games before the date, cc:387-429): a view over nbac_schedule, routed as that input; "
    "a schedule change alone matters only while the team has fewer than 10 Final games in "
    "the view before the date"
)
LOCKOUT = (
    "its own retry bookkeeping, read back by its circuit breaker (the 3rd incomplete attempt "
    "locks the entity out 24 h, shared/config/orchestration_config.py:159); a locked entity "
    "is skipped and not re-run when the lockout ends (the NBA example's README)"
)
HAND_FOUND: dict[tuple[str, str], tuple[str, Class, str]] = {
    ("player_daily_cache", VIEW): (
        f"{CC}:401",
        INPUT,
        "the completeness windows' expected games (last 5 and 10 games, last 7 and 14 days: "
        f"{PDC}builders/completeness_checker.py:114-134, on every run, "
        f"{PDC}player_daily_cache_processor.py:1070): a view over nbac_schedule",
    ),
    ("player_daily_cache", "nba_raw.nbac_gamebook_player_stats"): (
        f"{CC}:633",
        INPUT,
        "the DNP games (minutes NULL or '00:00', cc:653) counted out of the expected games "
        f"(dnp_aware, {PDC}builders/completeness_checker.py:133)",
    ),
    ("team_defense_zone_analysis", VIEW): (
        f"{CC}:326",
        INPUT,
        "the completeness check's expected games: the team's Final game dates of the season "
        f"to the date (cc:304-332, called at {TDZA}:716-725); below 70% no row (:916-939)",
    ),
    ("player_shot_zone_analysis", VIEW): (f"{CC}:401", INPUT, GAMES_WINDOW),
    ("player_composite_factors", VIEW): (f"{CC}:401", INPUT, GAMES_WINDOW),
    ("ml_feature_store", VIEW): (f"{CC}:401", INPUT, GAMES_WINDOW),
    ("team_defense_zone_analysis", ATTEMPTS): (f"{TDZA}:583", IGNORED, LOCKOUT),
    ("player_shot_zone_analysis", ATTEMPTS): (f"{PSZA}:849", IGNORED, LOCKOUT),
    ("player_daily_cache", ATTEMPTS): (
        f"{PDC}player_daily_cache_processor.py:826",
        IGNORED,
        LOCKOUT,
    ),
    ("ml_feature_store", ATTEMPTS): (f"{MLFS}:1115", IGNORED, LOCKOUT),
    ("player_composite_factors", ATTEMPTS): (
        f"{PCF}:746",
        IGNORED,
        "its circuit breaker's attempts; its writer, _increment_reprocess_count (:816), has no "
        "caller: no lockout",
    ),
    ("prediction_coordinator", "nba_predictions.model_registry"): (
        "predictions/worker/prediction_systems/catboost_monthly.py:299",
        IGNORED,
        "which shadow models run (loaded at the worker's start, predictions/worker/worker.py:"
        "338, refreshed on a TTL, :378-397): deployment configuration; no completion names it",
    ),
    ("prediction_coordinator", "nba_orchestration.circuit_breaker_state"): (
        "predictions/worker/system_circuit_breaker.py:242",
        IGNORED,
        "its own bookkeeping: the per-system circuit breaker (table :61; written :276-411); "
        "an open system's prediction is skipped for 30 min (predictions/worker/worker.py:1578)",
    ),
}

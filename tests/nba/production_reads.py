"""The columns production's NBA code reads of each routes.yaml input, under production's names.

Invariant: every column here is a column production's code (najicham/nba-stats-scraper,
commit 18f6ecf) reads of that input of that processor, and it is in the input's ``fields``;
routes.yaml may list a ``fields`` name only if the reference warehouse has that column or it
is here. Found by ``scoperouter lineage`` over production's code (``field_not_listed``), each
read checked at its ``path:line`` (the first line lineage reports; a column often recurs). The
reference pipeline's names of the same columns (``fg_made`` for ``field_goals_made``) are
listed beside them in routes.yaml. Not here, and never in ``fields`` (IDENTITY, METADATA):
columns that identify a row (a new or deleted row names every column; no event changes them
alone) and write metadata (``processed_at`` changes on every rewrite, which the SDK's diff
ignores: ``sdk/change_detection.py``; listing it would make every rewrite relevant), and reads
that feed only monitoring (``MONITORING_ONLY``).
"""

from __future__ import annotations

A = "data_processors/analytics/"
P = "data_processors/precompute/"
PGS = A + "player_game_summary/player_game_summary_processor.py"
TDGS = A + "team_defense_game_summary/team_defense_game_summary_processor.py"
TOGS = A + "team_offense_game_summary/team_offense_game_summary_processor.py"
UPGC = A + "upcoming_player_game_context/"
UPGC_ASYNC = UPGC + "async_upcoming_player_game_context_processor.py"
UTGC = A + "upcoming_team_game_context/"
FX = P + "ml_feature_store/feature_extractor.py"
MLFS = P + "ml_feature_store/ml_feature_store_processor.py"
PCF = P + "player_composite_factors/player_composite_factors_processor.py"
PDC = P + "player_daily_cache/player_daily_cache_processor.py"
PSZA = P + "player_shot_zone_analysis/player_shot_zone_analysis_processor.py"
TDZA = P + "team_defense_zone_analysis/team_defense_zone_analysis_processor.py"
COORD = "predictions/coordinator/"
PUB = "data_processors/publishing/"
CC = "shared/utils/completeness_checker.py"

# (processor, input) -> {path:line where production reads them: the columns, space-separated}
PRODUCTION_READS: dict[tuple[str, str], dict[str, str]] = {
    ("player_game_summary", "nba_analytics.team_offense_game_summary"): {
        f"{PGS}:1147-1151": "fg_attempts ft_attempts quality_tier",
    },
    ("player_game_summary", "nba_raw.bdl_player_boxscores"): {
        f"{PGS}:936-961": (
            "field_goals_attempted field_goals_made free_throws_attempted "
            "free_throws_made personal_fouls player_full_name "
            "three_pointers_attempted three_pointers_made"
        ),
    },
    ("player_game_summary", "nba_raw.nbac_gamebook_player_stats"): {
        f"{PGS}:541": "player_status",
        f"{PGS}:889-914": (
            "defensive_rebounds field_goals_attempted field_goals_made "
            "free_throws_attempted free_throws_made offensive_rebounds "
            "personal_fouls player_name three_pointers_attempted "
            "three_pointers_made total_rebounds"
        ),
    },
    ("player_game_summary", "nba_raw.odds_api_player_points_props"): {
        f"{PGS}:1072-1073": "over_price_american under_price_american",
    },
    ("team_defense_game_summary", "nba_raw.bdl_player_boxscores"): {
        f"{TDGS}:603-616": (
            "assists blocks defensive_rebounds field_goals_attempted "
            "field_goals_made free_throws_attempted free_throws_made "
            "offensive_rebounds personal_fouls steals three_pointers_attempted "
            "three_pointers_made"
        ),
    },
    ("team_defense_game_summary", "nba_raw.nbac_gamebook_player_stats"): {
        f"{TDGS}:575-592": (
            "assists blocks defensive_rebounds field_goals_attempted "
            "field_goals_made free_throws_attempted free_throws_made "
            "offensive_rebounds personal_fouls player_status steals "
            "three_pointers_attempted three_pointers_made total_rebounds"
        ),
    },
    ("team_defense_game_summary", "nba_raw.nbac_play_by_play"): {
        f"{TDGS}:1075-1086": "event_type player_1_team_abbr shot_distance shot_made shot_type",
    },
    ("team_defense_game_summary", "nba_raw.nbac_team_boxscore"): {
        f"{TDGS}:390-408": (
            "assists defensive_rebounds fg_attempted fg_made fg_percentage "
            "ft_attempted ft_made ft_percentage offensive_rebounds personal_fouls "
            "plus_minus points three_pt_attempted three_pt_made three_pt_percentage "
            "total_rebounds turnovers"
        ),
    },
    ("team_offense_game_summary", "nba_raw.bdl_player_boxscores"): {
        f"{TOGS}:636-644": (  # the fallback's UNION
            "blocks defensive_rebounds field_goals_attempted field_goals_made "
            "free_throws_attempted free_throws_made offensive_rebounds "
            "personal_fouls rebounds steals three_pointers_attempted "
            "three_pointers_made"
        ),
    },
    ("team_offense_game_summary", "nba_raw.nbac_gamebook_player_stats"): {
        f"{TOGS}:611-633": (  # the fallback; also team_offense_composable.py:235-253
            "blocks defensive_rebounds field_goals_attempted field_goals_made "
            "free_throws_attempted free_throws_made offensive_rebounds "
            "personal_fouls player_status steals three_pointers_attempted "
            "three_pointers_made total_rebounds"
        ),
    },
    ("team_offense_game_summary", "nba_raw.nbac_play_by_play"): {
        f"{TOGS}:737-752": "event_type player_1_team_abbr shot_distance shot_made shot_type",
    },
    ("team_offense_game_summary", "nba_raw.nbac_team_boxscore"): {
        f"{TOGS}:440-461": (  # also team_offense_composable.py:182-199
            "assists blocks defensive_rebounds fg_attempted fg_made fg_percentage "
            "ft_attempted ft_made ft_percentage minutes offensive_rebounds "
            "personal_fouls plus_minus points steals team_name three_pt_attempted "
            "three_pt_made three_pt_percentage total_rebounds turnovers"
        ),
    },
    ("upcoming_player_game_context", "nba_analytics.player_game_summary"): {
        f"{UPGC}loaders/game_data_loaders.py:211-219": (
            "assists defensive_rebounds fg_attempts fg_makes ft_attempts ft_makes "
            "minutes_played offensive_rebounds three_pt_attempts three_pt_makes"
        ),
        f"{UPGC}team_context.py:774": "is_dnp",
    },
    ("upcoming_player_game_context", "nba_analytics.team_defense_game_summary"): {
        f"{UPGC}team_context.py:243-244": "opp_ft_attempts opponent_pace",
        f"{UPGC}team_context.py:311": "defensive_rating",
    },
    ("upcoming_player_game_context", "nba_analytics.team_offense_game_summary"): {
        f"{UPGC}team_context.py:64-65": "offensive_rating possessions rebounds",
    },
    ("upcoming_player_game_context", "nba_raw.bettingpros_player_points_props"): {
        f"{UPGC_ASYNC}:641-661": "is_active is_best_line opening_line",
    },
    ("upcoming_player_game_context", "nba_raw.nbac_injury_report"): {
        f"{UPGC}loaders/game_data_loaders.py:450-451": "reason reason_category",
    },
    ("upcoming_team_game_context", "nba_raw.nbac_injury_report"): {
        f"{UTGC}calculators/source_fallback.py:297-298": "confidence_score reason_category",
    },
    ("team_defense_zone_analysis", "nba_analytics.team_defense_game_summary"): {
        f"{TDZA}:470-475": (
            "opp_mid_range_attempts opp_mid_range_makes opp_paint_attempts "
            "opp_paint_makes opp_three_pt_attempts opp_three_pt_makes"
        ),
        # the SELECT * of :418-431 (lineage: unresolved), its columns used in pandas
        f"{TDZA}:1124-1179": (
            "points_in_paint_allowed blocks_paint blocks_mid_range blocks_three_pt "
            "defensive_rating opponent_pace"
        ),
    },
    ("player_shot_zone_analysis", "nba_analytics.player_game_summary"): {
        f"{PSZA}:653-679": (
            "assisted_fg_makes fg_attempts fg_makes is_active mid_range_attempts "
            "mid_range_makes minutes_played paint_attempts paint_makes "
            "three_pt_attempts three_pt_makes unassisted_fg_makes"
        ),
    },
    ("player_composite_factors", "nba_analytics.player_game_summary"): {
        f"{PCF}:548": "minutes_played",
    },
    ("player_composite_factors", "nba_analytics.upcoming_player_game_context"): {
        f"{PCF}:341-353": (
            "avg_minutes_per_game_last_7 avg_usage_rate_last_7_games back_to_back "
            "back_to_backs_last_14_days days_rest games_in_last_7_days "
            "minutes_in_last_7_days opponent_pace_last_10 opponent_team_abbr "
            "pace_differential player_age projected_usage_rate star_teammates_out"
        ),
        f"{PCF}:909": "is_production_ready",
    },
    ("player_composite_factors", "nba_analytics.upcoming_team_game_context"): {
        f"{PCF}:437-438": "game_spread game_total",
        f"{PCF}:940": "is_production_ready",
    },
    ("player_composite_factors", "nba_precompute.player_shot_zone_analysis"): {
        f"{PCF}:451-455": (
            "early_season_flag mid_range_rate_last_10 paint_rate_last_10 "
            "primary_scoring_zone three_pt_rate_last_10"
        ),
        f"{PCF}:889": "is_production_ready",
    },
    ("player_composite_factors", "nba_precompute.team_defense_zone_analysis"): {
        f"{PCF}:468-472": (
            "early_season_flag mid_range_defense_vs_league_avg "
            "paint_defense_vs_league_avg three_pt_defense_vs_league_avg "
            "weakest_zone"
        ),
        f"{PCF}:927": "is_production_ready",
    },
    ("player_daily_cache", "nba_analytics.player_game_summary"): {
        f"{PDC}:426-439": "assisted_fg_makes fg_makes is_active is_dnp minutes_played ts_pct",
    },
    ("player_daily_cache", "nba_analytics.team_offense_game_summary"): {
        f"{PDC}:460": "offensive_rating",
    },
    ("player_daily_cache", "nba_analytics.upcoming_player_game_context"): {
        f"{PDC}:498-505": (
            "avg_minutes_per_game_last_7 back_to_backs_last_14_days "
            "fourth_quarter_minutes_last_7 games_in_last_14_days "
            "games_in_last_7_days minutes_in_last_14_days minutes_in_last_7_days "
            "player_age"
        ),
    },
    ("player_daily_cache", "nba_precompute.player_shot_zone_analysis"): {
        f"{PDC}:637-639": "paint_rate_last_10 primary_scoring_zone three_pt_rate_last_10",
    },
    # the completeness check in shared code (CC), read through the schedule view: games
    # windows (:403, :416) and day windows (:474, :488)
    ("player_daily_cache", "nba_raw.nbac_schedule"): {
        f"{CC}:403-488": "game_status",
    },
    ("player_daily_cache", "nba_raw.nbac_gamebook_player_stats"): {
        f"{CC}:632-653": "minutes",
    },
    ("team_defense_zone_analysis", "nba_raw.nbac_schedule"): {
        f"{CC}:330": "game_status",
    },
    ("player_shot_zone_analysis", "nba_raw.nbac_schedule"): {
        f"{CC}:403-416": "game_status",
    },
    ("player_composite_factors", "nba_raw.nbac_schedule"): {
        f"{CC}:403-416": "game_status",
    },
    ("ml_feature_store", "nba_raw.nbac_schedule"): {
        f"{CC}:403-416": "game_status",
    },
    ("ml_feature_store", "nba_analytics.player_game_summary"): {
        f"{FX}:688-697": (
            "assisted_fg_makes fg_attempts fg_makes ft_makes is_dnp "
            "mid_range_attempts minutes_played paint_attempts three_pt_attempts"
        ),
        f"{FX}:2544": "unassisted_fg_makes",
    },
    ("ml_feature_store", "nba_analytics.team_offense_game_summary"): {
        f"{FX}:929-931": "offensive_rating win_flag",
        f"{FX}:1789": "margin_of_victory",
    },
    ("ml_feature_store", "nba_analytics.upcoming_player_game_context"): {
        f"{FX}:228-238": (
            "avg_minutes_per_game_last_7 current_points_line days_rest "
            "has_prop_line home_game is_production_ready opponent_team_abbr "
            "player_status"
        ),
        f"{FX}:616-627": (
            "back_to_back game_spread game_total games_in_last_7_days "
            "minutes_in_last_7_days opponent_days_rest prop_over_streak "
            "prop_under_streak season_phase star_teammates_out"
        ),
    },
    ("ml_feature_store", "nba_precompute.player_composite_factors"): {
        f"{FX}:524-527": "fatigue_score pace_score shot_zone_mismatch_score usage_spike_score",
        f"{MLFS}:1203": "is_production_ready",
    },
    ("ml_feature_store", "nba_precompute.player_daily_cache"): {
        f"{FX}:485-496": (
            "assisted_rate_last_10 games_in_last_7_days paint_rate_last_10 "
            "player_age points_avg_last_10 points_avg_last_5 points_avg_season "
            "points_std_last_10 team_off_rating_last_10 three_pt_rate_last_10"
        ),
        f"{MLFS}:1197": "is_production_ready",
    },
    ("ml_feature_store", "nba_precompute.player_shot_zone_analysis"): {
        f"{FX}:558-560": "mid_range_rate_last_10 paint_rate_last_10 three_pt_rate_last_10",
        f"{MLFS}:1209": "is_production_ready",
    },
    ("ml_feature_store", "nba_precompute.team_defense_zone_analysis"): {
        f"{FX}:589-590": "defensive_rating_last_15 opponent_pace",
        f"{MLFS}:1233": "is_production_ready",
    },
    ("ml_feature_store", "nba_raw.bettingpros_player_points_props"): {
        f"{FX}:1034": "opening_line",
    },
    ("ml_feature_store", "nba_raw.nbac_injury_report"): {
        f"{MLFS}:2265": "confidence_score",
    },
    ("ml_feature_store", "nba_raw.odds_api_player_points_props"): {
        f"{FX}:2422-2423": "over_price under_price",
    },
    ("prediction_coordinator", "nba_analytics.upcoming_player_game_context"): {
        f"{COORD}player_loader.py:326-345": (
            "avg_minutes_per_game_last_7 back_to_back current_points_line days_rest "
            "has_prop_line home_game is_production_ready opponent_team_abbr "
            "player_status"
        ),
        f"{COORD}player_loader.py:826-828": "l10_games_used points_avg_last_5",
    },
    # the worker's feature read, run with the feature version as its filter (:943); the
    # quality gate reads a subset (coordinator/quality_gate.py:185-192). The feature columns'
    # names are made at run time (lineage cannot see them): FEATURE_STORE_FEATURE_COUNT = 60,
    # shared/ml/feature_contract.py:29
    ("prediction_coordinator", "nba_predictions.ml_feature_store_v2"): {
        "predictions/worker/data_loaders.py:905-912": " ".join(
            f"feature_{i}_value" for i in range(60)
        ),
        "predictions/worker/data_loaders.py:913-939": (
            "feature_quality_score data_source days_rest expected_games_count "
            "actual_games_count completeness_percentage missing_games_count is_production_ready "
            "data_quality_issues backfill_bootstrap_mode processing_decision_reason "
            "matchup_data_status feature_sources_json is_quality_ready quality_tier "
            "quality_alert_level matchup_quality_pct player_history_quality_pct "
            "vegas_quality_pct game_context_quality_pct default_feature_count "
            "required_default_count default_feature_indices is_training_ready"
        ),
        "predictions/worker/data_loaders.py:943": "feature_version",
    },
    ("prediction_coordinator", "nba_raw.bettingpros_player_points_props"): {
        f"{COORD}player_loader.py:720": "is_active",
    },
    ("player_prediction_exporter", "nba_analytics.player_game_summary"): {
        f"{PUB}tonight_player_exporter.py:287-296": (
            "fg_attempts fg_makes ft_attempts ft_makes is_dnp minutes_played "
            "over_under_result points_line three_pt_attempts three_pt_makes"
        ),
    },
    ("player_prediction_exporter", "nba_analytics.upcoming_player_game_context"): {
        f"{PUB}tonight_player_exporter.py:158-164": (
            "back_to_back current_points_line days_rest home_game line_movement "
            "opening_points_line opponent_team_abbr"
        ),
    },
    ("player_prediction_exporter", "nba_predictions.player_prop_predictions"): {
        f"{PUB}tonight_player_exporter.py:206-215": (
            "confidence_score current_points_line is_active line_margin "
            "pace_adjustment similar_games_count"
        ),
    },
    ("prediction_coordinator", "nba_raw.nbac_injury_report"): {
        # the worker's reads through predictions/shared (the player and his teammates)
        "predictions/shared/injury_integration.py:242-250": "reason reason_category confidence_score",
        "predictions/shared/injury_filter.py:154-158": "reason",
    },
    ("player_prediction_exporter", "nba_raw.nbac_injury_report"): {
        f"{PUB}tonight_player_exporter.py:179": "reason",
    },
    # the inputs tests/nba/production_tables.py classifies "input" (added with it)
    ("ml_feature_store", "nba_predictions.prediction_accuracy"): {
        f"{FX}:1704-1708": "line_value recommendation",
    },
    ("prediction_coordinator", "nba_raw.kalshi_player_props"): {
        f"{COORD}player_loader.py:885-899": (
            "line_value yes_bid no_bid liquidity_score market_ticker total_volume prop_type "
            "market_status"
        ),
    },
    ("player_prediction_exporter", "nba_precompute.player_composite_factors"): {
        f"{PUB}tonight_player_exporter.py:230-231": "fatigue_score fatigue_context_json",
    },
    ("player_prediction_exporter", "nba_precompute.team_defense_zone_analysis"): {
        f"{PUB}tonight_player_exporter.py:533-534": (
            "opponent_points_per_game defensive_rating_last_15"
        ),
    },
    ("daily_predictions_exporter", "nba_predictions.player_prop_predictions"): {
        f"{PUB}predictions_exporter.py:86-105": (
            "confidence_score current_points_line is_active pace_adjustment similar_games_count"
        ),
    },
}

# Columns that identify a row, or follow from its keys (a game's teams, a season from its
# date, a prop row's bookmaker and snapshot): production reads them to join, filter and pick
# rows, but no change event names one alone.
IDENTITY = frozenset(
    {
        "player_lookup",
        "universal_player_id",
        "team_abbr",
        "defending_team_abbr",
        "game_id",
        "nba_game_id",
        "season_year",
        "home_team_abbr",
        "away_team_abbr",
        "is_home",
        "bookmaker",
        "snapshot_timestamp",
        "minutes_before_tipoff",
        "report_date",
        "report_hour",
        "analysis_date",
        "cache_date",
        "bet_side",
        "market_type",
    }
)
# A player_game_summary row's opponent is fixed by its game and team (in the upcoming context
# it is a value: the next game's opponent, listed there).
IDENTITY_OF = {("nba_analytics.player_game_summary", "opponent_team_abbr")}
# Write metadata: changes on every rewrite, or only with the columns it stamps.
METADATA = frozenset({"processed_at", "created_at", "data_hash", "bookmaker_last_update"})
# Reads that feed checks, alerts and summaries, not the output (path:line).
MONITORING_ONLY: tuple[tuple[str, str, str, str], ...] = (
    (
        "player_game_summary",
        "nba_analytics.team_offense_game_summary",
        "points_scored",
        f"{PGS}:448",
    ),
    (
        "prediction_coordinator",
        "nba_analytics.upcoming_player_game_context",
        "completeness_percentage",
        f"{COORD}player_loader.py:220",
    ),
    # (the feature store's feature_quality_score and is_quality_ready are read for the morning
    # summary too, coordinator.py:2138-2139, but also by the quality gate, which decides
    # whether a player gets a prediction: quality_gate.py:185-192, :263-295 -- they are inputs)
)

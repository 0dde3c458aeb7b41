"""An extract of production's SQL (najicham/nba-stats-scraper, commit 18f6ecf): each
query copied verbatim from the cited path:line range, as test data for `scoperouter lineage`
(the Python-literal route). Never imported or run."""


# fmt: off
class Extract:
    # data_processors/analytics/upcoming_player_game_context/loaders/game_data_loaders.py:105-124 (verbatim)
    def load_schedule(self):
        query = f"""
        SELECT
            CONCAT(
                FORMAT_DATE('%Y%m%d', game_date),
                '_',
                away_team_tricode,
                '_',
                home_team_tricode
            ) as game_id,
            game_date,
            home_team_tricode as home_team_abbr,
            away_team_tricode as away_team_abbr,
            game_date_est,
            is_primetime,
            season_year
        FROM `{self.project_id}.nba_raw.v_nbac_schedule_latest`
        WHERE game_date >= @start_date
          AND game_date <= @end_date
        ORDER BY game_date, game_date_est
        """
        return query

    # data_processors/analytics/upcoming_player_game_context/loaders/game_data_loaders.py:205-226 (verbatim)
    def load_history(self):
        query = f"""
        SELECT
            pgs.player_lookup,
            pgs.game_date,
            pgs.team_abbr,
            pgs.points,
            pgs.minutes_played as minutes,
            pgs.assists,
            (pgs.offensive_rebounds + pgs.defensive_rebounds) as rebounds,
            pgs.fg_makes as field_goals_made,
            pgs.fg_attempts as field_goals_attempted,
            pgs.three_pt_makes as three_pointers_made,
            pgs.three_pt_attempts as three_pointers_attempted,
            pgs.ft_makes as free_throws_made,
            pgs.ft_attempts as free_throws_attempted,
            pgs.usage_rate
        FROM `{self.project_id}.nba_analytics.player_game_summary` pgs
        WHERE pgs.player_lookup IN UNNEST(@player_lookups)
          AND pgs.game_date >= @start_date
          AND pgs.game_date < @target_date
        ORDER BY pgs.player_lookup, pgs.game_date DESC
        """
        return query

    # data_processors/analytics/upcoming_player_game_context/loaders/game_data_loaders.py:445-470 (verbatim)
    def load_injuries(self):
        query = f"""
        WITH latest_report AS (
            SELECT
                player_lookup,
                injury_status,
                reason,
                reason_category,
                report_date,
                processed_at,
                ROW_NUMBER() OVER (
                    PARTITION BY player_lookup
                    ORDER BY report_date DESC, processed_at DESC
                ) as rn
            FROM `{self.project_id}.nba_raw.nbac_injury_report`
            WHERE player_lookup IN UNNEST(@player_lookups)
              AND game_date = @target_date
        )
        SELECT
            player_lookup,
            injury_status,
            reason,
            reason_category,
            processed_at
        FROM latest_report
        WHERE rn = 1
        """
        return query

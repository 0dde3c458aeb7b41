"""An extract of production's SQL (najicham/nba-stats-scraper, commit 18f6ecf): each
query copied verbatim from the cited path:line range, as test data for `scoperouter lineage`
(the Python-literal route). Never imported or run."""


# fmt: off
class Extract:
    # data_processors/analytics/player_game_summary/player_game_summary_processor.py:882-1204 (verbatim)
    def extract_raw_data(self, end_date, player_filter_clause, start_date):
        query = f"""
        WITH nba_com_data AS (
            SELECT
                game_id,
                game_date,
                season_year,
                player_lookup,
                player_name as player_full_name,
                team_abbr,
                player_status,
                dnp_reason,  -- DNP reason text from gamebook
                -- Team context from source (avoids game_id parsing)
                home_team_abbr as source_home_team,
                away_team_abbr as source_away_team,

                -- Core stats
                points,
                assists,
                total_rebounds,
                offensive_rebounds,
                defensive_rebounds,
                steals,
                blocks,
                turnovers,
                personal_fouls,

                -- Shooting stats
                field_goals_made,
                field_goals_attempted,
                three_pointers_made,
                three_pointers_attempted,
                free_throws_made,
                free_throws_attempted,

                -- Game context
                minutes,
                plus_minus,

                -- Metadata
                processed_at as source_processed_at,
                'nbac_gamebook' as primary_source

            FROM `{self.project_id}.nba_raw.nbac_gamebook_player_stats`
            WHERE game_date BETWEEN '{start_date}' AND '{end_date}'
                AND player_status IN ('active', 'dnp', 'inactive')  -- Include DNP players
                {player_filter_clause}
        ),

        bdl_data AS (
            SELECT
                game_id,
                game_date,
                season_year,
                player_lookup,
                player_full_name,
                team_abbr,
                'active' as player_status,
                CAST(NULL AS STRING) as dnp_reason,  -- BDL doesn't have DNP reason
                -- Team context: NULL for bdl, will be parsed from game_id
                CAST(NULL AS STRING) as source_home_team,
                CAST(NULL AS STRING) as source_away_team,

                -- Core stats
                points,
                assists,
                rebounds as total_rebounds,
                NULL as offensive_rebounds,
                NULL as defensive_rebounds,
                steals,
                blocks,
                turnovers,
                personal_fouls,

                -- Shooting stats (BDL now has all these fields as of 2024)
                field_goals_made,
                field_goals_attempted,
                three_pointers_made,
                three_pointers_attempted,
                free_throws_made,
                free_throws_attempted,

                -- Game context
                minutes,
                NULL as plus_minus,

                -- Metadata
                processed_at as source_processed_at,
                'bdl_boxscores' as primary_source

            FROM `{self.project_id}.nba_raw.bdl_player_boxscores`
            WHERE game_date BETWEEN '{start_date}' AND '{end_date}'
                {player_filter_clause}
        ),

        -- NBA.com Live Boxscores (FALLBACK - for evening processing)
        -- ENABLED 2026-02-02: Use when gamebook not available yet
        -- Only includes Final games (game_status = 'Final')
        nbac_boxscore_data AS (
            SELECT
                game_id,
                game_date,
                season_year,
                player_lookup,
                player_full_name,
                team_abbr,
                'active' as player_status,  -- Boxscores don't have DNP - those players aren't in the data
                CAST(NULL AS STRING) as dnp_reason,
                -- Team context from boxscore
                home_team_abbr as source_home_team,
                away_team_abbr as source_away_team,

                -- Core stats
                points,
                assists,
                total_rebounds,
                offensive_rebounds,
                defensive_rebounds,
                steals,
                blocks,
                turnovers,
                personal_fouls,

                -- Shooting stats
                field_goals_made,
                field_goals_attempted,
                three_pointers_made,
                three_pointers_attempted,
                free_throws_made,
                free_throws_attempted,

                -- Game context (minutes is STRING in boxscores, need to handle)
                minutes,
                plus_minus,

                -- Metadata
                processed_at as source_processed_at,
                'nbac_boxscores' as primary_source

            FROM `{self.project_id}.nba_raw.nbac_player_boxscores`
            WHERE game_date BETWEEN '{start_date}' AND '{end_date}'
                AND game_status = 'Final'  -- Only completed games
                {player_filter_clause}
        ),

        -- Combine with NBA.com priority (player-level merge)
        -- Priority: gamebook > boxscores > BDL
        -- CRITICAL FIX (2026-01-27): Changed from game-level to player-level merge
        --   Previously excluded 119 players/day including Jayson Tatum, Kyrie Irving, etc.
        -- DISABLED (2026-01-28): BDL data quality issues - using NBA.com only
        --   BDL returns ~50% of actual minutes/points for many players
        --   Set USE_BDL_DATA = True to re-enable
        -- ENABLED (2026-02-02): nbac_player_boxscores as evening fallback
        combined_data AS (
            {"-- Using boxscore fallback (gamebook not available)" if getattr(self, '_use_boxscore_fallback', False) else "-- All NBA.com gamebook data (primary source)"}
            SELECT * FROM {"nbac_boxscore_data" if getattr(self, '_use_boxscore_fallback', False) else "nba_com_data"}
            {"" if self.USE_BDL_DATA else "-- BDL DISABLED: Data quality issues (2026-01-28)"}
            {'''
            UNION ALL

            -- BDL data for players NOT in NBA.com (fills gaps)
            -- This ensures players like Jayson Tatum who may only be in BDL are included
            SELECT * FROM bdl_data bd
            WHERE NOT EXISTS (
                SELECT 1 FROM nba_com_data nc
                WHERE nc.game_id = bd.game_id
                  AND nc.player_lookup = bd.player_lookup
            )
            ''' if self.USE_BDL_DATA else ''}
        ),

        -- Deduplicate combined data (prevents duplicates from source overlap)
        -- Keeps most recent record by source_processed_at timestamp
        deduplicated_combined AS (
            SELECT * EXCEPT(rn) FROM (
                SELECT *,
                    ROW_NUMBER() OVER (
                        PARTITION BY game_id, player_lookup
                        ORDER BY source_processed_at DESC
                    ) as rn
                FROM combined_data
            ) WHERE rn = 1
        ),

        -- Deduplicate props: DraftKings first, then FanDuel, then others
        deduplicated_props AS (
            SELECT
                game_id,
                game_date,
                player_lookup,
                points_line,
                over_price_american,
                under_price_american,
                bookmaker,
                ROW_NUMBER() OVER (
                    PARTITION BY game_date, player_lookup
                    ORDER BY
                        CASE bookmaker
                            WHEN 'draftkings' THEN 1
                            WHEN 'fanduel' THEN 2
                            ELSE 3
                        END,
                        bookmaker
                ) as rn
            FROM `{self.project_id}.nba_raw.odds_api_player_points_props`
            WHERE game_date IN (SELECT DISTINCT game_date FROM deduplicated_combined)
        ),

        -- Add props context
        with_props AS (
            SELECT
                c.*,
                p.points_line,
                p.over_price_american,
                p.under_price_american,
                p.bookmaker as points_line_source
            FROM deduplicated_combined c
            LEFT JOIN deduplicated_props p
                ON c.game_date = p.game_date
                AND c.player_lookup = p.player_lookup
                AND p.rn = 1
        ),

        -- Add opponent context
        -- Expected game_id format: YYYYMMDD_AWAY_HOME (e.g., "20251229_ATL_OKC")
        -- See: shared/utils/game_id_converter.py for standard format
        --
        -- Strategy:
        -- 1. Prefer source_home_team/source_away_team from nbac_gamebook (most reliable)
        -- 2. Fall back to parsing game_id (handles BDL data and any edge cases)
        -- SAFE_OFFSET used for backward compatibility with old non-standard game_ids
        games_context AS (
            SELECT DISTINCT
                game_id,
                game_date,
                source_home_team,
                source_away_team,
                -- Use source data if available, else parse from game_id
                COALESCE(
                    source_away_team,
                    CASE WHEN game_id LIKE '%_%_%' THEN SPLIT(game_id, '_')[SAFE_OFFSET(1)] END
                ) as away_team_abbr,
                COALESCE(
                    source_home_team,
                    CASE WHEN game_id LIKE '%_%_%' THEN SPLIT(game_id, '_')[SAFE_OFFSET(2)] END
                ) as home_team_abbr
            FROM deduplicated_combined
        ),

        -- Team stats for usage_rate calculation
        -- Note: game_id format may differ (Away_Home vs Home_Away), so we add reversed format for matching
        -- IMPORTANT: Use ROW_NUMBER to prefer gold > silver quality when duplicates exist with different game_ids
        team_stats_raw AS (
            SELECT
                game_id,
                -- Also compute reversed game_id for matching (handles format mismatch)
                CASE
                    WHEN game_id LIKE '%_%_%' THEN
                        CONCAT(
                            SUBSTR(game_id, 1, 9),  -- date prefix (YYYYMMDD_)
                            SPLIT(game_id, '_')[OFFSET(2)], '_',  -- swap team positions
                            SPLIT(game_id, '_')[OFFSET(1)]
                        )
                    ELSE game_id
                END as game_id_reversed,
                team_abbr,
                fg_attempts as team_fg_attempts,
                ft_attempts as team_ft_attempts,
                turnovers as team_turnovers,
                possessions as team_possessions,
                quality_tier,
                -- Rank by quality tier (gold > silver > bronze) to pick best when duplicates exist
                ROW_NUMBER() OVER (
                    PARTITION BY
                        game_date,
                        -- Normalize game_id by sorting team abbrs alphabetically
                        CASE
                            WHEN SPLIT(game_id, '_')[SAFE_OFFSET(1)] < SPLIT(game_id, '_')[SAFE_OFFSET(2)]
                            THEN CONCAT(SUBSTR(game_id, 1, 9), SPLIT(game_id, '_')[SAFE_OFFSET(1)], '_', SPLIT(game_id, '_')[SAFE_OFFSET(2)])
                            ELSE CONCAT(SUBSTR(game_id, 1, 9), SPLIT(game_id, '_')[SAFE_OFFSET(2)], '_', SPLIT(game_id, '_')[SAFE_OFFSET(1)])
                        END,
                        team_abbr
                    ORDER BY
                        CASE quality_tier WHEN 'gold' THEN 1 WHEN 'silver' THEN 2 WHEN 'bronze' THEN 3 ELSE 4 END,
                        possessions DESC  -- Prefer higher possession count (more complete data)
                ) as quality_rank
            FROM `{self.project_id}.nba_analytics.team_offense_game_summary`
            WHERE game_date BETWEEN '{start_date}' AND '{end_date}'
        ),
        -- Only keep the best quality record for each game+team combination
        team_stats AS (
            SELECT game_id, game_id_reversed, team_abbr, team_fg_attempts, team_ft_attempts, team_turnovers, team_possessions
            FROM team_stats_raw
            WHERE quality_rank = 1
        )

        SELECT
            wp.*,
            gc.away_team_abbr,
            gc.home_team_abbr,
            -- Team stats for usage_rate (will be NULL if team_offense_game_summary unavailable)
            ts.team_fg_attempts,
            ts.team_ft_attempts,
            ts.team_turnovers,
            ts.team_possessions,
            COALESCE(
                CASE
                    WHEN wp.team_abbr = gc.home_team_abbr THEN gc.away_team_abbr
                    ELSE gc.home_team_abbr
                END,
                ''  -- Default to empty string when NULL (handles non-standard game_ids from BDL)
            ) as opponent_team_abbr,
            CASE
                WHEN wp.team_abbr = gc.home_team_abbr THEN TRUE
                ELSE FALSE
            END as home_game

        FROM with_props wp
        LEFT JOIN games_context gc ON wp.game_id = gc.game_id
        -- Join on either exact game_id OR reversed format (handles Away_Home vs Home_Away mismatch)
        LEFT JOIN team_stats ts ON (wp.game_id = ts.game_id OR wp.game_id = ts.game_id_reversed)
            AND wp.team_abbr = ts.team_abbr
        ORDER BY wp.game_date DESC, wp.game_id, wp.player_lookup
        """
        return query

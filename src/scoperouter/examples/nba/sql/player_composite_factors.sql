-- player_composite_factors (phase4.player_composite_factors): per player in today's context,
-- the matchup factor from shot zones, the opponent's zone defense, the team's spread, home,
-- and 14-day load (minutes, usage) with back-to-back from yesterday's minutes; the usage
-- context's star_teammates_out (usage_spike_factor.py:85, :99).
-- @player_ids: the scope.
WITH ctx AS (
  SELECT c.player, c.team, c.opponent, c.points_line, c.home, c.star_teammates_out
  FROM nba_analytics.upcoming_player_game_context AS c
  WHERE c.game_date = @game_date AND (@player_ids IS NULL OR c.player IN UNNEST(@player_ids))
),
recent AS (
  SELECT g.player, COUNTIF(COALESCE(g.minutes, 0) > 0) AS games_last_14,
         SUM(IF(COALESCE(g.minutes, 0) > 0, g.minutes, 0)) AS minutes_last_14,
         AVG(IF(COALESCE(g.minutes, 0) > 0, g.usage_rate, NULL)) AS usage_last_14,
         MAX(IF(g.game_date = DATE_SUB(@game_date, INTERVAL 1 DAY), COALESCE(g.minutes, 0) > 0, FALSE)) AS back_to_back
  FROM nba_analytics.player_game_summary AS g
  WHERE g.game_date < @game_date AND g.game_date >= DATE_SUB(@game_date, INTERVAL 14 DAY)
  GROUP BY g.player
)
SELECT ctx.player, ctx.opponent, ctx.points_line, z.avg_points, z.three_rate,
       d.avg_points_allowed AS opp_points_allowed, d.opp_fg_pct, tc.spread AS team_spread,
       tc.total AS game_total, recent.games_last_14, recent.minutes_last_14,
       CAST(recent.back_to_back AS INT64) AS back_to_back,
       COALESCE(ctx.star_teammates_out, 0) AS star_teammates_out,  -- usage_context_json
       ROUND(COALESCE(z.avg_points, 0) * COALESCE(d.avg_points_allowed, 112.0) / 112.0
             - 0.1 * COALESCE(tc.spread, 0) + IF(ctx.home = 1, 0.5, 0)
             - 0.002 * recent.minutes_last_14 - IF(recent.back_to_back, 0.5, 0)
             + 0.01 * COALESCE(recent.usage_last_14, 0), 3) AS matchup_factor
FROM ctx
LEFT JOIN nba_analytics.upcoming_team_game_context AS tc
  ON tc.team = ctx.team AND tc.game_date = @game_date
LEFT JOIN nba_precompute.player_shot_zone_analysis AS z
  ON z.player = ctx.player AND z.game_date = @game_date
LEFT JOIN nba_precompute.team_defense_zone_analysis AS d
  ON d.team = ctx.opponent AND d.game_date = @game_date
LEFT JOIN recent ON recent.player = ctx.player

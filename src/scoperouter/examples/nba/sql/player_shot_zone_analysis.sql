-- player_shot_zone_analysis (phase4.player_shot_zone_analysis): per player, the last 10
-- games up to @game_date (sample window) and the last 20 (trend window); played games only.
-- @player_ids: the scope.
WITH ranked AS (
  SELECT g.player, g.points, g.minutes, g.paint_fga, g.mid_fga, g.three_fga,
         COALESCE(g.minutes, 0) > 0 AS played,
         ROW_NUMBER() OVER (PARTITION BY g.player ORDER BY g.game_date DESC) AS rn
  FROM nba_analytics.player_game_summary AS g
  WHERE g.game_date <= @game_date AND (@player_ids IS NULL OR g.player IN UNNEST(@player_ids))
)
SELECT r.player,
       COUNTIF(r.played AND r.rn <= 10) AS games_played,
       AVG(IF(r.played AND r.rn <= 10, r.points, NULL)) AS avg_points,
       AVG(IF(r.played AND r.rn <= 10, r.minutes, NULL)) AS avg_minutes,
       SAFE_DIVIDE(SUM(IF(r.played AND r.rn <= 10, r.paint_fga, 0)),
                   SUM(IF(r.played AND r.rn <= 10, r.paint_fga + r.mid_fga + r.three_fga, 0))) AS paint_rate,
       SAFE_DIVIDE(SUM(IF(r.played AND r.rn <= 10, r.mid_fga, 0)),
                   SUM(IF(r.played AND r.rn <= 10, r.paint_fga + r.mid_fga + r.three_fga, 0))) AS mid_rate,
       SAFE_DIVIDE(SUM(IF(r.played AND r.rn <= 10, r.three_fga, 0)),
                   SUM(IF(r.played AND r.rn <= 10, r.paint_fga + r.mid_fga + r.three_fga, 0))) AS three_rate,
       SAFE_DIVIDE(SUM(IF(r.played, r.paint_fga, 0)),
                   SUM(IF(r.played, r.paint_fga + r.mid_fga + r.three_fga, 0))) AS paint_rate_last_20
FROM ranked AS r
WHERE r.rn <= 20
GROUP BY r.player

-- player_daily_cache (phase4.player_daily_cache): per player in today's context, season
-- (180 days) and last-10 averages of played games before the date, the team's pace over its
-- last 10 final games, today's line and the shot-zone average. @player_ids: the scope.
WITH ctx AS (
  SELECT c.player, c.team, c.points_line
  FROM nba_analytics.upcoming_player_game_context AS c
  WHERE c.game_date = @game_date AND (@player_ids IS NULL OR c.player IN UNNEST(@player_ids))
),
games AS (
  SELECT g.player, g.points, g.minutes, g.usage_rate, COALESCE(g.minutes, 0) > 0 AS played,
         ROW_NUMBER() OVER (PARTITION BY g.player ORDER BY g.game_date DESC) AS rn
  FROM nba_analytics.player_game_summary AS g
  WHERE g.game_date < @game_date AND g.game_date >= DATE_SUB(@game_date, INTERVAL 180 DAY)
),
form AS (
  SELECT games.player,
         COUNTIF(games.played) AS games_played_season,
         AVG(IF(games.played, games.points, NULL)) AS points_avg_season,
         AVG(IF(games.played AND games.rn <= 10, games.points, NULL)) AS points_avg_last_10,
         AVG(IF(games.played AND games.rn <= 10, games.minutes, NULL)) AS minutes_avg_last_10,
         AVG(IF(games.played AND games.rn <= 10, games.usage_rate, NULL)) AS usage_rate_last_10
  FROM games GROUP BY games.player
),
pace AS (  -- the team's last 10 rows before the date; final games with a pace count
  SELECT p.team, AVG(IF(p.status = 'final' AND p.pace IS NOT NULL, p.pace, NULL)) AS team_pace_last_10
  FROM (
    SELECT o.team, o.status, o.pace
    FROM nba_analytics.team_offense_game_summary AS o
    WHERE o.game_date < @game_date AND o.game_date >= DATE_SUB(@game_date, INTERVAL 180 DAY)
    QUALIFY ROW_NUMBER() OVER (PARTITION BY o.team ORDER BY o.game_date DESC) <= 10
  ) AS p
  GROUP BY p.team
)
SELECT ctx.player, ctx.points_line, form.games_played_season, form.points_avg_season,
       form.points_avg_last_10, form.minutes_avg_last_10, form.usage_rate_last_10,
       z.avg_points AS shot_zone_avg_points, pace.team_pace_last_10
FROM ctx
LEFT JOIN form ON form.player = ctx.player
LEFT JOIN pace ON pace.team = ctx.team
LEFT JOIN nba_precompute.player_shot_zone_analysis AS z
  ON z.player = ctx.player AND z.game_date = @game_date

-- player_daily_cache (phase4.player_daily_cache): per player in today's context, and per
-- player of production's roster expansion (player_daily_cache_processor.py:477-545: on a team
-- with context rows on the date, a player_game_summary row in the 30 days before it, no
-- context row; his latest such row's team, no context columns), season (365 days:
-- refbase.PDC_SEASON_DAYS) and last-10 averages of played games before the date, the team's
-- pace over its last 10 final games, today's fatigue stand-ins (production copies the
-- context's fatigue columns, aggregators/context_aggregator.py:29-52) and the shot-zone
-- average; no line (production's cache reads none). @player_ids: the scope; the expansion reads the whole date's context whatever
-- the scope.
WITH every_ctx AS (  -- player_daily_cache_processor.py:492-508
  SELECT c.player, c.team, c.games_last_14, c.minutes_last_14
  FROM nba_analytics.upcoming_player_game_context AS c
  WHERE c.game_date = @game_date
),
roster AS (  -- player_daily_cache_processor.py:509-537
  SELECT g.player, g.team, CAST(NULL AS INT64) AS games_last_14,
         CAST(NULL AS INT64) AS minutes_last_14
  FROM nba_analytics.player_game_summary AS g
  WHERE g.game_date >= DATE_SUB(@game_date, INTERVAL 30 DAY) AND g.game_date < @game_date
    AND g.team IN (SELECT e.team FROM every_ctx AS e)
    AND g.player NOT IN (SELECT e.player FROM every_ctx AS e)
  QUALIFY ROW_NUMBER() OVER (PARTITION BY g.player ORDER BY g.game_date DESC) = 1
),
ctx AS (  -- the UNION, :538-540
  SELECT u.player, u.team, u.games_last_14, u.minutes_last_14
  FROM (
    SELECT e.player, e.team, e.games_last_14, e.minutes_last_14 FROM every_ctx AS e
    UNION ALL
    SELECT r.player, r.team, r.games_last_14, r.minutes_last_14 FROM roster AS r
  ) AS u
  WHERE @player_ids IS NULL OR u.player IN UNNEST(@player_ids)
),
games AS (
  SELECT g.player, g.points, g.minutes, g.usage_rate, COALESCE(g.minutes, 0) > 0 AS played,
         ROW_NUMBER() OVER (PARTITION BY g.player ORDER BY g.game_date DESC) AS rn
  FROM nba_analytics.player_game_summary AS g
  WHERE g.game_date < @game_date AND g.game_date >= DATE_SUB(@game_date, INTERVAL 365 DAY)
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
    WHERE o.game_date < @game_date AND o.game_date >= DATE_SUB(@game_date, INTERVAL 365 DAY)
    QUALIFY ROW_NUMBER() OVER (PARTITION BY o.team ORDER BY o.game_date DESC) <= 10
  ) AS p
  GROUP BY p.team
)
SELECT ctx.player, ctx.games_last_14, ctx.minutes_last_14, form.games_played_season, form.points_avg_season,
       form.points_avg_last_10, form.minutes_avg_last_10, form.usage_rate_last_10,
       z.avg_points AS shot_zone_avg_points, pace.team_pace_last_10
FROM ctx
LEFT JOIN form ON form.player = ctx.player
LEFT JOIN pace ON pace.team = ctx.team
LEFT JOIN nba_precompute.player_shot_zone_analysis AS z
  ON z.player = ctx.player AND z.game_date = @game_date

-- ml_feature_store (phase4.ml_feature_store): the feature vector per player with composite
-- factors on @game_date: Phase 4 tables, the player's last 10 played games (60 days) and
-- season (365 days), the team's season pace, today's context (home; player_status,
-- star_teammates_out, game_total: features 10, 37, 38), the line, the player's
-- injury status and feature 47 (teammate_usage_available, feature_extractor.py:1434-1475):
-- the sum of his OUT/DOUBTFUL teammates' average usage_rate over the 30 days before the
-- date, games with minutes > 10 (none for a player himself out or doubtful, or with no such
-- teammate). Rosters are relation data (@rosters: the team_players rows). @player_ids: the
-- scope.
WITH comp AS (
  SELECT c.player, c.opponent, c.matchup_factor
  FROM nba_precompute.player_composite_factors AS c
  WHERE c.game_date = @game_date AND (@player_ids IS NULL OR c.player IN UNNEST(@player_ids))
),
games AS (
  SELECT g.player, g.points, g.game_date,
         ROW_NUMBER() OVER (PARTITION BY g.player ORDER BY g.game_date DESC) AS rn
  FROM nba_analytics.player_game_summary AS g
  WHERE g.game_date < @game_date AND g.game_date >= DATE_SUB(@game_date, INTERVAL 365 DAY)
    AND COALESCE(g.minutes, 0) > 0
),
form AS (
  SELECT games.player,
         AVG(IF(games.rn <= 10 AND games.game_date >= DATE_SUB(@game_date, INTERVAL 60 DAY),
                games.points, NULL)) AS points_avg_last_10,
         AVG(games.points) AS points_avg_season
  FROM games GROUP BY games.player
),
mates AS (  -- the OUT/DOUBTFUL teammates on the date: fx:1435-1443
  SELECT comp.player, t.player AS mate
  FROM comp
  JOIN UNNEST(@rosters) AS own ON own.player = comp.player
  JOIN UNNEST(@rosters) AS t ON t.team = own.team AND t.player <> comp.player
  JOIN nba_raw.nbac_injury_report AS ti ON ti.player = t.player AND ti.game_date = @game_date
  WHERE ti.injury_status IN ('out', 'doubtful')
),
mate_usage AS (  -- their usage in the 30 days before the date, minutes > 10: fx:1444-1456
  SELECT u.player, AVG(u.usage_rate) AS usage_rate
  FROM nba_analytics.player_game_summary AS u
  WHERE u.game_date < @game_date AND u.game_date >= DATE_SUB(@game_date, INTERVAL 30 DAY)
    AND u.usage_rate IS NOT NULL AND COALESCE(u.minutes, 0) > 10
  GROUP BY u.player
),
freed AS (  -- fx:1458-1464
  SELECT mates.player, SUM(mate_usage.usage_rate) AS teammate_usage_available
  FROM mates JOIN mate_usage ON mate_usage.player = mates.mate
  GROUP BY mates.player
),
team_pace AS (
  SELECT t.team, AVG(t.pace) AS team_pace_season
  FROM nba_analytics.team_offense_game_summary AS t
  WHERE t.game_date < @game_date AND t.game_date >= DATE_SUB(@game_date, INTERVAL 365 DAY)
    AND t.status = 'final' AND t.pace IS NOT NULL
  GROUP BY t.team
)
SELECT comp.player, pr.points_line, z.avg_points, z.three_rate,
       d.avg_points_allowed AS opp_points_allowed, comp.matchup_factor,
       k.team_pace_last_10 AS team_pace, tp.team_pace_season,
       k.minutes_avg_last_10 AS avg_minutes, k.usage_rate_last_10 AS usage_rate,
       form.points_avg_last_10, form.points_avg_season, ctx.home, inj.injury_status,
       IF(COALESCE(inj.injury_status, '') NOT IN ('out', 'doubtful'),
          fr.teammate_usage_available, NULL) AS teammate_usage_available,
       -- features 10, 37, 38 from today's context (feature_calculator.py:97-106;
       -- ml_feature_store_processor.py:1982-1983, :1989-1990)
       CASE LOWER(COALESCE(ctx.player_status, '')) WHEN 'probable' THEN 1.0
            WHEN 'questionable' THEN 2.0 WHEN 'doubtful' THEN 3.0 WHEN 'out' THEN 3.0
            ELSE 0.0 END AS injury_risk,
       CAST(COALESCE(ctx.star_teammates_out, 0) AS FLOAT64) AS star_teammates_out,
       ctx.game_total
FROM comp
LEFT JOIN nba_precompute.player_shot_zone_analysis AS z
  ON z.player = comp.player AND z.game_date = @game_date
LEFT JOIN nba_precompute.player_daily_cache AS k
  ON k.player = comp.player AND k.game_date = @game_date
LEFT JOIN nba_analytics.upcoming_player_game_context AS ctx
  ON ctx.player = comp.player AND ctx.game_date = @game_date
LEFT JOIN nba_raw.odds_api_player_points_props AS pr
  ON pr.player = comp.player AND pr.game_date = @game_date
LEFT JOIN nba_raw.nbac_injury_report AS inj
  ON inj.player = comp.player AND inj.game_date = @game_date
LEFT JOIN nba_precompute.team_defense_zone_analysis AS d
  ON d.team = comp.opponent AND d.game_date = @game_date
LEFT JOIN freed AS fr ON fr.player = comp.player
LEFT JOIN form ON form.player = comp.player
LEFT JOIN team_pace AS tp ON tp.team = ctx.team

-- player_prediction_exporter (phase56.player_prediction_exporter): one page per player with a
-- prediction on @game_date: the prediction, tonight's game, the injury report, the last 10
-- games' points before the date and the season's (production's quick numbers: season_ppg and
-- games_played over the season before the date, tonight_player_exporter.py:359-365; one
-- season in the reference warehouse, 365 days). @player_ids: the scope.
WITH form AS (
  SELECT h.player, AVG(h.points) AS last_10_ppg
  FROM (
    SELECT g.player, g.points
    FROM nba_analytics.player_game_summary AS g
    WHERE g.game_date < @game_date
    QUALIFY ROW_NUMBER() OVER (PARTITION BY g.player ORDER BY g.game_date DESC) <= 10
  ) AS h
  GROUP BY h.player
),
season AS (
  SELECT s.player, AVG(s.points) AS season_ppg, COUNT(*) AS games_played
  FROM nba_analytics.player_game_summary AS s
  WHERE s.game_date < @game_date AND s.game_date >= DATE_SUB(@game_date, INTERVAL 365 DAY)
  GROUP BY s.player
)
SELECT p.player, p.predicted_points, p.points_line, p.recommendation, ctx.opponent, ctx.home,
       inj.injury_status, form.last_10_ppg, season.season_ppg, season.games_played
FROM nba_predictions.player_prop_predictions AS p
LEFT JOIN nba_analytics.upcoming_player_game_context AS ctx
  ON ctx.player = p.player AND ctx.game_date = @game_date
LEFT JOIN nba_raw.nbac_injury_report AS inj ON inj.player = p.player AND inj.game_date = @game_date
LEFT JOIN form ON form.player = p.player
LEFT JOIN season ON season.player = p.player
WHERE p.game_date = @game_date AND (@player_ids IS NULL OR p.player IN UNNEST(@player_ids))

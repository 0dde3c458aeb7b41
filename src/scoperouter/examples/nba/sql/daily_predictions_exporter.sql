-- daily_predictions_exporter (phase56.daily_predictions_exporter): the day's file, every
-- prediction of @game_date ranked by the size of its edge; always the whole date.
SELECT p.player, p.predicted_points, p.recommendation, p.edge,
       IF(p.edge IS NULL, NULL,
          ROW_NUMBER() OVER (PARTITION BY p.edge IS NULL ORDER BY ABS(p.edge) DESC, p.player)) AS edge_rank
FROM nba_predictions.player_prop_predictions AS p
WHERE p.game_date = @game_date

-- prediction_coordinator (phase56.prediction_coordinator): per player with features on
-- @game_date, the prediction from the features, the player's baseline and injury status
-- from today's context and the current line. @player_ids: the scope.
WITH feats AS (
  SELECT f.player, f.avg_points, f.points_avg_last_10, f.opp_points_allowed, f.matchup_factor,
         f.team_pace
  FROM nba_predictions.ml_feature_store_v2 AS f
  WHERE f.game_date = @game_date AND (@player_ids IS NULL OR f.player IN UNNEST(@player_ids))
),
pred AS (
  SELECT feats.player, ctx.player_status AS injury_status,  -- player_loader.py:338
         (0.3 * COALESCE(feats.avg_points, 0)
          + 0.1 * COALESCE(feats.points_avg_last_10, feats.avg_points, 0)
          + 0.1 * COALESCE(ctx.points_avg_last_10, feats.points_avg_last_10, feats.avg_points, 0)
          + 0.3 * COALESCE(feats.matchup_factor, 0)
          + 0.2 * COALESCE(feats.avg_points, 0) * COALESCE(feats.opp_points_allowed, 112.0) / 112.0
          + 0.05 * (COALESCE(feats.team_pace, 100.0) - 100.0)) AS raw_points
  FROM feats
  LEFT JOIN nba_analytics.upcoming_player_game_context AS ctx
    ON ctx.player = feats.player AND ctx.game_date = @game_date
)
SELECT pred.player,
       ROUND(CASE pred.injury_status WHEN 'out' THEN 0
             WHEN 'doubtful' THEN 0.8 * pred.raw_points WHEN 'questionable' THEN 0.8 * pred.raw_points
             ELSE pred.raw_points END, 1) AS predicted_points,
       pr.points_line
FROM pred
LEFT JOIN nba_raw.odds_api_player_points_props AS pr
  ON pr.player = pred.player AND pr.game_date = @game_date

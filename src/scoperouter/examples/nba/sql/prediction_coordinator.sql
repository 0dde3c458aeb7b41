-- prediction_coordinator (phase56.prediction_coordinator): per player with features on
-- @game_date, the prediction from the features, the player's baseline and injury status
-- from today's context and the current line, and the worker's read of the injury report
-- (predictions/shared/injury_integration.py:239-255, :432-551): the player's OUT and DOUBTFUL
-- teammates on the date give the usage boost (2% per OUT teammate, capped at 1.25) and the
-- opportunity score. Rosters are relation data (@rosters: the team_players rows).
-- @player_ids: the scope.
WITH feats AS (
  SELECT f.player, f.avg_points, f.points_avg_last_10, f.opp_points_allowed, f.matchup_factor,
         f.team_pace
  FROM nba_predictions.ml_feature_store_v2 AS f
  WHERE f.game_date = @game_date AND (@player_ids IS NULL OR f.player IN UNNEST(@player_ids))
),
mates AS (  -- the teammates' injury report on the date: injury_integration.py:432-443
  SELECT feats.player,
         COUNTIF(ti.injury_status = 'out') AS n_out,
         COUNTIF(ti.injury_status = 'doubtful') AS n_doubtful
  FROM feats
  JOIN UNNEST(@rosters) AS own ON own.player = feats.player
  JOIN UNNEST(@rosters) AS t ON t.team = own.team AND t.player <> feats.player
  LEFT JOIN nba_raw.nbac_injury_report AS ti
    ON ti.player = t.player AND ti.game_date = @game_date
  GROUP BY feats.player
),
pred AS (
  SELECT feats.player, ctx.player_status AS injury_status,  -- player_loader.py:338
         LEAST(1.25, 1 + 0.02 * COALESCE(m.n_out, 0)) AS usage_boost,
         LEAST(100, 15 * COALESCE(m.n_out, 0) + 5 * COALESCE(m.n_doubtful, 0)) AS opportunity,
         (0.3 * COALESCE(feats.avg_points, 0)
          + 0.1 * COALESCE(feats.points_avg_last_10, feats.avg_points, 0)
          + 0.1 * COALESCE(ctx.points_avg_last_10, feats.points_avg_last_10, feats.avg_points, 0)
          + 0.3 * COALESCE(feats.matchup_factor, 0)
          + 0.2 * COALESCE(feats.avg_points, 0) * COALESCE(feats.opp_points_allowed, 112.0) / 112.0
          + 0.05 * (COALESCE(feats.team_pace, 100.0) - 100.0)) AS raw_points
  FROM feats
  LEFT JOIN nba_analytics.upcoming_player_game_context AS ctx
    ON ctx.player = feats.player AND ctx.game_date = @game_date
  LEFT JOIN mates AS m ON m.player = feats.player
)
SELECT pred.player,
       ROUND(CASE pred.injury_status WHEN 'out' THEN 0
             WHEN 'doubtful' THEN 0.8 * pred.raw_points * pred.usage_boost
             WHEN 'questionable' THEN 0.8 * pred.raw_points * pred.usage_boost
             ELSE pred.raw_points * pred.usage_boost END, 1) AS predicted_points,
       pr.points_line,
       ROUND(pred.usage_boost, 2) AS teammate_usage_boost,
       pred.opportunity AS teammate_opportunity_score
FROM pred
LEFT JOIN nba_raw.odds_api_player_points_props AS pr
  ON pr.player = pred.player AND pr.game_date = @game_date

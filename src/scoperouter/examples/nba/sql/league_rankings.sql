-- league_rankings (phase4.league_rankings): league-wide points percentile of the players who
-- played on @game_date; always the whole date.
SELECT g.player, g.points, g.minutes,
       ROUND(PERCENT_RANK() OVER (ORDER BY g.points), 4) AS points_pct
FROM nba_analytics.player_game_summary AS g
WHERE g.game_date = @game_date AND g.minutes > 0

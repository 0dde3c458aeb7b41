-- team_defense_zone_analysis (phase4.team_defense_zone_analysis): per team, its last 15
-- games up to @game_date; the averages count final games only. @team_ids: the scope.
SELECT w.team, COUNTIF(w.status = 'final') AS games,
       SAFE_DIVIDE(SUM(IF(w.status = 'final', w.points_allowed, 0)), COUNTIF(w.status = 'final')) AS avg_points_allowed,
       SAFE_DIVIDE(SUM(IF(w.status = 'final', w.opp_fg_made, 0)),
                   SUM(IF(w.status = 'final', w.opp_fg_attempted, 0))) AS opp_fg_pct,
       SAFE_DIVIDE(SUM(IF(w.status = 'final', w.opp_three_made, 0)), COUNTIF(w.status = 'final')) AS avg_opp_three_made,
       SAFE_DIVIDE(SUM(IF(w.status = 'final', w.steals, 0)), COUNTIF(w.status = 'final')) AS avg_steals
FROM (
  SELECT t.team, t.status, t.points_allowed, t.opp_fg_made, t.opp_fg_attempted,
         t.opp_three_made, t.steals
  FROM nba_analytics.team_defense_game_summary AS t
  WHERE t.game_date <= @game_date AND (@team_ids IS NULL OR t.team IN UNNEST(@team_ids))
  QUALIFY ROW_NUMBER() OVER (PARTITION BY t.team ORDER BY t.game_date DESC) <= 15
) AS w
GROUP BY w.team

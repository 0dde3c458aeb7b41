-- team_defense_game_summary (phase3.team_defense_game_summary): one row per team playing on
-- @game_date: what it allowed (team box score, the opponent's shot zones) and what its own
-- players did (gamebook, else balldontlie). @team_ids: the scope (NULL = the whole date).
WITH games AS (
  SELECT s.game_id, s.home AS team, s.away AS opponent, s.status
  FROM nba_raw.nbac_scoreboard_v2 AS s WHERE s.game_date = @game_date
  UNION ALL
  SELECT s.game_id, s.away, s.home, s.status
  FROM nba_raw.nbac_scoreboard_v2 AS s WHERE s.game_date = @game_date
),
box AS (
  SELECT gb.player, gb.team, gb.points, gb.rebounds, gb.fg_made, gb.fg_attempted,
         gb.three_made, gb.turnovers
  FROM nba_raw.nbac_gamebook_player_stats AS gb WHERE gb.game_date = @game_date
  UNION ALL
  SELECT b.player, b.team, b.points, b.rebounds, b.fg_made, b.fg_attempted, b.three_made,
         b.turnovers
  FROM nba_raw.bdl_player_boxscores AS b
  WHERE b.game_date = @game_date
    AND b.player NOT IN (SELECT g2.player FROM nba_raw.nbac_gamebook_player_stats AS g2
                         WHERE g2.game_date = @game_date)
),
own AS (
  SELECT box.team, SUM(box.points) AS points_scored, SUM(box.rebounds) AS team_rebounds,
         SUM(box.turnovers) AS team_turnovers, SUM(box.fg_made) AS team_fg_made,
         SUM(box.fg_attempted) AS team_fg_attempted, SUM(box.three_made) AS team_three_made
  FROM box GROUP BY box.team
),
opp_zones AS (
  SELECT z.team, SUM(z.paint_fga) AS paint_fga
  FROM nba_raw.nbac_play_by_play AS z WHERE z.game_date = @game_date GROUP BY z.team
)
SELECT g.team, g.game_id, g.opponent, g.status,
       tb.opp_points AS points_allowed, tb.opp_fg_made, tb.opp_fg_attempted, tb.opp_three_made,
       oz.paint_fga AS opp_paint_fga, tb.def_rebounds, tb.steals, tb.blocks,
       own.points_scored, own.points_scored - tb.opp_points AS margin, own.team_rebounds,
       own.team_turnovers, own.team_fg_made, own.team_fg_attempted, own.team_three_made
FROM games AS g
LEFT JOIN nba_raw.nbac_team_boxscore AS tb ON tb.team = g.team AND tb.game_date = @game_date
LEFT JOIN own ON own.team = g.team
LEFT JOIN opp_zones AS oz ON oz.team = g.opponent
WHERE @team_ids IS NULL OR g.team IN UNNEST(@team_ids)

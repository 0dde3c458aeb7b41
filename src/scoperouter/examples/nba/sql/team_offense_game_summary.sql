-- team_offense_game_summary (phase3.team_offense_game_summary): one row per team playing on
-- @game_date: its players' sums, three-point attempts from play-by-play, possessions and
-- pace (overtime periods shorten the minutes). @team_ids: the scope (NULL = the whole date).
WITH games AS (
  SELECT s.game_id, s.home AS team, s.status, s.periods
  FROM nba_raw.nbac_scoreboard_v2 AS s WHERE s.game_date = @game_date
  UNION ALL
  SELECT s.game_id, s.away, s.status, s.periods
  FROM nba_raw.nbac_scoreboard_v2 AS s WHERE s.game_date = @game_date
),
box AS (
  SELECT gb.player, gb.team, gb.points, gb.assists, gb.fg_made, gb.fg_attempted,
         gb.three_made, gb.turnovers
  FROM nba_raw.nbac_gamebook_player_stats AS gb WHERE gb.game_date = @game_date
  UNION ALL
  SELECT b.player, b.team, b.points, b.assists, b.fg_made, b.fg_attempted, b.three_made,
         b.turnovers
  FROM nba_raw.bdl_player_boxscores AS b
  WHERE b.game_date = @game_date
    AND b.player NOT IN (SELECT g2.player FROM nba_raw.nbac_gamebook_player_stats AS g2
                         WHERE g2.game_date = @game_date)
),
sums AS (
  SELECT box.team, SUM(box.points) AS points, SUM(box.assists) AS assists,
         SUM(box.fg_made) AS fg_made, SUM(box.fg_attempted) AS fg_attempted,
         SUM(box.three_made) AS three_made, SUM(box.turnovers) AS turnovers
  FROM box GROUP BY box.team
),
zones AS (
  SELECT z.team, SUM(z.three_fga) AS three_fga
  FROM nba_raw.nbac_play_by_play AS z WHERE z.game_date = @game_date GROUP BY z.team
)
SELECT g.team, g.game_id, g.status, sums.points, sums.assists, sums.fg_made,
       sums.fg_attempted, sums.three_made, sums.turnovers, zones.three_fga,
       tb.possessions,
       IF(g.status = 'final',
          ROUND(tb.possessions * 48.0 / (48.0 + 5.0 * GREATEST(g.periods - 4, 0)), 2),
          NULL) AS pace
FROM games AS g
LEFT JOIN sums ON sums.team = g.team
LEFT JOIN zones ON zones.team = g.team
LEFT JOIN nba_raw.nbac_team_boxscore AS tb ON tb.team = g.team AND tb.game_date = @game_date
WHERE @team_ids IS NULL OR g.team IN UNNEST(@team_ids)

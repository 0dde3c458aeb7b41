-- player_game_summary (phase3.player_game_summary): one row per player of @game_date.
-- The reference processor's reads as the BigQuery SQL a port of it runs; `scoperouter lineage`
-- diffs them against routes.yaml and tests/lineage checks them against the Python.
-- @player_ids: the scope (NULL = the whole date).
WITH gamebook AS (
  SELECT gb.player, gb.team, gb.game_id, gb.minutes, gb.points, gb.rebounds, gb.assists,
         gb.steals, gb.blocks, gb.turnovers, gb.fg_made, gb.fg_attempted, gb.three_made,
         gb.plus_minus, gb.dnp_reason
  FROM nba_raw.nbac_gamebook_player_stats AS gb
  WHERE gb.game_date = @game_date AND (@player_ids IS NULL OR gb.player IN UNNEST(@player_ids))
),
bdl AS (  -- balldontlie where the gamebook has no row
  SELECT b.player, b.team, b.game_id, b.minutes, b.points, b.rebounds, b.assists, b.steals,
         b.blocks, b.turnovers, b.fg_made, b.fg_attempted, b.three_made
  FROM nba_raw.bdl_player_boxscores AS b
  WHERE b.game_date = @game_date AND (@player_ids IS NULL OR b.player IN UNNEST(@player_ids))
),
zones AS (
  SELECT z.player, z.paint_fga, z.mid_fga, z.three_fga
  FROM nba_raw.nbac_play_by_play AS z
  WHERE z.game_date = @game_date
),
props AS (
  SELECT p.player, p.game_id, p.points_line
  FROM nba_raw.odds_api_player_points_props AS p
  WHERE p.game_date = @game_date
),
injuries AS (
  SELECT i.player, i.injury_status, i.injury_reason
  FROM nba_raw.nbac_injury_report AS i
  WHERE i.game_date = @game_date
),
team_totals AS (  -- usage rate needs the team's attempts, turnovers and possessions
  SELECT t.team, t.fg_attempted, t.turnovers, t.possessions
  FROM nba_analytics.team_offense_game_summary AS t
  WHERE t.game_date = @game_date
)
SELECT COALESCE(g.player, b.player, p.player, i.player) AS player,
       COALESCE(g.game_id, b.game_id, p.game_id) AS game_id,
       COALESCE(g.minutes, b.minutes) AS minutes,
       COALESCE(g.points, b.points) AS points,
       COALESCE(g.rebounds, b.rebounds) AS rebounds,
       COALESCE(g.assists, b.assists) AS assists,
       COALESCE(g.steals, b.steals) AS steals,
       COALESCE(g.blocks, b.blocks) AS blocks,
       COALESCE(g.turnovers, b.turnovers) AS turnovers,
       COALESCE(g.fg_made, b.fg_made) AS fg_made,
       COALESCE(g.fg_attempted, b.fg_attempted) AS fg_attempted,
       COALESCE(g.three_made, b.three_made) AS three_made,
       g.plus_minus, g.dnp_reason,
       z.paint_fga, z.mid_fga, z.three_fga,
       p.points_line,
       i.injury_status, i.injury_reason,
       ROUND(SAFE_DIVIDE(
         (COALESCE(g.fg_attempted, b.fg_attempted) + COALESCE(g.turnovers, b.turnovers))
           * tt.possessions,
         tt.fg_attempted + tt.turnovers), 2) AS usage_rate
FROM gamebook AS g
FULL OUTER JOIN bdl AS b ON b.player = g.player
FULL OUTER JOIN props AS p ON p.player = COALESCE(g.player, b.player)
FULL OUTER JOIN injuries AS i ON i.player = COALESCE(g.player, b.player, p.player)
LEFT JOIN zones AS z ON z.player = COALESCE(g.player, b.player)
LEFT JOIN team_totals AS tt ON tt.team = COALESCE(g.team, b.team)

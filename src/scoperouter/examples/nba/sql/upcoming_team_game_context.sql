-- upcoming_team_game_context (phase3.upcoming_team_game_context): one row per team on
-- @game_date's schedule: the line from its side, and how many of its rostered players
-- (@rosters, relation data) are out or doubtful/questionable. @team_ids: the scope.
WITH sides AS (
  SELECT s.game_id, s.home AS team, s.away AS opponent, 1 AS home
  FROM nba_raw.nbac_schedule AS s WHERE s.game_date = @game_date
  UNION ALL
  SELECT s.game_id, s.away, s.home, 0
  FROM nba_raw.nbac_schedule AS s WHERE s.game_date = @game_date
),
statuses AS (
  SELECT r.team, COUNTIF(i.injury_status = 'out') AS players_out,
         COUNTIF(i.injury_status IN ('doubtful', 'questionable')) AS players_questionable
  FROM UNNEST(@rosters) AS r
  JOIN nba_raw.nbac_injury_report AS i ON i.player = r.player AND i.game_date = @game_date
  GROUP BY r.team
)
SELECT sd.team, sd.game_id, sd.opponent, sd.home,
       IF(sd.home = 1, gl.spread_home, -gl.spread_home) AS spread, gl.total,
       COALESCE(st.players_out, 0) AS players_out,
       COALESCE(st.players_questionable, 0) AS players_questionable
FROM sides AS sd
LEFT JOIN nba_raw.odds_api_game_lines AS gl ON gl.game_id = sd.game_id AND gl.game_date = @game_date
LEFT JOIN statuses AS st ON st.team = sd.team
WHERE @team_ids IS NULL OR sd.team IN UNNEST(@team_ids)

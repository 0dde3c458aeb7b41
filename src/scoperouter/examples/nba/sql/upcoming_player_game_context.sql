-- upcoming_player_game_context (phase3.upcoming_player_game_context): one row per rostered
-- player of a team on @game_date's schedule. Rosters are relation data (@rosters: the
-- team_players rows), not a table. History: the player's last 10 played games and 14-day
-- load before the date; the opponent's pace and points allowed over its last 10 final games
-- (30 days); the OUT/DOUBTFUL teammates on the date (every teammate but the player), and
-- production's star_teammates_out (team_context.py:710-817): the team's STAR players (>= 10
-- played games in the season; over the last 10 days, else the season, >= 18 points or >= 28
-- minutes with >= 12 points) OUT/DOUBTFUL on the date. @player_ids: the scope (NULL = the
-- whole date).
WITH sides AS (
  SELECT s.game_id, s.home AS team, s.away AS opponent, 1 AS home, s.start_time
  FROM nba_raw.nbac_schedule AS s WHERE s.game_date = @game_date
  UNION ALL
  SELECT s.game_id, s.away, s.home, 0, s.start_time
  FROM nba_raw.nbac_schedule AS s WHERE s.game_date = @game_date
),
players AS (
  SELECT r.player, sides.team, sides.game_id, sides.opponent, sides.home, sides.start_time
  FROM sides JOIN UNNEST(@rosters) AS r ON r.team = sides.team
  WHERE @player_ids IS NULL OR r.player IN UNNEST(@player_ids)
),
history AS (  -- the last 10 rows in the 30 days before the date; played games count
  SELECT h.player,
         AVG(IF(COALESCE(h.minutes, 0) > 0, h.points, NULL)) AS points_avg_last_10,
         AVG(IF(COALESCE(h.minutes, 0) > 0, h.usage_rate, NULL)) AS usage_avg_last_10
  FROM (
    SELECT pgs.player, pgs.minutes, pgs.points, pgs.usage_rate,
           ROW_NUMBER() OVER (PARTITION BY pgs.player ORDER BY pgs.game_date DESC) AS rn
    FROM nba_analytics.player_game_summary AS pgs
    WHERE pgs.game_date < @game_date
      AND pgs.game_date >= DATE_SUB(@game_date, INTERVAL 30 DAY)
  ) AS h
  WHERE h.rn <= 10
  GROUP BY h.player
),
fatigue AS (
  SELECT f.player, COUNTIF(COALESCE(f.minutes, 0) > 0) AS games_last_14,
         SUM(f.minutes) AS minutes_last_14
  FROM nba_analytics.player_game_summary AS f
  WHERE f.game_date < @game_date AND f.game_date >= DATE_SUB(@game_date, INTERVAL 13 DAY)
  GROUP BY f.player
),
mates AS (  -- the teammates' injury report on the date: team_context.py:793-806
  SELECT p.player,
         COUNTIF(ti.injury_status IN ('out', 'doubtful')) AS teammates_out
  FROM players AS p
  JOIN UNNEST(@rosters) AS t ON t.team = p.team AND t.player <> p.player
  LEFT JOIN nba_raw.nbac_injury_report AS ti
    ON ti.player = t.player AND ti.game_date = @game_date
  GROUP BY p.player
),
season AS (  -- the season's played games: team_context.py:763-776
  SELECT s.player, COUNT(*) AS games, AVG(s.points) AS points, AVG(s.minutes) AS minutes
  FROM nba_analytics.player_game_summary AS s
  WHERE s.game_date < @game_date AND s.game_date >= DATE_SUB(@game_date, INTERVAL 365 DAY)
    AND COALESCE(s.minutes, 0) > 0
  GROUP BY s.player
),
recent AS (  -- the last 10 days: team_context.py:749-760
  SELECT rc.player, AVG(rc.points) AS points, AVG(rc.minutes) AS minutes
  FROM nba_analytics.player_game_summary AS rc
  WHERE rc.game_date < @game_date AND rc.game_date >= DATE_SUB(@game_date, INTERVAL 10 DAY)
    AND rc.points IS NOT NULL
  GROUP BY rc.player
),
stars AS (  -- team_context.py:778-791
  SELECT season.player
  FROM season LEFT JOIN recent ON recent.player = season.player
  WHERE season.games >= 10
    AND (COALESCE(recent.points, season.points) >= 18
         OR (COALESCE(recent.minutes, season.minutes) >= 28
             AND COALESCE(recent.points, season.points) >= 12))
),
stars_out AS (  -- per team, the stars OUT/DOUBTFUL on the date: team_context.py:793-806
  SELECT st.team, COUNT(*) AS star_teammates_out
  FROM UNNEST(@rosters) AS st
  JOIN stars ON stars.player = st.player
  JOIN nba_raw.nbac_injury_report AS si ON si.player = st.player AND si.game_date = @game_date
  WHERE si.injury_status IN ('out', 'doubtful')
  GROUP BY st.team
),
opp_pace AS (
  SELECT o.team, AVG(o.pace) AS pace
  FROM nba_analytics.team_offense_game_summary AS o
  WHERE o.game_date < @game_date AND o.game_date >= DATE_SUB(@game_date, INTERVAL 30 DAY)
    AND o.status = 'final' AND o.pace IS NOT NULL
  GROUP BY o.team
),
opp_defense AS (
  SELECT d.team, AVG(d.points_allowed) AS points_allowed
  FROM nba_analytics.team_defense_game_summary AS d
  WHERE d.game_date < @game_date AND d.game_date >= DATE_SUB(@game_date, INTERVAL 30 DAY)
    AND d.status = 'final' AND d.points_allowed IS NOT NULL
  GROUP BY d.team
)
SELECT p.player, p.team, p.game_id, p.opponent, p.home, p.start_time,
       pr.points_line, pr.over_price, pr.under_price,
       IF(p.home = 1, gl.spread_home, -gl.spread_home) AS team_spread,
       gl.total AS game_total,
       inj.injury_status AS player_status, COALESCE(m.teammates_out, 0) AS teammates_out,
       COALESCE(so.star_teammates_out, 0) AS star_teammates_out,
       h.points_avg_last_10, h.usage_avg_last_10,
       f.games_last_14, f.minutes_last_14,
       op.pace AS opp_pace_last_10, od.points_allowed AS opp_points_allowed_last_10
FROM players AS p
LEFT JOIN nba_raw.odds_api_player_points_props AS pr
  ON pr.player = p.player AND pr.game_date = @game_date
LEFT JOIN nba_raw.odds_api_game_lines AS gl ON gl.game_id = p.game_id AND gl.game_date = @game_date
LEFT JOIN nba_raw.nbac_injury_report AS inj ON inj.player = p.player AND inj.game_date = @game_date
LEFT JOIN mates AS m ON m.player = p.player
LEFT JOIN stars_out AS so ON so.team = p.team
LEFT JOIN history AS h ON h.player = p.player
LEFT JOIN fatigue AS f ON f.player = p.player
LEFT JOIN opp_pace AS op ON op.team = p.opponent
LEFT JOIN opp_defense AS od ON od.team = p.opponent

"""Reads the SQL route used to miss, each a false "covered" verdict: a column hidden by a
projection alias of the same name, unqualified HAVING / QUALIFY / JOIN USING columns, a
``SELECT *`` whose columns reach the result through a UNION, a CTE or a MERGE, and the
source of an ``UPDATE ... FROM``. Production snippets cite najicham/nba-stats-scraper."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from lineage_support import codes, variant

from scoperouter.lineage.analyse import analyse_code
from scoperouter.lineage.reads import Origin
from scoperouter.lineage.sql import sql_reads

AT = Origin("q.sql", 1)

# mlb_prediction_grading_processor.py:829-839 (f-string holes as the Python route fills them)
UPDATE_FROM = """
UPDATE `__scoperouter_dyn0.mlb_raw.bp_pitcher_props` bp
SET bp.actual_value = pgs.strikeouts,
    bp.is_scored = TRUE,
    bp.is_push = (CAST(pgs.strikeouts AS FLOAT64) = bp.over_line)
FROM `__scoperouter_dyn1.mlb_analytics.pitcher_game_summary` pgs
WHERE bp.player_lookup = REPLACE(pgs.player_lookup, '_', '')
  AND bp.game_date = pgs.game_date
  AND bp.market_id = 285
  AND bp.is_scored = FALSE
  AND pgs.strikeouts IS NOT NULL
"""


@pytest.mark.parametrize(
    ("sql", "table", "columns"),
    [
        # team_defense_game_summary_processor.py:602,618 (an expression aliased as its column)
        (
            "SELECT game_id, COALESCE(points, 0) as points "
            "FROM `p.nba_raw.bdl_player_boxscores` WHERE game_date = '2024-01-01'",
            "nba_raw.bdl_player_boxscores",
            {"game_id", "points", "game_date"},
        ),
        # team_defense_game_summary_processor.py:634 (the same inside an aggregate)
        (
            "SELECT game_id, SUM(points) as points FROM nba_raw.x GROUP BY game_id",
            "nba_raw.x",
            {"game_id", "points"},
        ),
        # WHERE sees the table's column, never the projection alias
        ("SELECT a AS b FROM nba_raw.x WHERE b > 1", "nba_raw.x", {"a", "b"}),
        # an unqualified column in HAVING
        ("SELECT a FROM nba_raw.x GROUP BY a HAVING SUM(b) > 0", "nba_raw.x", {"a", "b"}),
        # lineup_k_analysis_processor.py:196 (QUALIFY's PARTITION BY decides which row survives)
        (
            "SELECT player_lookup, k_rate FROM nba_raw.splits QUALIFY ROW_NUMBER() OVER "
            "(PARTITION BY player_lookup, split_category ORDER BY snapshot_date DESC) = 1",
            "nba_raw.splits",
            {"player_lookup", "k_rate", "split_category", "snapshot_date"},
        ),
        # JOIN ... USING (k) reads k from both sides (feature_extractor.py:1057 joins so)
        ("SELECT x.a FROM nba_raw.x x JOIN nba_raw.y y USING (k)", "nba_raw.x", {"a", "k"}),
        ("SELECT x.a FROM nba_raw.x x JOIN nba_raw.y y USING (k)", "nba_raw.y", {"k"}),
        (
            "SELECT x.a FROM nba_raw.x x JOIN nba_raw.y y ON x.k = y.k JOIN nba_raw.z z USING (j)",
            "nba_raw.z",
            {"j"},
        ),
        # UPDATE ... FROM: the source's columns in SET and WHERE
        (
            UPDATE_FROM,
            "mlb_analytics.pitcher_game_summary",
            {"strikeouts", "player_lookup", "game_date"},
        ),
        (
            "UPDATE nba_analytics.t t SET a = s.b FROM (SELECT * FROM nba_raw.s) s WHERE t.k = s.k",
            "nba_raw.s",
            {"b", "k"},
        ),
        # MERGE USING a subquery selecting *: the columns its WHEN clauses take
        (
            "MERGE nba_analytics.t T USING (SELECT * FROM nba_raw.x WHERE d = 1) S "
            "ON T.a = S.a WHEN MATCHED THEN UPDATE SET b = S.b",
            "nba_raw.x",
            {"a", "b", "d"},
        ),
        (
            "WITH src AS (SELECT * FROM nba_raw.x) MERGE nba_analytics.t T USING src S "
            "ON T.a = S.a WHEN MATCHED THEN UPDATE SET b = S.b",
            "nba_raw.x",
            {"a", "b"},
        ),
    ],
)
def test_column_read_is_found(sql: str, table: str, columns: set[str]) -> None:
    """Every column the statement uses from the table is a read of it."""
    r = sql_reads(sql, AT)
    assert columns <= r.tables.get(table, set()), (r.tables, r.unresolved)


@pytest.mark.parametrize(
    ("sql", "tables"),
    [
        # team_defense_zone_analysis_processor.py:419-433 (the whole rows go to a dataframe)
        (
            """WITH ranked_games AS (
                SELECT *,
                  ROW_NUMBER() OVER (PARTITION BY defending_team_abbr ORDER BY game_date DESC)
                    as game_rank
                FROM `p.nba_analytics.team_defense_game_summary`
                WHERE game_date < '2025-01-01'
            )
            SELECT * FROM ranked_games WHERE game_rank <= 15
            ORDER BY defending_team_abbr, game_date DESC""",
            {"nba_analytics.team_defense_game_summary"},
        ),
        ("SELECT * FROM nba_raw.x UNION ALL SELECT * FROM nba_raw.y", {"nba_raw.x", "nba_raw.y"}),
        ("WITH s AS (SELECT * FROM nba_raw.x) SELECT * FROM s", {"nba_raw.x"}),
        ("SELECT * FROM (SELECT * FROM nba_raw.x WHERE a > 0)", {"nba_raw.x"}),
        ("WITH s AS (SELECT * FROM nba_raw.x) SELECT s.* FROM s", {"nba_raw.x"}),
        (
            "INSERT INTO nba_analytics.t SELECT * FROM nba_raw.x UNION ALL SELECT * FROM nba_raw.y",
            {"nba_raw.x", "nba_raw.y"},
        ),
        (
            "MERGE nba_analytics.t T USING (SELECT * FROM nba_raw.x) S ON T.a = S.a "
            "WHEN NOT MATCHED THEN INSERT ROW",
            {"nba_raw.x"},
        ),
        ("SELECT a FROM nba_raw.y WHERE k IN (SELECT * FROM nba_raw.x)", {"nba_raw.x"}),
    ],
)
def test_star_reaching_the_result_is_unresolved(sql: str, tables: set[str]) -> None:
    """A ``SELECT *`` whose columns all reach the result leaves each table's columns unknown."""
    r = sql_reads(sql, AT)
    stars = [u.what for u in r.unresolved if u.what.startswith("SELECT * from")]
    for t in tables:
        assert any(t in w for w in stars), (t, r.unresolved)


@pytest.mark.parametrize(
    ("sql", "tables"),
    [
        # a star whose consumer names its columns is resolved, not unknown
        ("WITH d AS (SELECT * FROM nba_raw.x) SELECT d.a FROM d", {"nba_raw.x": {"a"}}),
        ("SELECT COUNT(*) AS n FROM (SELECT * FROM nba_raw.x)", {"nba_raw.x": set()}),
        (
            "SELECT a FROM nba_raw.x WHERE EXISTS (SELECT * FROM nba_raw.y WHERE y.k = x.k)",
            {"nba_raw.x": {"a", "k"}, "nba_raw.y": {"k"}},
        ),
        # an alias in ORDER BY / QUALIFY / GROUP BY is the projection, not a column
        ("SELECT a AS b FROM nba_raw.x ORDER BY b", {"nba_raw.x": {"a"}}),
        (
            "SELECT a, ROW_NUMBER() OVER (PARTITION BY c ORDER BY d) AS rn FROM nba_raw.x "
            "QUALIFY rn = 1",
            {"nba_raw.x": {"a", "c", "d"}},
        ),
        (
            "SELECT DATE(ts) AS day, COUNT(*) AS n FROM nba_raw.x GROUP BY day",
            {"nba_raw.x": {"ts"}},
        ),
        # the UPDATE target's own columns are not read from the subquery's table
        (
            "UPDATE nba_analytics.t SET a = (SELECT MAX(b) FROM nba_raw.s WHERE s.k = t.k) "
            "WHERE TRUE",
            {"nba_raw.s": {"b", "k"}},
        ),
        # a CTE used by MERGE is no table
        (
            "WITH src AS (SELECT a, b FROM nba_raw.x) MERGE nba_analytics.t T USING src S "
            "ON T.a = S.a WHEN MATCHED THEN UPDATE SET b = S.b",
            {"nba_raw.x": {"a", "b"}},
        ),
    ],
)
def test_exact_reads(sql: str, tables: dict[str, set[str]]) -> None:
    """These statements read exactly these tables and columns, with nothing unresolved."""
    r = sql_reads(sql, AT)
    assert r.tables == tables and not r.unresolved, (r.tables, r.unresolved)


# team_offense_game_summary_processor.py:611-633 (commit 18f6ecf; the gamebook branch of the
# player_stats CTE, verbatim, closed after it)
TOGS = '''
def _reconstruct_team_from_players(self, start_date, end_date):
    query = f"""
    WITH player_stats AS (
        SELECT
            game_id, game_date, season_year, team_abbr,
            COALESCE(points, 0) as points,
            COALESCE(assists, 0) as assists,
            COALESCE(turnovers, 0) as turnovers,
            COALESCE(steals, 0) as steals,
            COALESCE(blocks, 0) as blocks,
            processed_at
        FROM `{self.project_id}.nba_raw.nbac_gamebook_player_stats`
        WHERE game_date BETWEEN '{start_date}' AND '{end_date}'
          AND player_status = 'active'
    )
    SELECT team_abbr, SUM(points) AS points, SUM(steals) AS steals FROM player_stats
    GROUP BY team_abbr
    """
'''


def _togs_gamebook_without_steals_blocks(data: dict[str, Any]) -> None:
    for inp in data["processors"]["team_offense_game_summary"]["inputs"]:
        if inp["source"] == "nba_raw.nbac_gamebook_player_stats":
            inp["fields"] = [f for f in inp["fields"] if f not in ("steals", "blocks")]


def test_production_alias_shadowing_reaches_field_not_listed(tmp_path: Path) -> None:
    """On a copy of the repository's registry whose gamebook input of the team offense
    leaves out steals and blocks (as routes.yaml did before it listed production's reads),
    production's SQL reading steals through ``COALESCE(steals, 0) as steals`` is a
    field_not_listed error on that input."""
    (tmp_path / "togs.py").write_text(TOGS, encoding="utf-8")
    a = analyse_code(
        variant(_togs_gamebook_without_steals_blocks),
        tmp_path,
        {"team_offense_game_summary": ("togs.py",)},
        ["team_offense_game_summary"],
    )
    got = codes(a, "field_not_listed")
    src = "nba_raw.nbac_gamebook_player_stats"
    assert {("team_offense_game_summary", src, c) for c in ("steals", "blocks")} <= got, got
    assert ("team_offense_game_summary", src, "points") not in got  # listed in its fields


def test_self_join_column_is_the_table_column() -> None:
    """An unqualified column of a self-join comes from the one table both sides read."""
    r = sql_reads("SELECT a FROM nba_raw.x JOIN nba_raw.x AS x2 ON x.k = x2.k", AT)
    assert r.tables == {"nba_raw.x": {"a", "k"}} and not r.unresolved, (r.tables, r.unresolved)

"""Columns read through a UNION of ``SELECT *`` branches, and unqualified columns of a
scalar subquery: each goes to the source that has it, never to a query around it. Production
snippets cite najicham/nba-stats-scraper."""

from __future__ import annotations

import pytest

from scoperouter.lineage.reads import Origin
from scoperouter.lineage.sql import sql_reads

AT = Origin("q.sql", 1)

# player_game_summary_processor.py:2325-2420 (shortened): two CTEs of the same shape, a
# UNION of SELECT * over them, deduplicated with SELECT * EXCEPT over a window
PGS_COMBINED = """
WITH nba_com_data AS (
    SELECT game_id, player_lookup, processed_at AS source_processed_at
    FROM `p.nba_raw.nbac_gamebook_player_stats`
),
bdl_data AS (
    SELECT game_id, player_lookup, processed_at AS source_processed_at
    FROM `p.nba_raw.bdl_player_boxscores`
),
combined_data AS (
    SELECT * FROM nba_com_data
    UNION ALL
    SELECT * FROM bdl_data bd
    WHERE NOT EXISTS (SELECT 1 FROM nba_com_data nc WHERE nc.game_id = bd.game_id)
),
deduplicated_combined AS (
    SELECT * EXCEPT(rn) FROM (
        SELECT *, ROW_NUMBER() OVER (
            PARTITION BY game_id, player_lookup ORDER BY source_processed_at DESC
        ) AS rn
        FROM combined_data
    ) WHERE rn = 1
)
SELECT c.game_id, c.player_lookup FROM deduplicated_combined c
"""


@pytest.mark.parametrize(
    ("sql", "tables"),
    [
        (
            PGS_COMBINED,
            {
                "nba_raw.nbac_gamebook_player_stats": {"game_id", "player_lookup", "processed_at"},
                "nba_raw.bdl_player_boxscores": {"game_id", "player_lookup", "processed_at"},
            },
        ),
        # the branches match by position: b's second column is c's column p
        (
            "WITH a AS (SELECT g, p FROM ds.t1), b AS (SELECT h, q FROM ds.t2), "
            "c AS (SELECT * FROM a UNION ALL SELECT * FROM b) SELECT p FROM c",
            {"ds.t1": {"g", "p"}, "ds.t2": {"h", "q"}},
        ),
        # three branches (a UNION nested in a UNION), one of them a table's columns
        (
            "WITH a AS (SELECT g FROM ds.t1), b AS (SELECT g FROM ds.t2), "
            "c AS (SELECT * FROM a UNION ALL SELECT * FROM b UNION ALL SELECT k FROM ds.t3) "
            "SELECT g FROM c",
            {"ds.t1": {"g"}, "ds.t2": {"g"}, "ds.t3": {"k"}},
        ),
        # the first branch a table selected whole: its column by name (the first branch
        # names the columns), the others by position
        (
            "WITH c AS (SELECT * FROM ds.t1 UNION ALL SELECT h AS g FROM ds.t2) SELECT g FROM c",
            {"ds.t1": {"g"}, "ds.t2": {"h"}},
        ),
    ],
    ids=["pgs-combined", "by-position", "three-branches", "first-branch-table"],
)
def test_union_of_star_branches_is_read_through(sql: str, tables: dict[str, set[str]]) -> None:
    """A column of a UNION whose branches select ``*`` is each branch's column."""
    r = sql_reads(sql, AT)
    assert (r.tables, r.unresolved) == (tables, [])


def test_union_branch_of_unknown_shape_is_unresolved() -> None:
    """A later branch selecting ``*`` from a table: its column at that place is unknown."""
    r = sql_reads(
        "WITH a AS (SELECT g, p FROM ds.t1), c AS (SELECT * FROM a UNION ALL SELECT * FROM ds.t2) "
        "SELECT p FROM c",
        AT,
    )
    assert r.tables == {"ds.t1": {"g", "p"}, "ds.t2": set()}
    assert [u.what for u in r.unresolved] == [
        "column 'p' of a UNION: its branch selecting * from ds.t2 has unknown columns"
    ]


# upcoming_player_game_context/team_context.py:130-151 (shortened)
PACE_DIFF = """
WITH recent_team AS (
    SELECT pace FROM `p.nba_analytics.team_offense_game_summary` WHERE team_abbr = @team
),
recent_opponent AS (
    SELECT pace FROM `p.nba_analytics.team_offense_game_summary` WHERE team_abbr = @opp
)
SELECT
    ROUND((SELECT AVG(pace) FROM recent_team) - (SELECT AVG(pace) FROM recent_opponent), 2)
        AS pace_diff
"""


@pytest.mark.parametrize(
    ("sql", "tables"),
    [
        (PACE_DIFF, {"nba_analytics.team_offense_game_summary": {"pace", "team_abbr"}}),
        # the subquery's own table has the column: the outer table does not read it
        (
            "SELECT a, (SELECT MAX(v) FROM ds.t3) AS m FROM ds.t2",
            {"ds.t2": {"a"}, "ds.t3": {"v"}},
        ),
        (
            "WITH s AS (SELECT v FROM ds.t3) SELECT a FROM ds.t2 WHERE a > (SELECT AVG(v) FROM s)",
            {"ds.t2": {"a"}, "ds.t3": {"v"}},
        ),
        # correlated: no source of the subquery has z, the outer table's z
        (
            "WITH s AS (SELECT k FROM ds.t3) "
            "SELECT a FROM ds.t2 WHERE EXISTS (SELECT 1 FROM s WHERE s.k = z)",
            {"ds.t2": {"a", "z"}, "ds.t3": {"k"}},
        ),
    ],
    ids=["pace-diff", "scalar-in-select", "scalar-in-where", "correlated"],
)
def test_subquery_column_is_its_own_sources(sql: str, tables: dict[str, set[str]]) -> None:
    """An unqualified column of a subquery is read from the subquery's source that can have
    it; only a name none of them has is the enclosing query's (correlated)."""
    r = sql_reads(sql, AT)
    assert (r.tables, r.unresolved) == (tables, [])


@pytest.mark.parametrize(
    ("sql", "tables"),
    [
        # an array's elements filtered by the row's own threshold (a common BigQuery idiom)
        (
            "SELECT g.game_id, (SELECT COUNT(*) FROM UNNEST(g.players) p WHERE p.pts > min_pts)"
            " AS n FROM ds.games g",
            {"ds.games": {"game_id", "players", "min_pts"}},
        ),
        (
            "SELECT player_lookup FROM ds.props pr "
            "WHERE EXISTS (SELECT 1 FROM UNNEST(pr.books) b WHERE b = preferred_book)",
            {"ds.props": {"player_lookup", "books", "preferred_book"}},
        ),
    ],
    ids=["scalar-over-unnest", "exists-over-unnest"],
)
def test_correlated_column_of_a_subquery_over_unnest_is_read(
    sql: str, tables: dict[str, set[str]]
) -> None:
    """A subquery whose only source is an UNNEST has no table: a name its projections and
    aliases lack is the enclosing query's column, read there (not a struct field dropped)."""
    r = sql_reads(sql, AT)
    assert (r.tables, r.unresolved) == (tables, [])


def test_subquery_name_only_assumed_of_an_unknown_table_is_unresolved() -> None:
    """A subquery's name that only an undeclared table may have, while the enclosing query's
    declared source has it, stays the subquery's read but is unresolved (maybe correlated)."""
    r = sql_reads(
        "SELECT a.k, (SELECT MAX(v) FROM ds.b WHERE b.k = a.k AND flag) AS m FROM ds.a a",
        AT,
        {"ds.a": frozenset({"k", "flag"})},
    )
    assert r.tables == {"ds.a": {"k"}, "ds.b": {"k", "v", "flag"}}
    assert [u.what for u in r.unresolved] == [
        "column 'flag' of a subquery: taken as ds.b's, whose columns are unknown; the "
        "enclosing query's ds.a has it (a correlated read if ds.b lacks it)"
    ]


@pytest.mark.parametrize(
    "setop",
    ["UNION ALL", "UNION ALL BY NAME", "UNION DISTINCT", "INTERSECT DISTINCT"],
)
def test_union_branch_in_another_column_order_loses_no_read(setop: str) -> None:
    """A later branch whose columns come in another order (or match by name) still reads
    every column its own projections name: the place mapping adds reads, never drops one."""
    r = sql_reads(
        f"SELECT x FROM (SELECT a AS x, b FROM ds.t1 {setop} "
        "SELECT * FROM (SELECT b, a FROM ds.t2))",
        AT,
    )
    assert (r.tables, r.unresolved) == ({"ds.t1": {"a", "b"}, "ds.t2": {"a", "b"}}, [])

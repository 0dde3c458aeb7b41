"""BigQuery statements whose reads were lost or invented (scripting blocks, routines, DDL
targets, table-valued functions) and bare vs dataset-qualified names."""

from __future__ import annotations

import pytest
from lineage_support import registry

from scoperouter.lineage.diff import diff_processor
from scoperouter.lineage.reads import Origin
from scoperouter.lineage.sql import sql_reads

AT = Origin("q.sql", 1)


@pytest.mark.parametrize(
    "sql",
    [
        "BEGIN\n  CREATE TEMP TABLE tmp AS SELECT a FROM nba_raw.x;\n  SELECT a FROM tmp;\nEND",
        "LOOP\n  SELECT a FROM nba_raw.x;\n  LEAVE;\nEND LOOP;",
        "WHILE TRUE DO\n  SELECT a FROM nba_raw.x;\nEND WHILE;",
        "EXECUTE IMMEDIATE 'SELECT a FROM nba_raw.x'",
        "CALL nba_raw.refresh_x()",
    ],
)
def test_unparsed_script_statement_is_reported_not_skipped(sql: str) -> None:
    """A statement sqlglot keeps unparsed is listed unresolved, never skipped in silence."""
    r = sql_reads(sql, AT)
    assert "nba_raw.x" in r.tables or r.unresolved, (r.tables, r.unresolved)


def test_begin_end_block_keeps_its_reads() -> None:
    """A BEGIN ... END block's reads are found; its temp table is not a read."""
    r = sql_reads(
        "BEGIN\n  CREATE TEMP TABLE tmp AS SELECT a FROM nba_raw.x;\n  SELECT a FROM tmp;\nEND",
        AT,
    )
    assert "nba_raw.x" in r.tables
    assert "tmp" in r.writes


@pytest.mark.parametrize(
    ("sql", "not_read"),
    [
        ("CREATE TEMP FUNCTION f(x INT64) AS (x + 1);\nSELECT f(a) AS b FROM nba_raw.t", "f"),
        (
            "CREATE TEMP FUNCTION g() AS ((SELECT MAX(a) FROM nba_raw.y));\n"
            "SELECT g() AS m FROM nba_raw.t",
            "g",
        ),
        (
            "CREATE TABLE FUNCTION nba_analytics.f(d DATE) AS "
            "SELECT a FROM nba_raw.x WHERE game_date = d",
            "nba_analytics.f",
        ),
        ("DROP TABLE IF EXISTS nba_analytics.tmp", "nba_analytics.tmp"),
        ("TRUNCATE TABLE nba_analytics.t", "nba_analytics.t"),
        ("ALTER TABLE nba_analytics.t ADD COLUMN b INT64", "nba_analytics.t"),
    ],
)
def test_routine_names_and_ddl_targets_are_not_reads(sql: str, not_read: str) -> None:
    """A routine's name and a DROP/TRUNCATE/ALTER target are not tables read."""
    r = sql_reads(sql, AT)
    assert not_read not in r.tables, r.tables


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT a FROM nba_raw.player_tvf('2024-01-01')",
        "SELECT a FROM ML.PREDICT(MODEL `nba_ml.m`, (SELECT a FROM nba_raw.s))",
        "SELECT a FROM GAP_FILL(TABLE nba_raw.s, ts_column => 'ts', bucket_width => INTERVAL 1 HOUR)",
    ],
)
def test_table_valued_functions_give_no_nameless_tables(sql: str) -> None:
    """A table-valued function never yields a nameless table."""
    r = sql_reads(sql, AT)
    bad = [t for t in r.tables if not t or t.endswith(".") or t.startswith(".")]
    assert not bad, r.tables


def test_user_tvf_is_named_and_unresolved() -> None:
    """A user table-valued function is read under its name and listed unresolved."""
    r = sql_reads("SELECT a FROM nba_raw.player_tvf('2024-01-01')", AT)
    assert "nba_raw.player_tvf" in r.tables
    assert any("player_tvf" in u.what for u in r.unresolved)


def test_a_builtin_sqlglot_does_not_know_is_unresolved_not_a_table() -> None:
    """EXTERNAL_QUERY (another database's tables) is unresolved, never a read of a table
    named EXTERNAL_QUERY (it was: a missing_input error on a correct registry)."""
    r = sql_reads(
        "SELECT x.a FROM nba_raw.t x WHERE x.pid IN "
        "(SELECT pid FROM EXTERNAL_QUERY('us.conn', 'SELECT pid FROM pg_table'))",
        AT,
    )
    assert set(r.tables) == {"nba_raw.t"}
    assert any("EXTERNAL_QUERY" in u.what for u in r.unresolved)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT game_date, a FROM GAP_FILL(TABLE nba_raw.t, ts_column => 'game_date', "
        "bucket_width => INTERVAL 1 DAY)",
        "SELECT base.a, distance FROM VECTOR_SEARCH(TABLE nba_raw.t, 'emb', "
        "(SELECT emb FROM nba_raw.q), top_k => 2)",
    ],
)
def test_columns_taken_through_a_builtin_table_function_are_listed(sql: str) -> None:
    """Columns a query takes of GAP_FILL's or VECTOR_SEARCH's result come from the TABLE
    argument, unknown here: listed unresolved (they were lost in silence, --strict passed)."""
    r = sql_reads(sql, AT)
    assert "nba_raw.t" in r.tables
    assert any("columns read through" in u.what for u in r.unresolved), r.unresolved


def test_bare_table_name_matches_the_dataset_qualified_input() -> None:
    """A bare table name compares as the dataset.table input it stands for."""
    reg = registry()
    proc = "upcoming_team_game_context"
    assert "nba_raw.nbac_schedule" in reg.processors[proc].inputs
    reads = sql_reads("SELECT game_id, game_date FROM nbac_schedule WHERE game_date = @d", AT)
    findings = diff_processor(reg, proc, reads)
    got = {(f.code, f.source) for f in findings}
    assert ("missing_input", "nbac_schedule") not in got
    assert ("unused_input", "nba_raw.nbac_schedule") not in got


@pytest.mark.parametrize(
    ("sql", "columns"),
    [
        (  # a wildcard table's suffix
            "SELECT a FROM `p.nba_raw.x_*` WHERE _TABLE_SUFFIX BETWEEN '20251101' AND '20251130'",
            {"nba_raw.x_*": {"a"}},
        ),
        (  # unqualified beside a join: no ambiguity between the two tables
            "SELECT x.a FROM `p.nba_raw.x_*` x JOIN nba_raw.y y ON x.k = y.k "
            "WHERE _TABLE_SUFFIX > '2025' AND x._table_suffix < '2026'",
            {"nba_raw.x_*": {"a", "k"}, "nba_raw.y": {"k"}},
        ),
        (  # ingestion-time partitioning, any case
            "SELECT a FROM nba_raw.x WHERE _PARTITIONTIME >= '2025-11-01' "
            "AND _partitiondate = '2025-11-19'",
            {"nba_raw.x": {"a"}},
        ),
        ("SELECT a, _FILE_NAME AS f FROM nba_raw.ext", {"nba_raw.ext": {"a"}}),
    ],
)
def test_pseudo_columns_are_no_reads(sql: str, columns: dict[str, set[str]]) -> None:
    """BigQuery's pseudo-columns (_TABLE_SUFFIX, _PARTITIONTIME, _PARTITIONDATE, _FILE_NAME) are neither a column read nor ambiguous; their tables are still read."""
    r = sql_reads(sql, AT)
    assert r.tables == columns and r.unresolved == []


@pytest.mark.parametrize(
    ("sql", "columns", "unknown"),
    [
        (
            "SELECT predicted_y FROM ML.PREDICT(MODEL nba_ml.m, TABLE nba_raw.x)",
            {"nba_raw.x": set()},
            ["columns of nba_raw.x unknown: the model of ML.PREDICT reads them"],
        ),
        (
            "SELECT predicted_y FROM ML.PREDICT(MODEL nba_ml.m, (SELECT a, b FROM nba_raw.x))",
            {"nba_raw.x": {"a", "b"}},
            [],
        ),
        (
            "SELECT ml_generate_text_result FROM ML.GENERATE_TEXT(MODEL nba_ml.llm, TABLE nba_raw.x)",
            {"nba_raw.x": set()},
            ["columns of nba_raw.x unknown: the model of ML.GENERATE_TEXT reads them"],
        ),
    ],
)
def test_a_models_table_argument_has_unknown_columns(
    sql: str, columns: dict[str, set[str]], unknown: list[str]
) -> None:
    """ML.PREDICT / ML.GENERATE_TEXT over TABLE t read t's columns the model takes (unknown, never none); over a query, the query's columns; the model is no table read."""
    r = sql_reads(sql, AT)
    assert r.tables == columns and [u.what for u in r.unresolved] == unknown

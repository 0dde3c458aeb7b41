"""Reads the SQL route lost or hid (review 5): a whole .sql file dropped for one statement
that does not parse, among others. Each case failed before its fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from scoperouter.lineage.collect import file_reads
from scoperouter.lineage.reads import Origin, Reads
from scoperouter.lineage.sql import sql_reads

AT = Origin("q.sql", 1)


@pytest.mark.parametrize(
    ("sql", "tables", "bad_line"),
    [
        # the statement after a bad one is still read
        ("SELECT a FROM ds.one;\nSELECT b FROM (", {"ds.one": {"a"}}, 2),
        ("SELECT b FROM (;\nSELECT a FROM ds.one", {"ds.one": {"a"}}, 1),
        # semicolons in a string, a -- comment, a # comment and a quoted name split nothing
        (
            "SELECT a FROM ds.one WHERE s = ';x' -- ; y\n# ;\n;\nSELECT b FROM `ds.t;w`;\n"
            "SELECT FROM (;\nSELECT c FROM ds.two",
            {"ds.one": {"a", "s"}, "ds.t;w": {"b"}, "ds.two": {"c"}},
            5,
        ),
    ],
)
def test_one_bad_statement_keeps_the_others(
    sql: str, tables: dict[str, set[str]], bad_line: int | None
) -> None:
    """A statement that does not parse is unresolved at its line; the others are read."""
    r = sql_reads(sql, AT)
    assert r.tables == tables, r.unresolved
    bad = [u for u in r.unresolved if "does not parse" in u.what]
    assert bad, r.unresolved
    if bad_line is not None:
        assert [u.origin.line for u in bad] == [bad_line]


@pytest.mark.parametrize(
    ("sql", "parts"),
    [
        ("SELECT 1; SELECT 2;", ["SELECT 1", "SELECT 2"]),
        ("SELECT ';'; -- a;b\n", ["SELECT ';'"]),
        ("\n\nSELECT 1;\n;\nSELECT 2", ["SELECT 1", "SELECT 2"]),
    ],
)
def test_split_statements(sql: str, parts: list[str]) -> None:
    """Statements split at real semicolons only, empty ones dropped."""
    from scoperouter.lineage.sql import split_statements

    got = split_statements(sql)
    assert got is not None
    assert [t.strip() for t, _ in got] == parts


def test_untokenizable_text_is_one_unresolved() -> None:
    """Text that does not even tokenize (an unterminated string) is one unresolved entry."""
    r = sql_reads("SELECT a FROM ds.one WHERE s = 'open", AT)
    assert not r.parsed and r.tables == {}
    assert len(r.unresolved) == 1 and "does not parse" in r.unresolved[0].what


def _py_reads(tmp_path: Path, source: str) -> Reads:
    f = tmp_path / "m.py"
    f.write_text(source, encoding="utf-8")
    return file_reads(f, tmp_path)


BASE = 'def run(c, x):\n    q = "SELECT b.player_lookup, b.points FROM nba_raw.boxscores b"\n'


@pytest.mark.parametrize(
    ("source", "table", "columns", "line"),
    [
        # review5 fx2: a query grown by reassigning it, as += grows it
        (
            BASE
            + '    if x:\n        q = q + " LEFT JOIN nba_raw.injuries i USING (player_lookup)"\n',
            "nba_raw.injuries",
            {"player_lookup"},
            4,
        ),
        (
            BASE + '    if x:\n        q = f"{q} LEFT JOIN nba_raw.injuries i ON i.k = b.k"\n',
            "nba_raw.injuries",
            {"k"},
            4,
        ),
        (
            BASE + '    q = q + " JOIN nba_raw.injuries i" + " USING (player_lookup)"\n',
            "nba_raw.injuries",
            {"player_lookup"},
            3,
        ),
        # a comma join appended (review5 py/q_comma_fragment.py)
        (
            BASE + "    q = q + \", nba_raw.injuries i WHERE i.status = 'out'\"\n",
            "nba_raw.injuries",
            {"status"},
            3,
        ),
        # then += after the reassignment still appends to the same query
        (
            BASE + '    q = q + " JOIN nba_raw.injuries i USING (k)"\n    q += " WHERE i.s = 1"\n',
            "nba_raw.injuries",
            {"k", "s"},
            3,
        ),
    ],
)
def test_self_append_is_read(
    tmp_path: Path, source: str, table: str, columns: set[str], line: int
) -> None:
    """``q = q + "..."`` and ``q = f"{q} ..."`` append to the query like ``q += "..."``."""
    r = _py_reads(tmp_path, source)
    assert columns <= r.tables.get(table, set()), (r.tables, r.unresolved)
    assert r.table_origin[table].line == line
    assert "nba_raw.boxscores" in r.tables


@pytest.mark.parametrize(
    "source",
    [
        'def f(q):\n    return f"{q} LEFT JOIN nba_raw.injuries i USING (k)"\n',
        'def f(q):\n    return q + ", nba_raw.injuries i"\n',
        'J = ", nba_raw.injuries i"\n',
    ],
)
def test_fragment_after_a_hole_or_comma_is_unresolved(tmp_path: Path, source: str) -> None:
    """A piece naming a table after a leading hole or comma is an unresolved fragment."""
    r = _py_reads(tmp_path, source)
    assert any("SQL fragment" in u.what for u in r.unresolved), r.unresolved


@pytest.mark.parametrize(
    ("sql", "tables"),
    [
        # review5 fx4: statements sqlglot gives no scopes of
        (
            "EXPORT DATA OPTIONS (uri = 'gs://b/*.csv', format = 'CSV') AS\n"
            "SELECT player_lookup, points FROM nba_raw.boxscores WHERE game_date = '2024-01-01'",
            {"nba_raw.boxscores": {"player_lookup", "points", "game_date"}},
        ),
        (
            "DECLARE n INT64 DEFAULT (SELECT COUNT(*) FROM nba_raw.injuries WHERE status = 'out')",
            {"nba_raw.injuries": {"status"}},
        ),
        (
            "SET n = (SELECT COUNTIF(status = 1) FROM nba_raw.injuries)",
            {"nba_raw.injuries": {"status"}},
        ),
        (
            "FOR d IN (SELECT DISTINCT game_date FROM nba_raw.x) DO\n"
            "  INSERT INTO an.o SELECT k, points FROM nba_raw.y WHERE game_date = d.game_date;\n"
            "END FOR;",
            {"nba_raw.x": {"game_date"}, "nba_raw.y": {"k", "points", "game_date"}},
        ),
        ("ASSERT (SELECT COUNT(*) FROM nba_raw.x WHERE a > 0) > 0 AS 'm'", {"nba_raw.x": {"a"}}),
        (
            "INSERT INTO an.o (a) VALUES ((SELECT MAX(a) FROM nba_raw.x WHERE q = 2))",
            {"nba_raw.x": {"a", "q"}},
        ),
        # review5 F10: IF / ELSEIF / ELSE / WHILE / CASE / EXCEPTION bodies and conditions
        (
            "IF (SELECT COUNT(*) FROM nba_raw.c WHERE a = 1) > 0 THEN\n"
            "  INSERT INTO an.o SELECT b FROM nba_raw.t1;\n"
            "ELSEIF EXISTS (SELECT 1 FROM nba_raw.c2 WHERE e = 2) THEN\n"
            "  INSERT INTO an.o SELECT b FROM nba_raw.t2;\n"
            "ELSE\n  INSERT INTO an.o SELECT b FROM nba_raw.t3;\nEND IF;",
            {
                "nba_raw.c": {"a"},
                "nba_raw.t1": {"b"},
                "nba_raw.c2": {"e"},
                "nba_raw.t2": {"b"},
                "nba_raw.t3": {"b"},
            },
        ),
        ("WHILE n > 0 DO\n  SELECT a FROM nba_raw.w;\nEND WHILE;", {"nba_raw.w": {"a"}}),
        (
            "CASE\n  WHEN (SELECT MAX(a) FROM nba_raw.c) > 0 THEN\n    SELECT b FROM nba_raw.t;\n"
            "  WHEN n = 1 THEN SELECT c FROM nba_raw.u;\nEND CASE;",
            {"nba_raw.c": {"a"}, "nba_raw.t": {"b"}, "nba_raw.u": {"c"}},
        ),
        (
            "BEGIN\n  SELECT a FROM nba_raw.b1;\nEXCEPTION WHEN ERROR THEN\n"
            "  INSERT INTO an.err SELECT a FROM nba_raw.b2;\nEND;",
            {"nba_raw.b1": {"a"}, "nba_raw.b2": {"a"}},
        ),
        (
            "BEGIN\n  IF TRUE THEN\n    SELECT x FROM nba_raw.b3;\n  END IF;\nEND;",
            {"nba_raw.b3": {"x"}},
        ),
        (
            "IF (SELECT COUNT(*) FROM nba_raw.r) = 0 THEN RAISE USING MESSAGE = 'x'; END IF;\n"
            "SELECT a FROM nba_raw.r2;",
            {"nba_raw.r": set(), "nba_raw.r2": {"a"}},
        ),
    ],
)
def test_scripting_reads(sql: str, tables: dict[str, set[str]]) -> None:
    """Queries inside scripting statements are read with their columns, nothing unresolved."""
    r = sql_reads(sql, AT)
    assert r.tables == tables, r.unresolved
    assert r.unresolved == []


@pytest.mark.parametrize(
    ("sql", "table"),
    [
        ("CREATE TABLE an.new COPY nba_raw.src", "nba_raw.src"),
        ("CREATE TABLE an.new CLONE nba_raw.src", "nba_raw.src"),
    ],
)
def test_table_outside_a_query_has_unknown_columns(sql: str, table: str) -> None:
    """A table read outside any query sqlglot resolves is ``columns of X unknown``."""
    r = sql_reads(sql, AT)
    assert table in r.tables
    assert any(u.what == f"columns of {table} unknown" for u in r.unresolved), r.unresolved


@pytest.mark.parametrize(
    ("sql", "schema", "table", "columns"),
    [
        # a declared variable is no column of the query's table
        ("DECLARE d DATE;\nSELECT a FROM nba_raw.x WHERE dt = d", {}, "nba_raw.x", {"a", "dt"}),
        # unless the table declares a column of that name (a column takes precedence)
        (
            "DECLARE d DATE;\nSELECT a FROM nba_raw.x WHERE dt = d",
            {"nba_raw.x": frozenset({"a", "d", "dt"})},
            "nba_raw.x",
            {"a", "d", "dt"},
        ),
    ],
)
def test_script_variables(
    sql: str, schema: dict[str, frozenset[str]], table: str, columns: set[str]
) -> None:
    """DECLAREd names and a FOR loop's variable are variables, not columns."""
    assert sql_reads(sql, AT, schema).tables[table] == columns


CASE_ROUTES = """
version: 1
date_field: game_date
entities:
  player: {description: player}
sources:
  nba_raw.box: {entity: player, entity_key: player_lookup, columns: [player_lookup, game_date, points, minutes, team_abbr]}
  nba_raw.inj: {entity: player, entity_key: player_lookup}
defaults:
  max_entities: 50
  window: {quiet: 10s, max_wait: 1m}
  target: {outbox: {}}
processors:
  p:
    phase: 1
    granularity: player
    inputs:
      - source: nba_raw.box
        INPUT
      - source: nba_raw.inj
    publishes: an.p
"""


@pytest.mark.parametrize(
    ("input_", "sql", "findings", "unresolved"),
    [
        # ignore_fields names minutes; the SQL reads MINUTES
        (
            "ignore_fields: [minutes]",
            "SELECT player_lookup, SUM(MINUTES) FROM nba_raw.box GROUP BY 1",
            [("nba_raw.box", "MINUTES")],
            [],
        ),
        # fields leaves points out; POINTS and points are one column, one finding
        (
            "fields: [team_abbr]",
            "SELECT POINTS, points, Team_Abbr FROM nba_raw.box",
            [("nba_raw.box", "POINTS")],
            [],
        ),
        # a declared column in another case is the declared table's: here ambiguous with
        # the undeclared table (was attributed to nba_raw.inj alone, silently)
        (
            "fields: [team_abbr]",
            "SELECT b.team_abbr, POINTS FROM nba_raw.box b JOIN nba_raw.inj i USING (player_lookup)",
            [],
            ["column 'POINTS' is ambiguous (nba_raw.box, nba_raw.inj)"],
        ),
        # identity columns in any case need no field
        ("fields: [points]", "SELECT PLAYER_LOOKUP, Game_Date, Points FROM nba_raw.box", [], []),
    ],
)
def test_column_case(
    input_: str, sql: str, findings: list[tuple[str, str]], unresolved: list[str]
) -> None:
    """Column names are compared case-insensitively, as BigQuery resolves them."""
    from scoperouter.lineage.analyse import schema_of
    from scoperouter.lineage.diff import diff_processor
    from scoperouter.processor_registry.loader import load_config_text

    reg = load_config_text(CASE_ROUTES.replace("INPUT", input_), with_relations=False).registry
    reads = sql_reads(sql, AT, schema_of(reg))
    out = diff_processor(reg, "p", reads)
    assert [(f.source, f.column) for f in out if f.code == "field_not_listed"] == findings
    assert [f.message for f in out if f.code == "unresolved"] == unresolved


FRAGMENT = (
    'RECENT = """boxscores AS (\n  SELECT player_lookup, points FROM nba_raw.boxscores_v2\n)"""\n'
)


@pytest.mark.parametrize(
    ("source", "bare"),
    [
        # review5 py/zc: another query reads a column the fragment's CTE does not project
        (
            FRAGMENT + 'Q = "SELECT player_lookup, minutes FROM boxscores"\n',
            {"player_lookup", "minutes"},
        ),
        # the loader's final SELECT reads only what the CTE projects: the CTE (unchanged)
        (FRAGMENT + 'Q = "SELECT player_lookup, points FROM boxscores"\n', None),
        # review5 py/zd: a whole query with its own WITH defines no file-wide CTE
        (
            'Q1 = "WITH boxscores AS (SELECT player_lookup FROM nba_raw.v2) SELECT * FROM boxscores"\n'
            'Q2 = "SELECT player_lookup, minutes FROM boxscores"\n',
            {"player_lookup", "minutes"},
        ),
    ],
)
def test_file_wide_cte_names_keep_other_reads(
    tmp_path: Path, source: str, bare: set[str] | None
) -> None:
    """A bare name is a fragment's CTE only where the query can read it as that CTE."""
    r = _py_reads(tmp_path, source)
    assert r.tables.get("boxscores") == bare, (r.tables, r.unresolved)

"""Reads the SQL route lost or hid (review 5): a whole .sql file dropped for one statement
that does not parse, among others. Each case failed before its fix."""

from __future__ import annotations

import pytest

from scoperouter.lineage.reads import Origin
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
        # reviewer's fx1/p_if.sql: the IF statement fails, the INSERT's reads are kept
        (
            "DECLARE run_date DATE DEFAULT CURRENT_DATE();\n"
            "IF (SELECT COUNT(*) FROM nba_raw.injuries) > 0 THEN\n  SELECT 1;\nEND IF;\n"
            "INSERT INTO nba_analytics.p SELECT b.player_lookup, i.status\n"
            "FROM nba_raw.boxscores b LEFT JOIN nba_raw.injuries i USING (player_lookup);",
            {
                "nba_raw.boxscores": {"player_lookup"},
                "nba_raw.injuries": {"player_lookup", "status"},
            },
            None,
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

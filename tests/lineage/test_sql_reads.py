"""The SQL route: tables and columns read, resolved through aliases, CTEs and subqueries;
writes are not reads; what cannot be resolved is listed, never guessed."""

from __future__ import annotations

import pytest

from scoperouter.lineage.pysrc import sql_literals
from scoperouter.lineage.reads import Origin
from scoperouter.lineage.sql import sql_reads

AT = Origin("q.sql", 1)


@pytest.mark.parametrize(
    ("sql", "tables", "unresolved"),
    [
        ("SELECT a, b FROM ds.t", {"ds.t": {"a", "b"}}, []),
        ("SELECT x.a FROM `proj.ds.t` AS x WHERE x.d = @d", {"ds.t": {"a", "d"}}, []),
        ("WITH c AS (SELECT a, b FROM ds.t) SELECT c.a FROM c", {"ds.t": {"a", "b"}}, []),
        ("WITH c AS (SELECT * FROM ds.t) SELECT c.a, c.z FROM c", {"ds.t": {"a", "z"}}, []),
        ("SELECT s.a FROM (SELECT * FROM ds.t) AS s", {"ds.t": {"a"}}, []),
        (
            "SELECT t.a, u.b FROM ds.t JOIN ds.u ON t.k = u.k",
            {"ds.t": {"a", "k"}, "ds.u": {"b", "k"}},
            [],
        ),
        (
            "SELECT a FROM ds.t JOIN ds.u ON t.k = u.k",
            {"ds.t": {"k"}, "ds.u": {"k"}},
            ["column 'a' is ambiguous (ds.t, ds.u)"],
        ),
        ("SELECT * FROM ds.t", {"ds.t": set()}, ["SELECT * from ds.t: columns unknown"]),
        (
            "SELECT a, ROW_NUMBER() OVER (ORDER BY b) AS rn FROM ds.t QUALIFY rn = 1",
            {"ds.t": {"a", "b"}},
            [],
        ),
        ("SELECT COUNT(*) FROM ds.t", {"ds.t": set()}, []),
        ("SELECT p FROM UNNEST(@ids) AS p", {}, []),
        ("SELECT t.s.f FROM ds.t", {"ds.t": {"s"}}, []),
        (
            "SELECT u.y FROM ds.u AS u WHERE EXISTS (SELECT 1 FROM ds.t AS t WHERE t.k = u.k)",
            {"ds.t": {"k"}, "ds.u": {"k", "y"}},
            [],
        ),
        ("INSERT INTO ds.out (a) SELECT a FROM ds.t", {"ds.t": {"a"}}, []),
        (
            "MERGE ds.out AS o USING ds.t AS s ON o.k = s.k WHEN MATCHED THEN UPDATE SET o.v = s.v",
            {"ds.t": {"k", "v"}},
            [],
        ),
        # INSERT VALUES of a MERGE: unqualified names are the source's (they were dropped);
        # the column list names the target's
        (
            "MERGE ds.out T USING ds.t S ON T.pid = S.pid "
            "WHEN NOT MATCHED THEN INSERT (pid, a, z) VALUES (pid, a, S.b)",
            {"ds.t": {"pid", "a", "b"}},
            [],
        ),
        ("SELECT a FROM __scoperouter_dyn0", {}, ["table name built at run time"]),
        ("SELECT FROM WHERE", {}, ["SQL that does not parse"]),
    ],
)
def test_sql_reads(sql: str, tables: dict[str, set[str]], unresolved: list[str]) -> None:
    """Each statement's reads and unresolved entries."""
    r = sql_reads(sql, AT)
    assert r.tables == tables
    assert len(r.unresolved) == len(unresolved)
    for u, want in zip(r.unresolved, unresolved, strict=True):
        assert u.what.startswith(want)


def test_writes_are_recorded_not_read() -> None:
    """INSERT/MERGE targets are writes."""
    r = sql_reads(
        "INSERT INTO ds.out SELECT a FROM ds.t; MERGE ds.o2 USING ds.t ON TRUE WHEN MATCHED THEN DELETE",
        AT,
    )
    assert r.writes == {"ds.out", "ds.o2"} and set(r.tables) == {"ds.t"}


def test_schema_resolves_unqualified_columns() -> None:
    """With declared columns, an unqualified column in a join goes to the table that has it
    (the USING column is read from both)."""
    r = sql_reads(
        "SELECT a, b FROM ds.t JOIN ds.u USING (k)", AT, {"ds.t": {"a", "k"}, "ds.u": {"b", "k"}}
    )
    assert r.tables == {"ds.t": {"a", "k"}, "ds.u": {"b", "k"}} and not r.unresolved


def test_lines_point_at_the_reference() -> None:
    """Origins carry the line of the table and of each column in the file."""
    r = sql_reads("SELECT\n  a\nFROM\n  ds.t", Origin("q.sql", 10))
    assert r.table_origin["ds.t"] == Origin("q.sql", 13)
    assert r.column_origin[("ds.t", "a")] == Origin("q.sql", 11)


PY = '''
PROJECT = "p"

def q(self, ids, clause):
    sql = f"""
    SELECT a, b
    FROM `{self.project}.ds.t`
    WHERE id IN UNNEST(@ids)
    {clause}
    """
    other = "SELECT c FROM {project}.ds.u".format(project=PROJECT)
    table = f"SELECT d FROM ds.{name}"
    note = "selecting from the menu"
    return sql, other, table, note
'''


def test_python_literals() -> None:
    """f-strings and str.format templates are SQL literals with holes; prose is not."""
    lits = sql_literals(PY)
    assert [lit.line for lit in lits] == [5, 11, 12]
    assert lits[0].holes == ("clause",)
    first = sql_reads(lits[0].clause_text, Origin("x.py", 5))
    assert first.tables == {"ds.t": {"a", "b", "id"}}
    assert sql_reads(lits[1].text, AT).tables == {"ds.u": {"c"}}
    assert [u.what for u in sql_reads(lits[2].text, AT).unresolved] == [
        "table name built at run time"
    ]

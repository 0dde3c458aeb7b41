"""CTE names and table aliases are one name however a query spells them (BigQuery matches
them ignoring case); table names keep their case. Before, ``WITH Recent ... FROM recent``
read a table ``recent`` (a false missing input) and ``T.pts FROM ds.t AS t`` a column ``T``."""

from __future__ import annotations

from pathlib import Path

import pytest

from scoperouter.lineage.collect import file_reads
from scoperouter.lineage.reads import Origin
from scoperouter.lineage.sql import sql_reads

AT = Origin("q.sql", 1)


@pytest.mark.parametrize(
    ("sql", "tables"),
    [
        ("WITH Recent AS (SELECT a FROM ds.t) SELECT a FROM recent", {"ds.t": {"a"}}),
        ("WITH recent AS (SELECT a FROM ds.t) SELECT r.a FROM RECENT r", {"ds.t": {"a"}}),
        ("WITH recent AS (SELECT a, b FROM ds.t) SELECT Recent.a FROM recent", {"ds.t": {"a", "b"}}),
        ("SELECT T.pts FROM `p.ds.t` AS t", {"ds.t": {"pts"}}),
        ("SELECT x.pts FROM ds.t AS X", {"ds.t": {"pts"}}),
        ("SELECT other.x FROM DS.Other", {"DS.Other": {"x"}}),
        ("SELECT S.a FROM (SELECT a FROM ds.t) AS s", {"ds.t": {"a"}}),
        ("SELECT t.x FROM ds.T", {"ds.T": {"x"}}),
        ("SELECT a FROM MyDS.MyTable", {"MyDS.MyTable": {"a"}}),
        ("SELECT a FROM Recent", {"Recent": {"a"}}),
    ],
    ids=["cte-def-capital", "cte-ref-capital", "cte-qualifier", "alias-qualifier",
         "alias-def-capital", "implicit-alias", "subquery-alias", "table-case-kept",
         "qualified-table-kept", "bare-table-kept"],
)  # fmt: skip
def test_cte_and_alias_names_ignore_case_table_names_do_not(
    sql: str, tables: dict[str, set[str]]
) -> None:
    """Each query reads exactly these tables and columns, nothing unresolved."""
    r = sql_reads(sql, AT)
    assert r.tables == tables, r.tables
    assert not r.unresolved, r.unresolved


# the shape of queries/shared_ctes.py (see test_python_sql_missed.py): a helper returns a
# CTE fragment, the loader's final SELECT names it -- here spelled with other capitals
FRAGMENTS = '''
def injuries_cte(project_id):
    return f"""Injuries AS (
            SELECT player_lookup, injury_status
            FROM `{project_id}.nba_raw.nbac_injury_report`
        )"""


def final_select():
    return """SELECT i.player_lookup, i.injury_status FROM injuries i"""
'''


def test_final_select_naming_a_fragment_cte_in_other_case_reads_the_cte(tmp_path: Path) -> None:
    """The final SELECT's ``injuries`` is the fragment's ``Injuries``, no table of its own."""
    f = tmp_path / "m.py"
    f.write_text(FRAGMENTS, encoding="utf-8")
    r = file_reads(f, tmp_path)
    assert r.tables == {"nba_raw.nbac_injury_report": {"player_lookup", "injury_status"}}, r.tables
    assert not r.unresolved, r.unresolved

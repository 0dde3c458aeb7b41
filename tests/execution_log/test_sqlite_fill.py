"""The flush's link and fill statements (:mod:`scoperouter.execution_log.sqlite_fill`) search
the log through its indexes, in a new log and in one migrated from each earlier layout."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from test_log_layout import LAYOUTS

from scoperouter.execution_log import SqliteExecutionLog
from scoperouter.execution_log.sqlite_fill import _FILL_REQUESTED_SQL, _FILL_SQL, _LINK_SQL


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("sql", [_LINK_SQL, _FILL_SQL, _FILL_REQUESTED_SQL])
def test_link_and_fill_never_scan_the_log(tmp_path: Path, layout: str, sql: str) -> None:
    """Every step of each statement's query plan is an index SEARCH, none a SCAN of the log."""
    path = tmp_path / "l.sqlite"
    if LAYOUTS[layout]:
        with sqlite3.connect(path) as c:
            c.executescript(LAYOUTS[layout])
    SqliteExecutionLog(path).close()
    with sqlite3.connect(path) as c:
        plan = [r[3] for r in c.execute("EXPLAIN QUERY PLAN " + sql, ["x"] * sql.count("?"))]
    steps = [p for p in plan if not p.startswith("CORRELATED SCALAR SUBQUERY")]
    assert steps and all(p.startswith("SEARCH ") and " USING INDEX " in p for p in steps), plan

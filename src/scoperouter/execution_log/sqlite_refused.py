"""The SQLite execution log's refused rows: a flush failing on a data error is written again
row by row (:func:`scoperouter.execution_log.sqlite_write.write_flush` with a
``refused`` list), and the rows the database refuses for their values are noted here.

Invariant: only a data error of a row's own values (an int past 64 bits, a lone surrogate, a
value of no SQL type, one past a length limit: :data:`DATA_ERRORS`) refuses a row -- a
statement that raises it changes nothing, and every other row is written; anything else
(the disk, a lock) propagates, and the flush keeps its rows. An event refused takes its
decision rows with it (:func:`refuse_decisions` counts them).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any, NamedTuple

from scoperouter.execution_log.api import (
    COMPLETIONS_TABLE,
    EVENTS_TABLE,
    LOG_TABLE,
    TRIGGER_REPORTS_TABLE,
)
from scoperouter.execution_log.rows import DECISION_COLUMNS, LOG_COLUMNS
from scoperouter.execution_log.sqlite_fold import repeats_folded

_EVENT = DECISION_COLUMNS.index("event_id")


def _insert_sql(table: str, cols: Sequence[str], rows: int = 1) -> str:
    one = f"({', '.join('?' * len(cols))})"
    return f"INSERT OR IGNORE INTO {table} ({', '.join(cols)}) VALUES " + ", ".join([one] * rows)


# what binding a row's values raises when the database cannot take a value (not the disk):
# an int past 64 bits, a str with a lone surrogate, a value of no SQL type, one past the
# length limit -- that row is refused whatever is retried (:func:`.sqlite_write.write_flush`)
DATA_ERRORS = (
    OverflowError,
    ValueError,  # UnicodeEncodeError among them
    sqlite3.InterfaceError,
    sqlite3.ProgrammingError,
    sqlite3.DataError,
)
IdCols = tuple[tuple[str, int], ...]
"""The columns naming a row in a log line: (name, index)."""
IDS: dict[str, IdCols] = {
    EVENTS_TABLE: (("event_id", 0),),
    # decision, folded and dispatch rows alike (their first 13 columns are LOG_COLUMNS')
    LOG_TABLE: (("decision_id", 0), ("event_id", 1), ("trigger_id", 12)),
    COMPLETIONS_TABLE: (("completion_id", 0), ("processor", 1), ("trigger_id", 3)),
    TRIGGER_REPORTS_TABLE: (("trigger_id", 0), ("event_id", 2)),
}
FILL_IDS: IdCols = (("decision_id", 1),)  # a fill's parameters: (dispatch key, decision id)
LINK_IDS: IdCols = (("trigger_id", 0), ("event_id", 1))  # LinkParams
assert LOG_COLUMNS.index("trigger_id") == DECISION_COLUMNS.index("trigger_id") == 12


class Refused(NamedTuple):
    """A row the database refused (a data error binding it): dropped, counted, logged."""

    table: str
    ids: tuple[tuple[str, Any], ...]  # (column, value) naming the row
    error: BaseException
    rows: int = 1  # rows dropped with it: an event's decision rows too


def _refused(table: str, cols: IdCols, row: Sequence[Any], exc: BaseException) -> Refused:
    return Refused(table, tuple((k, row[i]) for k, i in cols if i < len(row)), exc)


def insert_each(
    conn: sqlite3.Connection,
    table: str,
    cols: Sequence[str],
    rows: list[tuple[Any, ...]],
    *,
    refused: list[Refused],
) -> None:
    """:func:`_insert` row by row: a row that raises a data error is not inserted (a failed
    statement changes nothing) and is noted in ``refused``."""
    sql = _insert_sql(table, cols)
    for r in rows:
        try:
            conn.execute(sql, r)
        except DATA_ERRORS as exc:
            refused.append(_refused(table, IDS[table], r, exc))


def update(
    conn: sqlite3.Connection,
    sql: str,
    params: list[tuple[Any, ...]],
    ids: IdCols,
    refused: list[Refused] | None,
) -> None:
    """``executemany(sql, params)``; with ``refused``, one by one (as :func:`_insert_each`)."""
    if refused is None:
        conn.executemany(sql, params)
        return
    for p in params:
        try:
            conn.execute(sql, p)
        except DATA_ERRORS as exc:
            refused.append(_refused(f"{LOG_TABLE} update", ids, p, exc))


def not_repeated(
    conn: sqlite3.Connection, dispatches: list[tuple[Any, ...]], refused: list[Refused] | None
) -> list[tuple[Any, ...]]:
    """``dispatches`` without those that repeat a folded outcome (:func:`repeats_folded`);
    with ``refused``, one whose values cannot even be looked up is refused."""
    if refused is None:
        return [x for x in dispatches if not repeats_folded(conn, x)]
    out = []
    for x in dispatches:
        try:
            if not repeats_folded(conn, x):
                out.append(x)
        except DATA_ERRORS as exc:
            refused.append(_refused(LOG_TABLE, IDS[LOG_TABLE], x, exc))
    return out


def refuse_decisions(refused: list[Refused], decisions: list[tuple[Any, ...]]) -> None:
    """Count the decision rows of each refused event with it (they are left out with it:
    :func:`_first_deliveries` keeps only the decisions of events written)."""
    counts: dict[Any, int] = {}
    for d in decisions:
        counts[d[_EVENT]] = counts.get(d[_EVENT], 0) + 1
    for i, r in enumerate(refused):
        if r.table == EVENTS_TABLE:
            refused[i] = r._replace(rows=1 + counts.pop(r.ids[0][1], 0))  # once per event id

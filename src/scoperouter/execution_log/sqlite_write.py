"""One flush of the SQLite execution log written to the database (:func:`write_flush`, run
by :meth:`.sqlite.SqliteExecutionLog.flush` on the rows it took from its buffers,
:class:`Taken`): multi-row ``INSERT ... VALUES (...), (...)`` of up to
:data:`ROWS_PER_INSERT` rows, then the fill and link UPDATEs (:mod:`.sqlite_fill`).

Invariant: a flush's rows are written in one transaction or not at all (anything raised
rolls it back; the caller keeps the rows); with a ``refused`` list, row by row, and only the
rows the database refuses for their values are left out, noted there (:mod:`.sqlite_refused`).
Each event, decision and dispatch row is stored once however often it is delivered: a
redelivered event's decision rows are left out (:func:`_first_deliveries`), a dispatch row
repeating a folded outcome too (:func:`.sqlite_refused.not_repeated`).
"""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, NamedTuple, cast

from scoperouter.execution_log.api import (
    COMPLETIONS_TABLE,
    EVENTS_TABLE,
    LOG_TABLE,
    TRIGGER_REPORTS_TABLE,
)
from scoperouter.execution_log.base import PendingOutcome
from scoperouter.execution_log.row_values import ids_json
from scoperouter.execution_log.rows import (
    COMPLETION_COLUMNS,
    DECISION_COLUMNS,
    EVENT_COLUMNS,
    LOG_COLUMNS,
    TRIGGER_REPORT_COLUMNS,
)
from scoperouter.execution_log.sqlite_fill import _FILL_REQUESTED_SQL, _FILL_SQL, _LINK_SQL
from scoperouter.execution_log.sqlite_fold import (
    FOLDED_COLUMNS,
    fold,
    runs_of_width,
)
from scoperouter.execution_log.sqlite_links import Link, linked, split_links
from scoperouter.execution_log.sqlite_refused import (
    FILL_IDS,
    LINK_IDS,
    Refused,
    _insert_sql,
    insert_each,
    not_repeated,
    refuse_decisions,
    update,
)

_EVENT, _ID = (LOG_COLUMNS.index(c) for c in ("event_id", "decision_id"))
assert (DECISION_COLUMNS.index("event_id"), DECISION_COLUMNS.index("decision_id")) == (_EVENT, _ID)


ROWS_PER_INSERT = 64

# sqlite3 (CPython 3.11) binds None through its adaptation protocol: a key tuple, a failed
# registry lookup, then attribute lookups -- ~260 ns a value, against ~30 ns for a str or an
# int (a third of a log row's insert: rows have 3-8 NULLs). Registered, an adapter that gives
# None back makes it one registry hit (~90 ns) and binds the same NULL. The registry is
# process-wide: every connection's None binds get cheaper, none changes.
sqlite3.register_adapter(type(None), cast("Callable[[None], None]", {}.get))  # in C


def _insert(
    conn: sqlite3.Connection, table: str, cols: Sequence[str], rows: list[tuple[Any, ...]]
) -> None:
    """``executemany(_insert_sql(table, cols), rows)``, ``ROWS_PER_INSERT`` rows a statement
    (fewer when the build allows fewer bound variables)."""
    per = max(
        1, min(ROWS_PER_INSERT, conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // len(cols))
    )
    full = len(rows) - len(rows) % per
    if full:
        sql = _insert_sql(table, cols, per)
        chain = itertools.chain.from_iterable
        for i in range(0, full, per):
            conn.execute(sql, list(chain(rows[i : i + per])))
    if full < len(rows):
        conn.executemany(_insert_sql(table, cols), rows[full:])


class Taken(NamedTuple):
    """The rows one flush takes from the buffers: written, or kept when it fails."""

    decisions: list[tuple[Any, ...]]
    log: list[tuple[Any, ...] | PendingOutcome]
    events: list[tuple[Any, ...]]
    comps: list[tuple[Any, ...]]
    links: list[Link]
    fill: list[tuple[str, str]]
    reports: list[tuple[Any, ...]]


_NARROW = len(DECISION_COLUMNS)


def _first_deliveries(
    conn: sqlite3.Connection, decisions: list[tuple[Any, ...]], top: int
) -> list[tuple[Any, ...]]:
    """``decisions`` without the rows of events whose row was not inserted by this flush
    (rowid above ``top``): a redelivered event's decisions are logged once."""
    new = {
        r[0] for r in conn.execute(f"SELECT event_id FROM {EVENTS_TABLE} WHERE rowid > ?", (top,))
    }
    seen: set[str] = set()
    out = []
    for r in decisions:
        if r[_EVENT] not in new or r[_ID] in seen:
            continue
        seen.add(r[_ID])
        out.append(r)
    return out


def write_flush(conn: sqlite3.Connection, taken: Taken, *, refused: list[Refused] | None) -> None:
    """One flush's rows in one transaction (rolled back if anything raises). With
    ``refused`` (a list), row by row: a row that raises a data error is left out and
    noted there (an event's with its decision rows), and the rest is written."""
    decisions, log, events, comps, links, fill, reports = taken
    insert = _insert if refused is None else partial(insert_each, refused=refused)
    conn.execute("BEGIN")
    try:
        buffered: set[str] = set()
        if events:
            top = conn.execute(f"SELECT MAX(rowid) FROM {EVENTS_TABLE}").fetchone()[0]
            before = conn.total_changes
            insert(conn, EVENTS_TABLE, EVENT_COLUMNS, events)
            if conn.total_changes - before == len(events):  # every event new here
                buffered = {e[0] for e in events}
            else:  # a redelivery (or a refused event): write its decision rows only once
                if refused:
                    refuse_decisions(refused, decisions)
                decisions = _first_deliveries(conn, decisions, top or 0)
        # links to events written in this flush: set on their rows as they are inserted
        pending, link_params = split_links(links, buffered) if links else ({}, [])
        # decision rows first: readers order by ``decided_at, rowid``, and a dispatch
        # row's ``decided_at`` (its trigger's ``fired_at``) is never before its decisions'
        rows = linked(decisions, pending) if pending else decisions
        # outcomes of triggers of events in this flush fold into their decision rows
        rows, dispatches = fold(rows, log, ids_json)
        for run in runs_of_width(rows):
            cols = FOLDED_COLUMNS if len(run[0]) > _NARROW else DECISION_COLUMNS
            insert(conn, LOG_TABLE, cols, run)
        if dispatches:
            dispatches = not_repeated(conn, dispatches, refused)
            insert(conn, LOG_TABLE, LOG_COLUMNS, dispatches)
        if comps:
            insert(conn, COMPLETIONS_TABLE, COMPLETION_COLUMNS, comps)
        if reports:
            insert(conn, TRIGGER_REPORTS_TABLE, TRIGGER_REPORT_COLUMNS, reports)
        if fill:  # before the links: the decision rows are still unlinked
            update(conn, _FILL_SQL, fill, FILL_IDS, refused)
            update(conn, _FILL_REQUESTED_SQL, fill, FILL_IDS, refused)
        if link_params:
            update(conn, _LINK_SQL, link_params, LINK_IDS, refused)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise

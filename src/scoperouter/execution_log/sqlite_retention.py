"""What the SQLite log's retention deletes and how it finds it, without a time index:
rows are appended in time order, so the rows older than the cutoff are a rowid range found
by bisection (:func:`_last_rowid_before`); the flush's :meth:`.sqlite.SqliteExecutionLog.prune`
deletes that range.

Invariant: what is pruned does not depend on whether an outcome was folded into its decision
row: before the log's range goes, a folded row whose outcome is not older than the cutoff
becomes the dispatch row it stands for (:func:`_unfold_newer_outcomes`).
"""

from __future__ import annotations

import sqlite3

from scoperouter.execution_log.api import COMPLETIONS_TABLE, EVENTS_TABLE, LOG_TABLE
from scoperouter.execution_log.row_values import dispatch_key, ids_json

# (table, time column): what retention prunes
_PRUNED = (
    (LOG_TABLE, "decided_at"),
    (EVENTS_TABLE, "decided_at"),
    (COMPLETIONS_TABLE, "reported_at"),
)


def _last_rowid_before(conn: sqlite3.Connection, table: str, col: str, cutoff: str) -> int | None:
    """The largest rowid whose row (or next row) is older than ``cutoff``, by bisection over
    rowids (rows are appended in time order; stragglers are filtered by the DELETE)."""
    lo_hi = conn.execute(f"SELECT MIN(rowid), MAX(rowid) FROM {table}").fetchone()
    if lo_hi[0] is None:
        return None
    lo, hi = int(lo_hi[0]), int(lo_hi[1])
    q = f"SELECT {col} FROM {table} WHERE rowid >= ? AND {col} IS NOT NULL ORDER BY rowid LIMIT 1"
    first = conn.execute(q, (lo,)).fetchone()
    if first is None or first[0] >= cutoff:
        return None
    while lo < hi:  # invariant: the first timed row at/after lo is older than cutoff
        mid = (lo + hi + 1) // 2
        row = conn.execute(q, (mid,)).fetchone()
        if row is not None and row[0] < cutoff:
            lo = mid
        else:
            hi = mid - 1
    return lo


# a folded row whose decision is older than the cutoff and whose outcome (its trigger's
# fired_at) is not: the dispatch row it stands for (:func:`.reader.stored_log_rows`) stays
_NEWER_FOLDED = (
    f"SELECT rowid, trigger_id, dispatch_status, attempts, event_id FROM {LOG_TABLE} "
    "WHERE rowid <= ? AND kind = 'decision' AND decided_at < ? AND fired_at >= ?"
)
_UNFOLD_SQL = (
    f"UPDATE OR IGNORE {LOG_TABLE} SET decision_id = ?, kind = 'dispatch', action = 'dispatch', "
    "decided_at = fired_at, caused_by = ?, entities_mapped = NULL, fired_at = NULL WHERE rowid = ?"
)


def _unfold_newer_outcomes(conn: sqlite3.Connection, last: int, cutoff: str) -> None:
    """Before retention deletes the log's rows up to rowid ``last`` decided before
    ``cutoff``: a folded row whose outcome is not older becomes the dispatch row it stands
    for (its decision part goes, as an unfolded log's decision row would)."""
    rows = conn.execute(_NEWER_FOLDED, (last, cutoff, cutoff)).fetchall()
    conn.executemany(
        _UNFOLD_SQL,
        [
            (dispatch_key(tid, status, attempts), ids_json([ev]), rid)
            for rid, tid, status, attempts, ev in rows
        ],
    )

"""What the SQLite log's retention deletes and how it finds it, without a time index:
rows are appended in time order, so the rows older than the cutoff are a rowid range found
by bisection (:func:`_last_rowid_before`); a pass (:func:`prune_pass`, run by
:meth:`.sqlite.SqliteExecutionLog.prune`) deletes that range a bounded part at a time
(:func:`_pass_end`: at most :data:`~scoperouter.state.model.PRUNE_LIMIT` rows a table and
pass, as the state store's housekeeping), in one transaction, so it holds the log's write
lock -- and the log thread, whose bounded queue backpressures ingest -- for a bounded time
however much is past the cutoff (after an outage, a lowered retention); SQLite reuses the
freed pages, so the file's size stays flat under a steady stream.

Invariants: what is pruned does not depend on whether an outcome was folded into its
decision row: before a part of the log's range goes, a folded row in it whose outcome is
not older than the cutoff becomes the dispatch row it stands for
(:func:`_unfold_newer_outcomes`); and what a bounded pass leaves of the range is the next
pass's (its rows are still older than the cutoff). A run's completion and trigger report
go in the pass that deletes the last of its trigger's dispatch rows (or the folded row
holding it), though reported later (:func:`_drop_reports_of`): a completion outliving its
run would be unmatched (``runs.attach_completions``) until it aged out itself.
"""

from __future__ import annotations

import sqlite3

from scoperouter.execution_log.api import (
    COMPLETIONS_TABLE,
    EVENTS_TABLE,
    LOG_TABLE,
    TRIGGER_REPORTS_TABLE,
)
from scoperouter.execution_log.row_values import _h, dispatch_key, ids_json

# (table, time column): what retention prunes
_PRUNED = (
    (LOG_TABLE, "decided_at"),
    (EVENTS_TABLE, "decided_at"),
    (COMPLETIONS_TABLE, "reported_at"),
    (TRIGGER_REPORTS_TABLE, "reported_at"),
)


def _last_rowid_before(
    conn: sqlite3.Connection, table: str, col: str, cutoff: str, scan: int
) -> int | None:
    """The largest rowid whose row (or next row) is older than ``cutoff``, by bisection over
    rowids (rows are appended in time order; stragglers are filtered by the DELETE). It
    starts at the first of the table's first ``scan`` rows that is older: the rows a pass
    left at the start are newer than its cutoff (an unfolded row's time is its outcome's)
    and would hide the older rows after them until they age."""
    first = conn.execute(
        f"SELECT r FROM (SELECT rowid AS r, {col} AS t FROM {table} ORDER BY rowid LIMIT ?) "
        "WHERE t < ? ORDER BY r LIMIT 1",
        (max(1, scan), cutoff),
    ).fetchone()
    if first is None:
        return None
    lo, hi = int(first[0]), int(conn.execute(f"SELECT MAX(rowid) FROM {table}").fetchone()[0])
    q = f"SELECT {col} FROM {table} WHERE rowid >= ? AND {col} IS NOT NULL ORDER BY rowid LIMIT 1"
    while lo < hi:  # invariant: the first timed row at/after lo is older than cutoff
        mid = (lo + hi + 1) // 2
        row = conn.execute(q, (mid,)).fetchone()
        if row is not None and row[0] < cutoff:
            lo = mid
        else:
            hi = mid - 1
    return lo


_NTH_OLDER = (
    "SELECT rowid FROM {table} WHERE rowid <= ? AND ({col} IS NULL OR {col} < ?) "
    "ORDER BY rowid LIMIT 1 OFFSET ?"
)


def _pass_end(
    conn: sqlite3.Connection, table: str, col: str, last: int, cutoff: str, limit: int
) -> tuple[int, bool]:
    """The rowid up to which one pass goes in the range up to ``last`` of ``table``'s rows
    older than ``cutoff``: that of the ``limit``-th such row (at least 1), or ``last``; and
    whether the pass stops short of ``last`` (rows past the cutoff are left)."""
    row = conn.execute(
        _NTH_OLDER.format(table=table, col=col), (last, cutoff, max(1, limit) - 1)
    ).fetchone()
    if row is None or row[0] >= last:
        return last, False
    return int(row[0]), True


# a folded row whose decision is older than the cutoff and whose outcome (its trigger's
# fired_at) is not: the dispatch row it stands for (:func:`.reader.stored_log_rows`) stays
_NEWER_FOLDED = (
    f"SELECT rowid, trigger_id, dispatch_status, attempts, dispatched_at, event_id FROM {LOG_TABLE} "
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
            (dispatch_key(tid, status, attempts, at), ids_json([ev]), rid)
            for rid, tid, status, attempts, at, ev in rows
        ],
    )


# the dispatch outcomes (own rows, or folded into their decision row) among the log rows a
# pass deletes: their trigger, its processor and date, and the trigger's fired_at
_DELETED_DISPATCHES = (
    f"SELECT DISTINCT trigger_id, processor, game_date, "
    "CASE kind WHEN 'dispatch' THEN ifnull(decided_at, '') ELSE fired_at END "
    f"FROM {LOG_TABLE} WHERE rowid <= ? AND (decided_at IS NULL OR decided_at < ?) "
    "AND trigger_id IS NOT NULL AND (kind = 'dispatch' OR fired_at IS NOT NULL)"
)
# a dispatch outcome of the trigger still in the log (each through its index)
_STILL_DISPATCHED = (
    f"SELECT 1 FROM {LOG_TABLE} WHERE kind = 'dispatch' AND ifnull(decided_at, '') = ? "
    f"AND trigger_id = ? UNION ALL SELECT 1 FROM {LOG_TABLE} WHERE fired_at = ? "
    "AND trigger_id = ? LIMIT 1"
)


def _drop_reports_of(conn: sqlite3.Connection, outcomes: list[tuple[str, str, str, str]]) -> int:
    """After a pass deleted the dispatch ``outcomes`` (trigger, processor, date, fired_at):
    the completion (by its id, ``rows.completion_row``) and trigger report of each trigger
    none of whose outcomes is left. Returns how many rows went."""
    n = 0
    for tid, processor, day, fired in outcomes:
        if conn.execute(_STILL_DISPATCHED, (fired, tid, fired, tid)).fetchone():
            continue  # a bounded pass stopped among its rows: the next one finishes
        if day is not None:
            n += conn.execute(
                f"DELETE FROM {COMPLETIONS_TABLE} WHERE ifnull(game_date, '') = ? "
                "AND completion_id = ?",
                (day, "c-" + _h(processor, day, tid)),
            ).rowcount
        n += conn.execute(
            f"DELETE FROM {TRIGGER_REPORTS_TABLE} WHERE trigger_id = ?", (tid,)
        ).rowcount
    return n


def prune_pass(conn: sqlite3.Connection, cutoff: str, limit: int) -> tuple[int, bool]:
    """One retention pass over the tables in one transaction (rolled back if it
    fails): rows older than ``cutoff`` deleted, at most ``limit`` a table. Returns how many
    rows went and whether a table's pass stopped at its limit (rows older than the cutoff
    are left for the next pass). The completions and trigger reports of the triggers whose
    dispatch outcomes went follow them (:func:`_drop_reports_of`)."""
    n, more = 0, False
    outcomes: list[tuple[str, str, str, str]] = []
    conn.execute("BEGIN")
    try:
        for table, col in _PRUNED:
            last = _last_rowid_before(conn, table, col, cutoff, limit)
            if last is None:
                continue
            end, short = _pass_end(conn, table, col, last, cutoff, limit)
            more = more or short
            if table == LOG_TABLE:
                _unfold_newer_outcomes(conn, end, cutoff)
                outcomes = conn.execute(_DELETED_DISPATCHES, (end, cutoff)).fetchall()
            n += conn.execute(
                f"DELETE FROM {table} WHERE rowid <= ? AND ({col} IS NULL OR {col} < ?)",
                (end, cutoff),
            ).rowcount
        n += _drop_reports_of(conn, outcomes)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return n, more

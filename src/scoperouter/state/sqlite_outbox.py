"""The SQLite outbox's id order, which its done prune relies on.

Invariant: outbox ids are given in creation order, and a row's ``created_at`` is written
only by the insert that gives the row its id. A redrive (which starts a dead row's retry
horizon again, so it must move ``created_at``) therefore re-inserts the row under a new
id -- the largest yet, ``AUTOINCREMENT`` -- instead of updating it in place. So the rows
created before a time are a prefix of the ids (up to a clock stepped back), found by
bisection: the done prune reads that rowid range, never the whole table, and skips no
done row past a redriven one. (SQLite cannot use an index on status for
``status = 'done'``, and an index on ``finished_at`` would cost every ``Done`` mark an
index entry: ``sqlite_schema`` migration 6.)
"""

from __future__ import annotations

import sqlite3

from scoperouter.state.shared_sql import SQLITE

# a dead row back to pending, as shared_sql_text's "redrive_dead" UPDATE: fresh attempts, due
# and created now, no error, no finish -- the rest of the row (trigger, body, the mode it
# fired in, claims, rescues) as it was; in id order, so the new ids keep the old rows' order
_REDRIVE_INSERT = (
    "INSERT INTO sr_outbox(trigger_id, processor, body, mode, status, attempts, claims, "
    "rescues, created_at, available_at) SELECT trigger_id, processor, body, mode, 'pending', "
    "0, claims, rescues, ?1, ?1 FROM sr_outbox WHERE status = 'dead' AND (?2 OR processor = ?3) "
    "ORDER BY id"
)
_REDRIVE_DELETE = "DELETE FROM sr_outbox WHERE status = 'dead' AND (?1 OR processor = ?2)"


def redrive_dead(db: sqlite3.Connection, now: float, processor: str | None) -> int:
    """Dead rows (of ``processor``, or all) back to pending under new ids, due ``now``, with
    a fresh attempt count and horizon; their ``trigger`` dead letters go (the caller holds
    the transaction). Returns how many rows were redriven."""
    every = processor is None
    db.execute(SQLITE.q["drop_dead_letters"], (every, processor))  # by the old ids
    n = db.execute(_REDRIVE_INSERT, (now, every, processor)).rowcount
    gone = db.execute(_REDRIVE_DELETE, (every, processor)).rowcount
    assert gone == n, (gone, n)  # one transaction, one writer: the same dead rows
    return int(n)


def created_before(db: sqlite3.Connection, horizon: float) -> int:
    """The largest outbox id whose row was created before ``horizon`` (-1: none), by
    bisection over ids: ids are given in creation order (the invariant above). A clock
    stepped back makes it approximate -- rows created before the horizon may then lie past
    it: they are pruned by a later pass, never an undue row (the prune checks each row's
    own time)."""
    lo_row = db.execute("SELECT min(id), max(id) FROM sr_outbox").fetchone()
    lo, hi = lo_row if lo_row is not None else (None, None)
    if lo is None:
        return -1
    at = "SELECT id, created_at FROM sr_outbox WHERE id >= ? ORDER BY id LIMIT 1"
    found = -1
    while lo <= hi:  # invariant: rows before lo are older than horizon, after hi not
        mid = (lo + hi) // 2
        row = db.execute(at, (mid,)).fetchone()  # the first row at or after mid
        if row is not None and row[1] < horizon:
            found, lo = row[0], row[0] + 1
        else:  # no row of [mid, hi] is older than the horizon
            hi = mid - 1
    return found

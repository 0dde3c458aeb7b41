"""The dispatcher's backlog in the snapshot + journal store (:mod:`.store`): the outbox's
pending rows paged per processor by availability, deferred after a failed attempt, made due
again, and dead rows redriven or discarded (issue 18).

Invariant: every statement here reads or changes ``pending`` rows only -- but
:meth:`StoreBacklog.redrive_dead` and :meth:`StoreBacklog.discard_dead`, which take
``dead`` ones with their trigger dead letters -- and opens no transaction of its own (a
statement joins the caller's :meth:`~.store.Store.transaction`, else commits alone); a
pending row is due once its ``available_at`` (0: at once) is at most the time asked
about. :meth:`StoreBacklog._migrate_backlog` only adds (the columns when missing, the index
when absent), so a store written before opens with its rows unchanged.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from scoperouter.runtime.store_schema import PendingTrigger
from scoperouter.state.sqlite_schema import add_columns


class StoreBacklog:
    """The backlog's queries and updates, mixed into :class:`~.store.Store` (its
    connection, used from the event-loop thread only)."""

    _db: sqlite3.Connection

    # The dispatcher pages pending triggers from here instead of holding them in tasks:
    # ``available_at`` is when a pending row may be attempted next (0: now).
    _PENDING_COLS = "id, trigger_id, processor, body, starts, attempts, created_at, mode"

    def _migrate_backlog(self) -> None:
        # rows written before keep mode NULL: sent by the mode at dispatch
        add_columns(
            self._db,
            "triggers",
            {"available_at": "available_at REAL NOT NULL DEFAULT 0", "mode": "mode TEXT"},
        )
        self._db.execute(
            "CREATE INDEX IF NOT EXISTS triggers_due_idx ON triggers(processor, available_at, id)"
            " WHERE status = 'pending'"
        )
        # the record a dead letter still owes the dead-letter topic; NULL: nothing owed
        # (letters stored before read so: no row is rewritten)
        add_columns(self._db, "dead_letters", {"topic_record": "topic_record BLOB"})
        self._db.execute(
            "CREATE INDEX IF NOT EXISTS dead_letters_owed_idx ON dead_letters(id)"
            " WHERE topic_record IS NOT NULL"
        )

    def pending_count(self) -> int:
        row = self._db.execute("SELECT count(*) FROM triggers WHERE status = 'pending'")
        return int(row.fetchone()[0])

    def pending_sample(self, limit: int) -> list[PendingTrigger]:
        """The first ``limit`` pending rows by id (restart log lines)."""
        rows = self._db.execute(
            f"SELECT {self._PENDING_COLS} FROM triggers WHERE status = 'pending' "
            "ORDER BY id LIMIT ?",
            (limit,),
        ).fetchall()
        return [PendingTrigger(*r) for r in rows]

    def mark_all_started(self) -> None:
        """Count one more start on every pending row (one statement, whatever the backlog)."""
        self._db.execute("UPDATE triggers SET starts = starts + 1 WHERE status = 'pending'")

    def live_backlog(self) -> dict[str, int]:
        """Pending rows stored with mode ``live``, per processor (a start-up count)."""
        return self.pending_by_processor(live_only=True)

    def pending_by_processor(self, *, live_only: bool = False) -> dict[str, int]:
        """Pending rows (``live_only``: stored with mode ``live``) per processor (a start-up
        count)."""
        rows = self._db.execute(
            "SELECT processor, count(*) FROM triggers WHERE status = 'pending' "
            + ("AND mode = 'live' " if live_only else "")
            + "GROUP BY processor ORDER BY processor"
        ).fetchall()
        return {str(p): int(n) for p, n in rows}

    def pending_processors(self) -> list[str]:
        rows = self._db.execute(
            "SELECT DISTINCT processor FROM triggers WHERE status = 'pending'"
        ).fetchall()
        return [str(r[0]) for r in rows]

    def due_triggers(self, processor: str, now: float, limit: int) -> list[PendingTrigger]:
        """Pending rows of ``processor`` available at ``now``, oldest availability first."""
        rows = self._db.execute(
            f"SELECT {self._PENDING_COLS} FROM triggers WHERE status = 'pending' "
            "AND processor = ? AND available_at <= ? ORDER BY available_at, id LIMIT ?",
            (processor, now, limit),
        ).fetchall()
        return [PendingTrigger(*r) for r in rows]

    def next_available(self, processor: str, after: float) -> float | None:
        """The earliest ``available_at`` later than ``after`` of a pending row, or None."""
        row = self._db.execute(
            "SELECT min(available_at) FROM triggers WHERE status = 'pending' "
            "AND processor = ? AND available_at > ?",
            (processor, after),
        ).fetchone()
        return None if row[0] is None else float(row[0])

    def expired_triggers(
        self, processor: str, created_before: float, limit: int, *, untried: bool = False
    ) -> list[PendingTrigger]:
        """Pending rows of ``processor`` that fired before ``created_before`` (past the
        retry horizon) and failed at least once -- with ``untried`` (the target's circuit is
        open: its backlog waits on a target that keeps failing) also those never attempted;
        else such a row (a backlog behind a slow target, or pending across a stop longer
        than the horizon) waits for its turn."""
        rows = self._db.execute(
            f"SELECT {self._PENDING_COLS} FROM triggers WHERE status = 'pending' "
            "AND processor = ? AND created_at < ? AND (attempts > 0 OR ?) ORDER BY id LIMIT ?",
            (processor, created_before, int(untried), limit),
        ).fetchall()
        return [PendingTrigger(*r) for r in rows]

    def defer(self, row_id: int, attempts: int, available_at: float, error: str) -> None:
        """A failed attempt: the row stays pending and is due again at ``available_at``."""
        self._db.execute(
            "UPDATE triggers SET attempts = ?, available_at = ?, error = ? "
            "WHERE id = ? AND status = 'pending'",
            (attempts, available_at, error, row_id),
        )

    def redrive_lane(self, processor: str, now: float) -> int:
        """The target works again: every pending row of ``processor`` is due ``now``."""
        cur = self._db.execute(
            "UPDATE triggers SET available_at = ? WHERE status = 'pending' "
            "AND processor = ? AND available_at > ?",
            (now, processor, now),
        )
        return cur.rowcount

    def _drop_dead_letters(self, processor: str | None) -> tuple[str, tuple[Any, ...]]:
        """Delete the dead letters of the dead triggers (of ``processor``, or all); returns
        the WHERE clause that picks those triggers and its arguments. Only None means all:
        ``""`` is a processor name like any other (it matches none), as in the state stores."""
        every = processor is None
        where = "status = 'dead'" + ("" if every else " AND processor = ?")
        args: tuple[Any, ...] = () if every else (processor,)
        self._db.execute(
            "DELETE FROM dead_letters WHERE kind = 'trigger' AND ref IN "
            f"(SELECT trigger_id || '#' || id FROM triggers WHERE {where})",
            args,
        )
        return where, args

    def redrive_dead(self, now: float, processor: str | None = None) -> int:
        """Dead triggers (of ``processor``, or all) back to pending, due ``now``, with a
        fresh attempt count and horizon; their dead letters go (they are retried)."""
        where, args = self._drop_dead_letters(processor)
        cur = self._db.execute(
            "UPDATE triggers SET status = 'pending', attempts = 0, available_at = ?, "
            f"created_at = ?, dispatched_at = NULL, error = NULL WHERE {where}",
            (now, now, *args),
        )
        return cur.rowcount

    def discard_dead(self, processor: str | None = None) -> int:
        """Delete dead triggers (of ``processor``, or all) and their dead letters."""
        where, args = self._drop_dead_letters(processor)
        cur = self._db.execute(f"DELETE FROM triggers WHERE {where}", args)
        return cur.rowcount

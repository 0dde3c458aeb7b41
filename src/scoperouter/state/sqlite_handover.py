"""The SQLite store's hand-over: the methods of
:class:`~scoperouter.state.sqlite.SqliteStateStore` that take another store's work in (the
snapshot + journal store's, :mod:`scoperouter.state.legacy`; or, when the closed loop was
switched on or off across a restart, serve's other store in the state dir,
``runtime/state_handover.py``) and give this store's work away.

Invariant: every method that writes is one ``BEGIN IMMEDIATE`` transaction of the store's
(``_tx``) and leaves the earliest deadline to be read again; what :meth:`drain` deletes
(windows, rows not done, dead letters) is all in what :meth:`export_state` returns, and a
carry-over run twice with one state writes no trigger, dead letter or seen id twice.
"""

from __future__ import annotations

import sqlite3
from contextlib import AbstractContextManager

from scoperouter.state.ahead_bound import AheadBound
from scoperouter.state.legacy import Carried, LegacyState, outbox_work
from scoperouter.state.merge import join
from scoperouter.state.model import DeadLetter, DeadLetterIn, WindowKey, WindowState
from scoperouter.state.shared_sql import SQLITE
from scoperouter.state.sqlite_seen import RecentSeen
from scoperouter.state.window_rows import SQLITE_NEW_WINDOW as _NEW_WINDOW
from scoperouter.state.window_rows import SQLITE_PUT_WINDOW as _PUT_WINDOW
from scoperouter.state.window_rows import sqlite_window_params as _window_params


class SqliteHandover:
    """The hand-over half of :class:`~scoperouter.state.sqlite.SqliteStateStore` (which
    gives the attributes and the methods declared here)."""

    _db: sqlite3.Connection
    _recent: RecentSeen
    _ahead: AheadBound
    _deadline_known: bool

    def _tx(self) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError

    def _others_wrote(self) -> bool:
        raise NotImplementedError

    @staticmethod
    def _read_window(db: sqlite3.Connection, key: WindowKey) -> WindowState | None:
        raise NotImplementedError

    def open_windows(self) -> list[WindowState]:
        raise NotImplementedError

    def dead_letters(self) -> list[DeadLetter]:
        raise NotImplementedError

    def import_legacy(self, state: LegacyState, now: float) -> bool:
        self._deadline_known = False
        self._ahead.forget()
        with self._tx() as db:
            self._others_wrote()
            if self._recent.ids:  # staged seen ids: the store is not empty
                return False

            def insert(w: WindowState) -> None:
                db.execute(
                    _NEW_WINDOW,
                    _window_params(w),
                )

            return SQLITE.import_legacy(db, state, insert, now)

    def carry_over(self, state: LegacyState, now: float) -> Carried:
        """Write ``state`` (the other store's work) into this store, whatever it holds, in
        one transaction (:meth:`~scoperouter.state.shared_sql.Sql.carry`); a window of a key
        this store holds joins it (:func:`~scoperouter.state.merge.join`). Running it again
        with the same state writes no trigger, dead letter or seen id twice and leaves the
        windows as they are."""
        self._deadline_known = False
        self._ahead.forget()
        with self._tx() as db:
            self._others_wrote()

            def put(w: WindowState) -> bool:
                have = self._read_window(db, w.key)
                db.execute(
                    _PUT_WINDOW,
                    _window_params(w if have is None else join(have, w)),
                )
                return have is not None

            return SQLITE.carry(db, state, put, now, self._recent.ids)

    def has_unfinished(self) -> bool:
        """True when this store holds work a daemon must still do: an open window, or a row
        to send (pending or leased) -- what :meth:`export_state` would carry as unfinished,
        asked through the partial indexes instead of reading every seen id."""
        self._others_wrote()
        row = self._db.execute(
            "SELECT EXISTS(SELECT 1 FROM sr_windows)"
            " OR EXISTS(SELECT 1 FROM sr_outbox WHERE status = 'pending')"
            " OR EXISTS(SELECT 1 FROM sr_outbox WHERE status = 'leased')"
        ).fetchone()
        return bool(row[0])

    def export_state(self) -> LegacyState:
        """Everything of this store another one must take to go on with its work: seen ids
        (staged ones too), open windows, the rows to send (pending or leased: a stopped
        daemon's lease is void) with their attempts, mode and due time, dead rows with their
        dead letter, and the other dead letters. Done rows and the completion ledger stay."""
        self._others_wrote()
        db = self._db
        seen = tuple(
            (str(e), float(at))
            for e, at in db.execute(
                "SELECT event_id, seen_at FROM sr_seen UNION ALL "
                "SELECT event_id, seen_at FROM sr_seen_recent ORDER BY 1"
            )
        )
        letters = [
            DeadLetterIn(d.kind, d.ref, d.reason, d.detail, d.payload, d.at, d.topic_record)
            for d in self.dead_letters()
        ]
        rows = db.execute(
            "SELECT id, trigger_id, processor, body, attempts, created_at, mode, available_at, "
            "status, finished_at, error FROM sr_outbox "
            "WHERE status IN ('pending', 'leased', 'dead') ORDER BY id"
        ).fetchall()
        pending, dead, kept = outbox_work(rows, letters)
        return LegacyState(seen, tuple(self.open_windows()), tuple(pending), kept, tuple(dead))

    def drain(self) -> None:
        """After :meth:`export_state` was carried over into another store: the windows,
        the rows not done and the dead letters go (one transaction), so nothing is routed,
        sent or listed from here twice; seen ids, done rows and the completion ledger
        stay."""
        self._deadline_known = False
        with self._tx() as db:
            db.execute("DELETE FROM sr_windows")
            db.execute("DELETE FROM sr_outbox WHERE status != 'done'")
            db.execute("DELETE FROM sr_dead_letters")

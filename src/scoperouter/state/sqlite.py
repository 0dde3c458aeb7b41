"""The embedded state store: one SQLite database in WAL mode, one process.

The daemon opens it ``exclusive`` (:mod:`.sqlite_lock`): a second daemon on the file is
refused at open, before it could take the first one's leases (a daemon gives back every
lease it finds at start: on a single-instance store only a stopped predecessor's).

Invariant: every public method is one ``BEGIN IMMEDIATE`` transaction (SQLite's database
lock serialises writers, so no row locks are needed); an open window is one row of
``sr_windows`` written in the ingest transaction that changed it, so a restart reads
nothing but the earliest deadline (no snapshot, no journal to replay). Seen ids are staged
in append order and folded into ``sr_seen`` in sorted runs (:mod:`.sqlite_seen`; the
staged ids are kept in memory too, so one process at a time ingests into the file).

Durability: ``synchronous=FULL`` by default (a commit survives power loss); ``NORMAL``
survives a process crash and may lose the last commits on an OS crash. WAL checkpoints
run on their own thread (:mod:`scoperouter.state.sqlite_checkpoint`), never in a commit.

Here: ingest, windows and housekeeping. The outbox, dead letters and completion ledger are
:class:`~scoperouter.state.sqlite_outbox_store.SqliteOutbox`'s, the hand-over between
stores :class:`~scoperouter.state.sqlite_handover.SqliteHandover`'s (both inherited).
"""

from __future__ import annotations

import operator
import sqlite3
from collections.abc import Mapping, Sequence
from itertools import repeat
from pathlib import Path
from typing import Any, Literal

from scoperouter.router.window_state import CLOCK_SLACK_S
from scoperouter.state.ahead_bound import AheadBound
from scoperouter.state.core import (
    fired_modes,
    fired_triggers,
    fold,
    ids_from_json,
    split_admissions,
    to_record,
    trigger_body,
)
from scoperouter.state.model import (
    IngestBatch,
    IngestResult,
    OutboxItem,
    Pruned,
    Retention,
    StoreOptions,
    WindowKey,
    WindowState,
)
from scoperouter.state.outbox_regrain import regrain_outbox
from scoperouter.state.shared_sql import SQLITE
from scoperouter.state.sqlite_bulk import STATEMENT_CACHE, apply_marks, insert_outbox
from scoperouter.state.sqlite_checkpoint import WAL_LIMIT_BYTES, Checkpointer
from scoperouter.state.sqlite_handover import SqliteHandover
from scoperouter.state.sqlite_lock import InstanceLock, holder
from scoperouter.state.sqlite_outbox import created_before
from scoperouter.state.sqlite_outbox_store import SqliteOutbox
from scoperouter.state.sqlite_schema import open_connection
from scoperouter.state.sqlite_seen import FOLD_AT, RecentSeen
from scoperouter.state.window_limits import apply_limits as _apply_limits
from scoperouter.state.window_rows import SQLITE_PUT_WINDOW as _PUT_WINDOW
from scoperouter.state.window_rows import SQLITE_WINDOW_COLS as _WINDOW_COLS
from scoperouter.state.window_rows import sqlite_window as _window
from scoperouter.state.window_rows import sqlite_window_params as _window_params

SyncMode = Literal["full", "normal"]

_BODY = operator.itemgetter(2)  # of an outbox row (trigger_id, processor, body)


class _Tx:
    """The store's transaction as a reusable context manager (transactions never nest: one
    writer thread; cheaper than a generator-based one per transaction)."""

    __slots__ = ("checkpointer", "db")

    def __init__(self, db: sqlite3.Connection, checkpointer: Checkpointer) -> None:
        self.db = db
        self.checkpointer = checkpointer

    def __enter__(self) -> sqlite3.Connection:
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> Literal[False]:
        db = self.db
        if kind is not None:
            if db.in_transaction:
                db.execute("ROLLBACK")
            return False
        try:
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        self.checkpointer.after_commit(db)
        return False


class SqliteStateStore(SqliteOutbox, SqliteHandover):
    """:class:`~scoperouter.state.api.StateStore` on one SQLite file (single instance)."""

    kind = "sqlite"
    shared = False

    def __init__(
        self,
        path: str | Path,
        options: StoreOptions | None = None,
        *,
        sync: SyncMode = "full",
        checkpoint_interval_s: float = 1.0,
        wal_limit_bytes: int = WAL_LIMIT_BYTES,
        seen_fold_at: int = FOLD_AT,
        exclusive: bool = False,
        lock_timeout_s: float = 0.0,
    ) -> None:
        """``exclusive``: hold the file's instance lock until :meth:`close` (a daemon),
        waiting up to ``lock_timeout_s`` for another holder, else
        :class:`~scoperouter.state.sqlite_lock.StoreInUse`; without it (offline commands,
        tests) no lock is taken or checked."""
        self.options = options or StoreOptions()
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock: InstanceLock | None = None
        if exclusive:  # before the first statement: a refused daemon changes nothing
            self._lock = InstanceLock(self.path, holder(self.options.owner), lock_timeout_s)
        try:
            self._db = open_connection(self.path, sync, wal_limit_bytes, STATEMENT_CACHE)
            try:
                self._recent = RecentSeen(self._db, seen_fold_at)
            except BaseException:
                self._db.close()
                raise
        except BaseException:
            self._unlock()
            raise
        self._checkpointer = Checkpointer(self.path, sync, checkpoint_interval_s, wal_limit_bytes)
        self._txn = _Tx(self._db, self._checkpointer)
        if self._recent.over():  # opened with fold_at staged ids or more: bound the memory
            with self._tx() as db:
                self._recent.fold_now(db)
            self._recent.committed()
        # the earliest window deadline as of the last commit (this process is the only
        # writer of sr_windows): an ingest that wrote no window row does not read it again
        self._deadline: float | None = None
        self._deadline_known = False
        # every open window's last_at bound (forgotten when another connection wrote or at
        # a hand-over): fire_due's scan for windows a clock step left ahead (ahead_bound)
        self._ahead = AheadBound()
        # PRAGMA data_version as of this connection's last look: it changes only when
        # another connection (another store on the file, another process) committed, and
        # then the staged seen ids and the earliest deadline held here are stale
        self._version = self._data_version()

    def _data_version(self) -> int:
        return int(self._db.execute("PRAGMA data_version").fetchone()[0])

    def _others_wrote(self) -> bool:
        """True (once) when another connection committed to the file since the last look;
        the staged seen ids are read again and the deadline is no longer known."""
        v = self._data_version()
        if v == self._version:
            return False
        self._version = v
        self._recent.reload(self._db)
        self._deadline_known = False
        self._ahead.forget()
        return True

    def pragma(self, name: str) -> Any:
        """One PRAGMA's value (tests check the durability setting)."""
        return self._db.execute(f"PRAGMA {name}").fetchone()[0]

    def _tx(self) -> _Tx:
        """``with self._tx() as db``: one ``BEGIN IMMEDIATE`` transaction, committed (then
        the checkpointer's turn) or rolled back on an exception."""
        return self._txn

    def _unlock(self) -> None:
        if self._lock is not None:
            self._lock.release()

    def close(self) -> None:
        try:
            self._checkpointer.stop()
            try:
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                self._db.close()
        finally:
            self._unlock()  # after the last write: the next daemon may start

    def ping(self) -> None:
        with self._tx() as db:
            db.execute("PRAGMA user_version = " + str(self.pragma("user_version")))

    # ------------------------------------------------------------------ ingest and windows
    def ingest(self, batch: IngestBatch, now: float) -> IngestResult:
        with self._tx() as db:
            self._others_wrote()
            known, self._deadline_known = self._deadline_known, False  # until this commits
            new_ids = self._recent.admit(db, sorted({a.event_id for a in batch.admissions}), now)
            accepted, duplicates, grouped = split_admissions(batch.admissions, new_ids)
            existing = {key: self._read_window(db, key) for key in sorted(grouped)}
            f = fold(existing, grouped, now, self.options.modes)
            if f.write:
                db.executemany(
                    _PUT_WINDOW,
                    [_window_params(w) for w in f.write],
                )
            gone = [(p, d.isoformat()) for p, d in f.delete if existing.get((p, d)) is not None]
            if gone:
                db.executemany("DELETE FROM sr_windows WHERE processor = ? AND day = ?", gone)
            fired = self._insert_fired(db, f.fired, now)
            letters = tuple(SQLITE.dead_letter(db, d) for d in batch.dead_letters)
            marked = tuple(apply_marks(db, batch.marks, self.options.owner))
            for r in to_record(batch.completions, accepted):
                SQLITE.record_completion(db, r.trigger_id, r.state, now)
            # no window row written or deleted: the earliest deadline is the one known
            nd = self._deadline if known and not (f.write or gone) else self._next_deadline(db)
        self._recent.committed()
        self._deadline, self._deadline_known = nd, True
        if f.write:
            self._ahead.wrote(now)
        return IngestResult(tuple(accepted), tuple(duplicates), tuple(fired), letters, marked, nd)

    @staticmethod
    def _read_window(db: sqlite3.Connection, key: WindowKey) -> WindowState | None:
        row = db.execute(
            f"SELECT {_WINDOW_COLS} FROM sr_windows WHERE processor = ? AND day = ?",
            (key[0], key[1].isoformat()),
        ).fetchone()
        return None if row is None else _window(row)

    def _insert_fired(
        self, db: sqlite3.Connection, windows: Sequence[WindowState], now: float
    ) -> list[OutboxItem]:
        """The fired windows' triggers as outbox rows leased to this owner, each with the
        mode it fired in."""
        o = self.options
        triggers, rows = fired_triggers(windows, now, o.date_field)
        modes = fired_modes(o.modes, windows, rows)
        ids = insert_outbox(db, rows, modes, now, o.owner, now + o.lease_s)
        return list(map(OutboxItem, ids, triggers, map(_BODY, rows), repeat(0), repeat(1), modes))

    def may_hold_ahead(self, now: float) -> bool:
        """Whether a window may lie past ``CLOCK_SLACK_S`` ahead of ``now`` (a wall clock
        stepped back; not known yet): :meth:`fire_due` then looks for such windows, whatever
        the earliest deadline says. No I/O."""
        return self._ahead.may_hold_ahead(now)

    def fire_due(self, now: float, limit: int = 1000) -> list[OutboxItem]:
        self._deadline_known = False  # rows deleted: the next read finds it
        with self._tx() as db:
            self._others_wrote()
            rows = db.execute(
                f"SELECT {_WINDOW_COLS} FROM sr_windows WHERE deadline <= ? "
                "ORDER BY deadline, processor, day LIMIT ?",
                (now, limit),
            ).fetchall()
            ahead = self.may_hold_ahead(now)
            if ahead:  # a clock stepped back: windows past the slack ahead are due now
                rows += db.execute(
                    f"SELECT {_WINDOW_COLS} FROM sr_windows WHERE last_at > ? "
                    "AND deadline > ? ORDER BY processor, day",
                    (now + CLOCK_SLACK_S, now),
                ).fetchall()
            db.executemany(
                "DELETE FROM sr_windows WHERE processor = ? AND day = ?",
                [(r[0], r[1]) for r in rows],
            )
            fired = self._insert_fired(db, [_window(r) for r in rows], now)
        if ahead:  # every window left lies within the slack
            self._ahead.scanned(now)
        return fired

    @staticmethod
    def _next_deadline(db: sqlite3.Connection) -> float | None:
        row = db.execute("SELECT min(deadline) FROM sr_windows").fetchone()
        return None if row[0] is None else float(row[0])

    def next_deadline(self) -> float | None:
        nd = self._next_deadline(self._db)
        self._deadline, self._deadline_known = nd, True
        return nd

    def announce_processors(self, now: float) -> frozenset[str]:
        """One instance: no other replica routes anything (a processor it does not route
        has work here from a previous routes.yaml only: an orphan)."""
        return frozenset()

    def open_windows(self) -> list[WindowState]:
        rows = self._db.execute(
            f"SELECT {_WINDOW_COLS} FROM sr_windows ORDER BY processor, day"
        ).fetchall()
        return [_window(r) for r in rows]

    def open_window_count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM sr_windows").fetchone()[0])

    def seen_at(self, event_id: str) -> float | None:
        self._others_wrote()
        at = self._recent.seen_at(event_id)
        return at if at is not None else SQLITE.seen_at(self._db, event_id)

    def apply_limits(
        self,
        limits: Mapping[str, int],
        default: int,
        granularities: Mapping[str, str] | None = None,
        *,
        durations: Mapping[str, tuple[float, float]] | None = None,
        default_durations: tuple[float, float] | None = None,
    ) -> int:
        self._deadline_known = False  # durations may move deadlines
        with self._tx() as db:
            return _apply_limits(
                db,
                limits,
                default,
                ids_from_json,
                placeholder="?",
                lock=False,
                granularities=granularities,
                durations=durations,
                default_durations=default_durations,
            )

    def regrain_pending(self, granularities: Mapping[str, str]) -> int:
        with self._tx() as db:
            return regrain_outbox(db, granularities, trigger_body, placeholder="?", lock=False)

    # ------------------------------------------------------------------ housekeeping
    def prune(self, retention: Retention, now: float) -> Pruned:
        """Every prune in one transaction. Done outbox rows are looked for among the ids
        created before the done horizon only (a rowid range: SQLite cannot use an index on
        status for ``status = 'done'``, and a scan of a week of delivered triggers every
        housekeeping pass would stall ingest); a done row is finished after it is created,
        and ids are in creation order, a redriven row's too (:mod:`.sqlite_outbox`), so
        none past the range is old enough. Each statement deletes at most
        ``retention.limit`` rows (the rest goes in the next pass, ``Pruned.more``), but the
        staged seen ids, at most ``fold_at`` of them (:mod:`.sqlite_seen`)."""
        with self._tx() as db:
            self._others_wrote()
            upto = created_before(db, now - retention.done_s)
            p = SQLITE.prune(db, retention, now, done_upto=upto)
            staged = self._recent.prune(db, now - retention.seen_s)
        self._recent.committed()
        return Pruned(p.seen + staged, p.done, p.dead, p.dead_letters, p.completions, p.more)

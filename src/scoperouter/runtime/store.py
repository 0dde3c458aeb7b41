"""The router's durable state: one SQLite database in WAL mode (the tables:
:mod:`.store_schema`; the dispatcher's backlog queries: :mod:`.store_backlog`).

Invariant: every ingest batch is one transaction -- seen ids, journal rows and fired
triggers commit together, and only then are the messages acked; a fired trigger is in the
outbox (``pending``) before it is dispatched. Triggers re-fired while replaying the
journal are ignored: they were committed with the journal row that produced them.

Durability: ``synchronous=FULL`` by default (each commit fsyncs the WAL, so an acked
message survives power loss, not only a process crash). The ingest path group-commits
(one transaction per batch of queued messages), which keeps the fsync cost per message
small. ``NORMAL`` is available for hosts where fsync is slow: it still survives a process
crash (SIGKILL, OOM), and only an OS crash may lose the last transactions.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from scoperouter.runtime.payloads import trigger_bytes
from scoperouter.runtime.store_backlog import StoreBacklog
from scoperouter.runtime.store_schema import (
    SCHEMA,
    DeadLetter,
    JournalEntry,
    PendingTrigger,
    SyncMode,
)
from scoperouter.state import legacy, letter_refs
from scoperouter.state.legacy import DeadTrigger, LegacyState, carry_rows
from scoperouter.state.model import PRUNE_LIMIT, DeadLetterIn
from scoperouter.state.outbox_regrain import regrain_outbox

__all__ = ["DeadLetter", "JournalEntry", "PendingTrigger", "Store", "SyncMode", "now"]


class Store(StoreBacklog):
    """Synchronous SQLite access, used from the event-loop thread only.

    Statements are short (indexed point reads and inserts); the only blocking cost is
    the commit, amortised by batching.
    """

    def __init__(self, path: str | Path, *, sync: SyncMode = "full") -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={sync.upper()}")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(SCHEMA)
        self._migrate_backlog()
        self._in_tx = False

    # ------------------------------------------------------------------ transactions
    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One atomic unit; nested use joins the outer transaction."""
        if self._in_tx:
            yield
            return
        self._db.execute("BEGIN IMMEDIATE")
        self._in_tx = True
        try:
            yield
        except BaseException:
            self._rollback()
            raise
        else:
            try:
                self._db.execute("COMMIT")
            except BaseException:
                # a failed COMMIT (disk full, I/O error, busy) can leave the transaction
                # open: end it, so the next BEGIN starts clean
                self._rollback()
                raise
        finally:
            self._in_tx = False

    def _rollback(self) -> None:
        if self._db.in_transaction:
            with suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """A nested unit inside :meth:`transaction`: on an exception only its own writes
        are undone and the exception propagates; the outer transaction goes on."""
        if not self._in_tx:
            raise RuntimeError("savepoint() needs an open transaction")
        self._db.execute("SAVEPOINT item")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK TO item")
            self._db.execute("RELEASE item")
            raise
        else:
            self._db.execute("RELEASE item")

    def close(self) -> None:
        try:
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            self._db.close()

    # ------------------------------------------------------------------ idempotency
    def is_seen(self, event_id: str) -> bool:
        row = self._db.execute("SELECT 1 FROM seen WHERE event_id = ?", (event_id,)).fetchone()
        return row is not None

    def mark_seen(self, event_id: str, at: float) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO seen(event_id, seen_at) VALUES (?, ?)", (event_id, at)
        )

    def prune_seen(self, older_than: float, limit: int = PRUNE_LIMIT) -> int:
        """Delete at most ``limit`` ids seen before ``older_than``; how many."""
        cur = self._db.execute(
            "DELETE FROM seen WHERE event_id IN "
            "(SELECT event_id FROM seen WHERE seen_at < ? LIMIT ?)",
            (older_than, limit),
        )
        return cur.rowcount

    def seen_count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM seen").fetchone()[0])

    # ------------------------------------------------------------------ windows
    def journal(
        self, op: str, now: float, event: str | None = None, decision: str | None = None
    ) -> None:
        self._db.execute(
            "INSERT INTO window_journal(op, now, event, decision) VALUES (?, ?, ?, ?)",
            (op, now, event, decision),
        )

    def journal_many(self, rows: list[tuple[str, float, str | None, str | None]]) -> None:
        self._db.executemany(
            "INSERT INTO window_journal(op, now, event, decision) VALUES (?, ?, ?, ?)", rows
        )

    def journal_entries(self) -> list[JournalEntry]:
        rows = self._db.execute(
            "SELECT seq, op, now, event, decision FROM window_journal ORDER BY seq"
        ).fetchall()
        return [JournalEntry(*r) for r in rows]

    def journal_length(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM window_journal").fetchone()[0])

    def save_snapshot(self, snapshot: dict[str, Any], now: float) -> None:
        """Write the compaction point and drop the journal it covers (same transaction)."""
        with self.transaction():
            self._db.execute(
                "INSERT OR REPLACE INTO window_snapshot(id, snapshot, taken_at) VALUES (1, ?, ?)",
                (json.dumps(snapshot, separators=(",", ":")), now),
            )
            self._db.execute("DELETE FROM window_journal")

    def load_snapshot(self) -> dict[str, Any] | None:
        row = self._db.execute("SELECT snapshot FROM window_snapshot WHERE id = 1").fetchone()
        if row is None:
            return None
        try:
            data: dict[str, Any] = json.loads(row[0])
        except ValueError as exc:
            raise ValueError(f"window snapshot is not JSON: {exc}") from None
        return data

    # ------------------------------------------------------------------ outbox
    def insert_trigger(
        self, trigger_id: str, processor: str, body: str, now: float, mode: str | None = None
    ) -> int:
        """A fired trigger, pending, with the dispatch mode it fired in (None: not known)."""
        cur = self._db.execute(
            "INSERT INTO triggers(trigger_id, processor, body, created_at, mode) "
            "VALUES (?, ?, ?, ?, ?)",
            (trigger_id, processor, body, now, mode),
        )
        rid = cur.lastrowid
        assert rid is not None
        return rid

    def regrain_pending(self, granularities: Mapping[str, str]) -> int:
        """Every pending or dead trigger of a processor in ``granularities`` whose entity
        ids are of another type than its granularity there becomes the full-date trigger
        (new id and body; a dead one's dead letter follows it:
        :mod:`scoperouter.state.outbox_regrain`); returns how many. Run by the caller's
        transaction at a start under a changed registry."""
        return regrain_outbox(
            self._db,
            granularities,
            lambda t: trigger_bytes(t).decode(),
            placeholder="?",
            lock=False,
            table="triggers",
        )

    def first_mode(self, trigger_id: str) -> str | None:
        """The mode the first outbox row of ``trigger_id`` fired in (None: no row left, or
        one written before the mode was kept)."""
        row = self._db.execute(
            "SELECT mode FROM triggers WHERE trigger_id = ? ORDER BY id LIMIT 1", (trigger_id,)
        ).fetchone()
        return None if row is None or row[0] is None else str(row[0])

    def pending_triggers(self) -> list[PendingTrigger]:
        rows = self._db.execute(
            f"SELECT {self._PENDING_COLS} FROM triggers WHERE status = 'pending' ORDER BY id"
        ).fetchall()
        return [PendingTrigger(*r) for r in rows]

    def mark_started(self, row_ids: Iterable[int]) -> None:
        self._db.executemany(
            "UPDATE triggers SET starts = starts + 1 WHERE id = ?", [(r,) for r in row_ids]
        )

    def mark_attempts(self, row_id: int, attempts: int) -> None:
        """Record the failed attempts of a still-pending trigger (counted across restarts)."""
        self._db.execute(
            "UPDATE triggers SET attempts = ? WHERE id = ? AND status = 'pending'",
            (attempts, row_id),
        )

    def mark_done(self, row_id: int, attempts: int, at: float) -> None:
        self._db.execute(
            "UPDATE triggers SET status = 'done', attempts = ?, dispatched_at = ? WHERE id = ?",
            (attempts, at, row_id),
        )

    def mark_dead(self, row_id: int, attempts: int, at: float, error: str) -> None:
        self._db.execute(
            "UPDATE triggers SET status = 'dead', attempts = ?, dispatched_at = ?, error = ? "
            "WHERE id = ?",
            (attempts, at, error, row_id),
        )

    def trigger_counts(self) -> dict[str, int]:
        rows = self._db.execute("SELECT status, count(*) FROM triggers GROUP BY status").fetchall()
        return {str(s): int(n) for s, n in rows}

    def prune_triggers(
        self, older_than: float, dead_older_than: float | None = None, limit: int = PRUNE_LIMIT
    ) -> int:
        """Delete ``done`` rows finished before ``older_than`` and ``dead`` rows given up
        before ``dead_older_than`` (kept when None), at most ``limit`` of each. Pending rows
        are never pruned."""
        pick = (
            "DELETE FROM triggers WHERE id IN (SELECT id FROM triggers "
            "WHERE status = ? AND dispatched_at < ? LIMIT ?)"
        )
        n = int(self._db.execute(pick, ("done", older_than, limit)).rowcount)
        if dead_older_than is not None:
            n += int(self._db.execute(pick, ("dead", dead_older_than, limit)).rowcount)
        return n

    def prune_dead_letters(self, older_than: float) -> int:
        cur = self._db.execute("DELETE FROM dead_letters WHERE at < ?", (older_than,))
        return cur.rowcount

    def prune_event_dead_letters(
        self, older_than: float, limit: int = PRUNE_LIMIT, keep_owed: bool = False
    ) -> int:
        """Delete at most ``limit`` rejected-event dead letters past retention (trigger ones
        are kept; ``keep_owed``: so is one still owing the dead-letter topic its record)."""
        cur = self._db.execute(
            "DELETE FROM dead_letters WHERE id IN (SELECT id FROM dead_letters "
            "WHERE kind != 'trigger' AND (? OR topic_record IS NULL) AND at < ? LIMIT ?)",
            (not keep_owed, older_than, limit),
        )
        return cur.rowcount

    def letters_owed(self, limit: int = 100) -> list[tuple[int, bytes]]:
        """Up to ``limit`` letters whose record the dead-letter topic is owed, oldest first:
        ``(id, record)``."""
        rows = self._db.execute(
            "SELECT id, topic_record FROM dead_letters WHERE topic_record IS NOT NULL "
            "ORDER BY id LIMIT ?",
            (limit,),
        ).fetchall()
        return [(int(i), bytes(r)) for i, r in rows]

    def letters_copied(self, ids: Iterable[int]) -> int:
        """The records of the letters ``ids`` went out (the caller's transaction)."""
        sql = (
            "UPDATE dead_letters SET topic_record = NULL WHERE id = ? AND topic_record IS NOT NULL"
        )
        return sum(self._db.execute(sql, (i,)).rowcount for i in ids)

    # ------------------------------------------------------------------ dead letters
    def dead_letter(
        self,
        kind: str,
        ref: str | None,
        reason: str,
        detail: str | None,
        payload: bytes | None,
        at: float,
        topic_record: bytes | None = None,
    ) -> bool:
        """Store a dead letter; False when the same one is stored already: same (kind, ref)
        and, but for a trigger's, same payload. Another payload under a taken ref is
        stored under another ref (:func:`~scoperouter.state.letter_refs.place`).
        ``topic_record``: what the dead-letter topic is owed (:meth:`letters_owed`)."""
        db = self._db

        def insert(r: str | None) -> bool:
            return (
                db.execute(
                    "INSERT OR IGNORE INTO dead_letters(kind, ref, reason, detail, payload, at, "
                    "topic_record) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (kind, r, reason, detail, payload, at, topic_record),
                ).rowcount
                > 0
            )

        def stored_payload(r: str) -> object:
            row = db.execute(
                "SELECT payload FROM dead_letters WHERE kind = ? AND ref = ?", (kind, r)
            ).fetchone()
            return letter_refs.MISSING if row is None else row[0]

        return letter_refs.place(kind, ref, payload, insert, stored_payload)

    def dead_letters(self) -> list[DeadLetter]:
        rows = self._db.execute(
            "SELECT id, kind, ref, reason, detail, payload, at, topic_record FROM dead_letters "
            "ORDER BY id"
        ).fetchall()
        return [DeadLetter(*r) for r in rows]

    # ------------------------------------------------------------------ hand-over
    def carry_rows(self, state: LegacyState, now: float) -> tuple[int, int, int, int, int]:
        """Write the rows of ``state`` (the per-window store's work: the closed loop turned
        on; its windows go into the snapshot) in the caller's transaction, by
        :func:`~scoperouter.state.legacy.carry_rows`."""
        return carry_rows(state, now, _Rows(self))

    # ------------------------------------------------------------------ meta
    def get_meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))


def now() -> float:
    """Wall-clock seconds (the windows' clock; persisted, so it must survive restarts)."""
    return time.time()


class _Rows:
    """:class:`~scoperouter.state.legacy.RowSink` on ``triggers``, ``seen`` and
    ``dead_letters`` (the caller's transaction)."""

    def __init__(self, store: Store) -> None:
        self.store, self.db = store, store._db

    def add_seen(self, event_id: str, at: float) -> bool:
        sql = "INSERT INTO seen(event_id, seen_at) VALUES (?, ?) ON CONFLICT DO NOTHING"
        return self.db.execute(sql, (event_id, at)).rowcount > 0

    def trigger_ids(self, dead: bool) -> set[str]:
        sql = "SELECT DISTINCT trigger_id FROM triggers WHERE status = ?"
        return {str(r[0]) for r in self.db.execute(sql, ("dead" if dead else "pending",))}

    def add_pending(self, t: legacy.PendingTrigger, due: float) -> None:
        self.db.execute(
            "INSERT INTO triggers(trigger_id, processor, body, attempts, created_at, "
            "available_at, mode) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (t.trigger_id, t.processor, t.body.decode(), t.attempts, t.created_at, due, t.mode),
        )

    def add_dead(self, d: DeadTrigger) -> int:
        rid = self.db.execute(
            "INSERT INTO triggers(trigger_id, processor, body, status, attempts, created_at, "
            "dispatched_at, error, mode) VALUES (?, ?, ?, 'dead', ?, ?, ?, ?, ?)",
            (d.trigger_id, d.processor, d.body.decode(), d.attempts, d.created_at,
             d.finished_at, d.error, d.mode),
        ).lastrowid  # fmt: skip
        assert rid is not None
        return rid

    def add_letter(self, d: DeadLetterIn) -> bool:
        return self.store.dead_letter(
            d.kind, d.ref, d.reason, d.detail, d.payload, d.at, d.topic_record
        )

    def has_unnamed(self, d: DeadLetterIn) -> bool:
        sql = "SELECT 1 FROM dead_letters WHERE kind = ? AND ref IS NULL AND reason = ? AND at = ?"
        return self.db.execute(sql, (d.kind, d.reason, d.at)).fetchone() is not None

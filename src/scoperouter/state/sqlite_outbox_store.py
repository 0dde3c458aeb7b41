"""The SQLite store's outbox, dead letters and completion ledger: the methods of
:class:`~scoperouter.state.sqlite.SqliteStateStore` that run the statements both stores
share (:data:`scoperouter.state.shared_sql.SQLITE`), apart from its ingest and windows.

Invariant: every method that writes is one ``BEGIN IMMEDIATE`` transaction of the store's
(``_tx``); one that only reads is one statement on the store's connection. A redrive
re-inserts its rows under new ids (:func:`scoperouter.state.sqlite_outbox.redrive_dead`),
never the shared in-place UPDATE: the done prune's rowid range relies on it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from contextlib import AbstractContextManager

from scoperouter.messages.models import Trigger
from scoperouter.state.model import (
    Completion,
    CompletionState,
    DeadLetter,
    DeadLetterIn,
    LaneClaim,
    LaneClaimed,
    Mark,
    OutboxItem,
    OutboxRow,
    StoreOptions,
)
from scoperouter.state.shared_sql import SQLITE
from scoperouter.state.sqlite_bulk import apply_marks
from scoperouter.state.sqlite_outbox import redrive_dead


class SqliteOutbox:
    """The outbox half of :class:`~scoperouter.state.sqlite.SqliteStateStore` (which gives
    the attributes and the method declared here)."""

    options: StoreOptions
    _db: sqlite3.Connection

    def _tx(self) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError

    # ------------------------------------------------------------------ outbox
    def claim(self, now: float, limit: int = 100) -> list[OutboxItem]:
        o = self.options
        with self._tx() as db:
            rows = db.execute(
                "UPDATE sr_outbox SET status = 'leased', lease_owner = ?, lease_until = ?, "
                "claims = claims + 1 WHERE id IN (SELECT id FROM sr_outbox WHERE "
                "status = 'pending' AND available_at <= ? ORDER BY available_at, id LIMIT ?) "
                "RETURNING id, body, attempts, claims, mode",
                (o.owner, now + o.lease_s, now, limit),
            ).fetchall()
        rows.sort()
        return [
            OutboxItem(r[0], Trigger.model_validate_json(r[1]), bytes(r[1]), r[2], r[3], r[4])
            for r in rows
        ]

    def extend_leases(self, item_ids: Sequence[int], now: float) -> frozenset[int]:
        until = now + self.options.lease_s
        with self._tx() as db:
            return SQLITE.extend(db, item_ids, lambda: until, self.options.owner)

    def apply_marks(self, marks: Sequence[Mark]) -> tuple[bool, ...]:
        with self._tx() as db:
            return tuple(apply_marks(db, marks, self.options.owner))

    def rescue_expired(self, now: float, *, all_leases: bool = False) -> int:
        with self._tx() as db:
            return SQLITE.rescue(db, now, all_leases)

    def claim_lanes(
        self, claims: Sequence[LaneClaim], marks: Sequence[Mark], now: float
    ) -> tuple[LaneClaimed, ...]:
        o = self.options
        with self._tx() as db:
            apply_marks(db, marks, o.owner)
            return SQLITE.claim_lanes(db, claims, o.owner, lambda: now + o.lease_s, now)

    def pending_processors(self, due_at: float = float("inf")) -> list[str]:
        return SQLITE.pending_processors(self._db, due_at)

    def pending_count(self) -> int:
        return SQLITE.pending_count(self._db)

    def live_backlog(self) -> dict[str, int]:
        return SQLITE.live_backlog(self._db)

    def work_by_processor(self) -> dict[str, tuple[int, int]]:
        return SQLITE.work_by_processor(self._db)

    def redrive_dead(self, now: float, processor: str | None = None) -> int:
        with self._tx() as db:  # under new ids: the done prune's bound (sqlite_outbox)
            return redrive_dead(db, now, processor)

    def discard_dead(self, processor: str | None = None) -> int:
        with self._tx() as db:
            return SQLITE.discard_dead(db, processor)

    def outbox_rows(self) -> list[OutboxRow]:
        return SQLITE.outbox_rows(self._db)

    def outbox_counts(self) -> dict[str, int]:
        return SQLITE.outbox_counts(self._db)

    # ------------------------------------------------------------------ dead letters
    def dead_letter(self, letter: DeadLetterIn) -> bool:
        with self._tx() as db:
            return SQLITE.dead_letter(db, letter)

    def dead_letters(self) -> list[DeadLetter]:
        return SQLITE.dead_letters(self._db)

    def letters_owed(self, limit: int = 100) -> list[tuple[int, bytes]]:
        return SQLITE.letters_owed(self._db, limit)

    def letters_copied(self, ids: Sequence[int]) -> int:
        with self._tx() as db:
            return SQLITE.letters_copied(db, ids)

    # ------------------------------------------------------------------ completion ledger
    def record_completion(self, trigger_id: str, state: CompletionState, at: float) -> None:
        with self._tx() as db:
            SQLITE.record_completion(db, trigger_id, state, at)

    def completion(self, trigger_id: str) -> Completion | None:
        return SQLITE.completion(self._db, trigger_id)

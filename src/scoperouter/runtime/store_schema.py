"""The snapshot + journal store's tables (:data:`SCHEMA`) and the rows it reads back.

Invariant: the DDL only creates what is missing (``IF NOT EXISTS``), so opening a store
written by an earlier version never changes or drops its data (the later columns,
``triggers.available_at``, ``triggers.mode`` and ``dead_letters.topic_record``, are added by
:meth:`.store_backlog.StoreBacklog._migrate_backlog`); the rows read back are frozen values.

Tables
------
``seen``            event ids already routed (idempotency), pruned after the dedup horizon.
``window_snapshot`` one row: the last :meth:`WindowBook.snapshot` (compaction point).
``window_journal``  every WindowBook input since that snapshot (``add`` with its event and
                    decision, ``due``/``flush`` with their time). Replaying the journal on
                    the restored snapshot rebuilds the exact in-memory book, because the
                    book is a pure state machine fed explicit times.
``triggers``        the outbox: a fired trigger is inserted (``pending``) in the same
                    transaction as the journal entry that fired it, *before* it is
                    dispatched, with the dispatch mode it fired in (``mode``: live or
                    shadow; NULL in rows written before), and marked ``done`` / ``dead``
                    afterwards.
``dead_letters``    rejected events and undeliverable triggers, with the reason; unique per
                    ``(kind, ref)``: an event's ref names its delivery
                    (``<subscription>#<message id>``, :func:`.ingest.event_ref`), and
                    another payload meeting a taken ref is stored under another one
                    (:mod:`scoperouter.state.letter_refs`): never dropped.
                    ``topic_record``: the record the dead-letter topic is still owed
                    (NULL: nothing is).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

# a dead letter has the same columns in this store and in the state stores: one row type
from scoperouter.state.model import DeadLetter as DeadLetter

if TYPE_CHECKING:
    from scoperouter.messages.models import Trigger

SyncMode = Literal["full", "normal"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS seen (
    event_id TEXT PRIMARY KEY,
    seen_at REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS seen_at_idx ON seen(seen_at);
CREATE TABLE IF NOT EXISTS window_snapshot (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    snapshot TEXT NOT NULL,
    taken_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS window_journal (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    op TEXT NOT NULL,
    now REAL NOT NULL,
    event TEXT,
    decision TEXT
);
CREATE TABLE IF NOT EXISTS triggers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    trigger_id TEXT NOT NULL,
    processor TEXT NOT NULL,
    body TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    dispatched_at REAL,
    starts INTEGER NOT NULL DEFAULT 0,
    error TEXT
);
CREATE INDEX IF NOT EXISTS triggers_pending_idx ON triggers(status) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS triggers_tid_idx ON triggers(trigger_id);
CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    ref TEXT,
    reason TEXT NOT NULL,
    detail TEXT,
    payload BLOB,
    at REAL NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS dead_letters_ref_idx ON dead_letters(kind, ref);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class PendingTrigger:
    """A trigger row not yet acknowledged by its target."""

    row_id: int
    trigger_id: str
    processor: str
    body: str
    starts: int  # how many times a dispatch was started before (0 = never)
    attempts: int = 0  # failed delivery attempts recorded so far (they survive restarts)
    created_at: float = 0.0  # when it fired (the retry horizon counts from here)
    # the dispatch mode it fired in, sent by it (None: a row written before the mode was
    # kept: the processor's mode at dispatch decides)
    mode: str | None = None
    # the body already parsed: a row fired by this process and held for a free slot
    # (Dispatcher.fired), not read back from the store
    trigger: Trigger | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class JournalEntry:
    seq: int
    op: str
    now: float
    event: str | None
    decision: str | None

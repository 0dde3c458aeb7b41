"""Schema of the embedded SQLite state store, versioned by ``PRAGMA user_version``, and
the store's connection.

Invariant: migrations are applied in order inside one ``BEGIN IMMEDIATE`` transaction at
open; a database at the latest version is left untouched (idempotent), and a database from
a newer scoperouter is refused rather than written.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path


def table_columns(db: sqlite3.Connection, table: str) -> set[str]:
    """The names of ``table``'s columns."""
    return {str(r[1]) for r in db.execute(f"PRAGMA table_info({table})")}


def add_columns(db: sqlite3.Connection, table: str, columns: dict[str, str]) -> None:
    """Add the ``columns`` (name: its ``ADD COLUMN`` definition) ``table`` lacks (a file
    written before them). Two processes opening the same file for the first time may both
    see a column missing: the one adding it second is told "duplicate column name", and
    goes on (the column is there)."""
    have = table_columns(db, table)
    for name, definition in columns.items():
        if name in have:
            continue
        try:
            db.execute(f"ALTER TABLE {table} ADD COLUMN {definition}")
        except sqlite3.OperationalError as exc:
            if "duplicate column name" not in str(exc):
                raise


MIGRATIONS: tuple[str, ...] = (
    # 1: per-window rows (replaces the snapshot + journal of runtime/store.py)
    """
    CREATE TABLE sr_seen (
        event_id TEXT PRIMARY KEY,
        seen_at REAL NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX sr_seen_at ON sr_seen(seen_at);
    CREATE TABLE sr_windows (
        processor TEXT NOT NULL,
        day TEXT NOT NULL,
        opened_at REAL NOT NULL,
        last_at REAL NOT NULL,
        deadline REAL NOT NULL,
        entity_ids TEXT,
        entity_type TEXT NOT NULL,
        date_reason TEXT,
        caused_by TEXT NOT NULL,
        correlation_id TEXT,
        priority TEXT NOT NULL,
        quiet_s REAL NOT NULL,
        max_wait_s REAL NOT NULL,
        max_entities INTEGER NOT NULL,
        PRIMARY KEY (processor, day)
    ) WITHOUT ROWID;
    CREATE INDEX sr_windows_deadline ON sr_windows(deadline);
    CREATE TABLE sr_outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        trigger_id TEXT NOT NULL,
        processor TEXT NOT NULL,
        body BLOB NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('pending', 'leased', 'done', 'dead')),
        attempts INTEGER NOT NULL DEFAULT 0,
        claims INTEGER NOT NULL DEFAULT 0,
        rescues INTEGER NOT NULL DEFAULT 0,
        created_at REAL NOT NULL,
        available_at REAL NOT NULL,
        lease_owner TEXT,
        lease_until REAL,
        finished_at REAL,
        error TEXT
    );
    CREATE INDEX sr_outbox_available ON sr_outbox(available_at, id) WHERE status = 'pending';
    CREATE INDEX sr_outbox_lease ON sr_outbox(lease_until) WHERE status = 'leased';
    CREATE INDEX sr_outbox_trigger ON sr_outbox(trigger_id);
    CREATE INDEX sr_outbox_finished ON sr_outbox(status, finished_at)
        WHERE status IN ('done', 'dead');
    CREATE TABLE sr_dead_letters (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL,
        ref TEXT,
        reason TEXT NOT NULL,
        detail TEXT,
        payload BLOB,
        at REAL NOT NULL
    );
    CREATE UNIQUE INDEX sr_dead_letters_ref ON sr_dead_letters(kind, ref);
    CREATE INDEX sr_dead_letters_at ON sr_dead_letters(at);
    CREATE TABLE sr_completions (
        trigger_id TEXT PRIMARY KEY,
        state TEXT NOT NULL,
        first_at REAL NOT NULL,
        last_at REAL NOT NULL,
        reports INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX sr_completions_last ON sr_completions(last_at);
    """,
    # 2: the dispatcher claims each target's backlog on its own (a lane), and expires
    # rows past the target's retry horizon
    """
    CREATE INDEX sr_outbox_lane ON sr_outbox(processor, available_at, id)
        WHERE status = 'pending';
    CREATE INDEX sr_outbox_lane_age ON sr_outbox(processor, created_at)
        WHERE status = 'pending';
    """,
    # 3: no statement looks an outbox row up by its trigger id; the index on it took one
    # random page per fired trigger into every commit (the WAL, the checkpoint)
    """
    DROP INDEX IF EXISTS sr_outbox_trigger;
    """,
    # 4: a window keeps at most CAUSED_BY_CAP cause ids and counts the rest (a hot
    # window's row was rewritten whole, every id of it, by every batch that touched it)
    """
    ALTER TABLE sr_windows ADD COLUMN caused_more INTEGER NOT NULL DEFAULT 0;
    """,
    # 5: new seen ids are staged in append order and folded into sr_seen in sorted runs
    # (state/sqlite_seen.py): a random id took one random sr_seen page into every commit
    """
    CREATE TABLE sr_seen_recent (
        event_id TEXT NOT NULL,
        seen_at REAL NOT NULL
    );
    """,
    # 6: no statement of SQLite's can use sr_outbox_finished (its query planner does not
    # see that ``status = 'done'`` implies the index's ``status IN ('done', 'dead')``: the
    # prunes scan the table, EXPLAIN QUERY PLAN), yet every Done mark inserted an entry into
    # it: ~2.6 of ~15 WAL pages per ingest commit (PostgreSQL uses its own; kept there)
    """
    DROP INDEX IF EXISTS sr_outbox_finished;
    """,
    # 7: the dispatch mode a trigger fired in, sent by it whatever the processor's mode is
    # when the row is dispatched (docs/rollout.md "Flip back"); NULL: a row written before
    # (the processor's mode at dispatch decides, as it did)
    """
    ALTER TABLE sr_outbox ADD COLUMN mode TEXT CHECK (mode IN ('live', 'shadow'));
    """,
    # 8: a window a contribution joined while its processor fired live fires live, whatever
    # its processor's mode is when it fires (docs/rollout.md "Flip back"); 0: a row written
    # before (it fires in its processor's mode then, as it did)
    """
    ALTER TABLE sr_windows ADD COLUMN live INTEGER NOT NULL DEFAULT 0;
    """,
    # 9: the record a dead letter still owes the dead-letter topic, kept until it went out
    # (retried by housekeeping, the letter never pruned before); NULL: nothing owed -- a
    # letter stored before, or with no topic configured (no row is rewritten)
    """
    ALTER TABLE sr_dead_letters ADD COLUMN topic_record BLOB;
    CREATE INDEX sr_dead_letters_owed ON sr_dead_letters(id) WHERE topic_record IS NOT NULL;
    """,
)


def migrate(db: sqlite3.Connection) -> int:
    """Bring ``db`` (autocommit connection) to the latest version; returns it."""
    db.execute("BEGIN IMMEDIATE")
    try:
        version = int(db.execute("PRAGMA user_version").fetchone()[0])
        if version > len(MIGRATIONS):
            raise RuntimeError(
                f"state database is at schema version {version}, newer than this "
                f"scoperouter ({len(MIGRATIONS)}): upgrade scoperouter"
            )
        for n, script in enumerate(MIGRATIONS[version:], start=version + 1):
            for stmt in script.split(";"):
                if stmt.strip():
                    db.execute(stmt)
            db.execute(f"PRAGMA user_version = {n}")
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    return len(MIGRATIONS)


def open_connection(
    path: Path, sync: str, wal_limit_bytes: int, statement_cache: int
) -> sqlite3.Connection:
    """An autocommit connection to ``path``, migrated: WAL mode, ``synchronous=sync``, no
    automatic checkpoint (the store's checkpointer thread does it), a restarted WAL cut
    back to ``wal_limit_bytes`` (``sqlite_checkpoint``: bounded WAL); closed again when any
    of it fails."""
    db = sqlite3.connect(
        str(path), isolation_level=None, check_same_thread=False, cached_statements=statement_cache
    )
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={sync.upper()}")
        db.execute("PRAGMA busy_timeout=5000")
        db.execute("PRAGMA wal_autocheckpoint=0")
        db.execute(f"PRAGMA journal_size_limit={int(wal_limit_bytes)}")
        migrate(db)
    except BaseException:
        db.close()
        raise
    return db

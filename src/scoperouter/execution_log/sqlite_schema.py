"""The SQLite execution log's tables and indexes (:data:`SCHEMA`) and the migration of a
log file created by an earlier version (:func:`_migrate`), both run when a log is opened.

Invariant: opening is idempotent and never touches a row: :data:`SCHEMA` creates only what
is missing, and what it and :func:`_migrate` drop are indexes no longer kept (a replacing
index is created first); :func:`_migrate` otherwise only adds columns and indexes, so a log
created by an earlier version is written and read as a new one
(``tests/execution_log/test_log_layout.py``); a table added since (the trigger reports) is
created by :data:`SCHEMA` when such a log is opened. The writer that fills these tables is
:mod:`.sqlite`.
"""

from __future__ import annotations

import sqlite3

from scoperouter.execution_log.api import (
    COMPLETIONS_TABLE,
    EVENTS_TABLE,
    LOG_TABLE,
    TRIGGER_REPORTS_TABLE,
)
from scoperouter.execution_log.rows import (
    COMPLETION_COLUMNS,
    EVENT_COLUMNS,
    LOG_COLUMNS,
    TRIGGER_REPORT_COLUMNS,
)
from scoperouter.execution_log.sqlite_fold import FOLDED_INDEX
from scoperouter.state.sqlite_schema import add_columns

SCHEMA_VERSION = 1

_INT = {
    "phase",
    "entities_requested",
    "entities_universe",
    "attempts",
    "entities_mapped",
    "records_processed",
    "entities_changed",
}
_REAL = {"latency_ms", "duration_s"}


def _coltype(c: str) -> str:
    return "INTEGER" if c in _INT else "REAL" if c in _REAL else "TEXT"


SQLITE_LOG_COLUMNS = (*LOG_COLUMNS, "fired_at")
"""The SQLite log table's columns: ``fired_at`` is set on folded rows only (see
:mod:`.sqlite_fold`)."""

# trigger reports are keyed by the trigger id alone (a backfill polls it, every 2 s a run):
# a random key, but one row per run whose completion names its trigger (not one per event;
# events naming no trigger write none); a second report of the same trigger is ignored
_TRIGGER_KEY = {"trigger_id": " PRIMARY KEY"}

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {LOG_TABLE} (
  {", ".join(f"{c} {_coltype(c)}" for c in SQLITE_LOG_COLUMNS)}
);
CREATE INDEX IF NOT EXISTS ix_log_unlinked ON {LOG_TABLE} (event_id)
  WHERE kind = 'decision' AND action = 'run' AND trigger_id IS NULL;
DROP INDEX IF EXISTS ix_log_event;
DROP INDEX IF EXISTS ix_log_proc_date;
CREATE TABLE IF NOT EXISTS {EVENTS_TABLE} (
  {", ".join(f"{c} TEXT" for c in EVENT_COLUMNS)}
);
CREATE TABLE IF NOT EXISTS {COMPLETIONS_TABLE} (
  {", ".join(f"{c} {_coltype(c)}" for c in COMPLETION_COLUMNS)}
);
CREATE INDEX IF NOT EXISTS ix_completion_proc_date ON {COMPLETIONS_TABLE} (processor, game_date);
CREATE TABLE IF NOT EXISTS {TRIGGER_REPORTS_TABLE} (
  {", ".join(f"{c} TEXT" + _TRIGGER_KEY.get(c, "") for c in TRIGGER_REPORT_COLUMNS)}
);
CREATE TABLE IF NOT EXISTS scoperouter_meta (key TEXT PRIMARY KEY, value TEXT);
"""
# dispatch rows' ids are unique (a log created before: its decision_id primary key), keyed
# by the trigger's fired_at first: a repeated outcome has the same fired_at and id, and new
# keys land at the index's right edge -- a key of the random id alone dirtied a page of the
# index per row, its cost growing with the log (bench: 0.009 -> 0.016 ms/event over 180k
# events, against 0.008 -> 0.011 keyed by time). NULL fired_at keys as '' (still unique).
# The id (row_values.dispatch_key) includes the outcome's dispatched_at: a redriven trigger
# failing again at the same attempt count has a key of its own. Rows written before kept
# their ids (opening never touches a row): their outcomes read back as they were, and no
# later outcome collides with them (every new id has the time in it); the index needs no
# change.
_DISPATCH_KEY = "ifnull(decided_at, '')"
# an event is kept once by its date and id (its redeliveries and replays carry both; a
# date range's row has its start date, '' when it has none). Keyed by the date first, new
# rows land in the part of the index of the dates being written: an index keyed by the
# random id alone (the events table's primary key until stop 45) had a random page of the
# whole log's ids dirtied per row, its cost growing with the log (bench/log_growth.py:
# 3.0 -> 10.4 us a row from 100,000 to 3,000,000 events). A log created with that key
# keeps it (opening never rebuilds a table) and gets no second index. Completions the same
# way: their ids are hashes of (processor, date, trigger) (rows.completion_row).
# (table, index, id column) of each table whose rows are kept once by (date, id):
_ONCE = (
    (EVENTS_TABLE, "ix_events_once", "event_id"),
    (COMPLETIONS_TABLE, "ix_completions_once", "completion_id"),
)
_DISPATCH_INDEX = (
    "CREATE UNIQUE INDEX IF NOT EXISTS ix_log_dispatch_at ON "
    f"{LOG_TABLE} ({_DISPATCH_KEY}, decision_id) WHERE kind = 'dispatch'"
)


def _migrate(conn: sqlite3.Connection) -> None:
    """Columns added since a log file was created (``skips``; the log's ``fired_at`` and
    ``ix_log_folded``: :mod:`.sqlite_fold`); the dispatch index keyed by
    fired_at and id (one keyed by the id alone is replaced; a log with the ``decision_id``
    primary key gets it too: the fill looks earlier outcomes up through it); the event-id
    index of every decision row replaced by ``ix_log_unlinked`` (created by :data:`SCHEMA`);
    the events' ``ix_events_once`` and the completions' ``ix_completions_once`` where their
    table has no primary key (``event_id``, ``completion_id``)."""
    add_columns(conn, EVENTS_TABLE, {c: f"{c} TEXT" for c in EVENT_COLUMNS})
    for table, index, key in _ONCE:
        if not any(r[5] for r in conn.execute(f"PRAGMA table_info({table})")):
            conn.execute(
                f"CREATE UNIQUE INDEX IF NOT EXISTS {index} ON {table} "
                f"(ifnull(game_date, ''), {key})"
            )
    add_columns(conn, LOG_TABLE, {"fired_at": "fired_at TEXT"})
    conn.execute(FOLDED_INDEX)
    indexes = {r[1] for r in conn.execute(f"PRAGMA index_list({LOG_TABLE})")}
    if "ix_log_dispatch_at" not in indexes:
        conn.execute(_DISPATCH_INDEX)  # before the old index goes: no moment without one
    for old in ("ix_log_dispatch_id", "ix_log_event_id"):  # keyed by random ids
        if old in indexes:
            conn.execute(f"DROP INDEX {old}")

"""Execution log: every decision, dispatch outcome and completion, for ``scoperouter report``.

Public API (stable; the daemon, replay and demo call it)::

    log = open_log(path)            # SqliteExecutionLog; DEFAULT_LOG_PATH by default
    ids = log.record_decisions(event, decisions, decided_at, registry=reg, relations=rel, as_of=d)
    log.record_dispatch(trigger, status="ok", attempts=1, latency_ms=12.5, dispatched_at=now)
    log.record_completion("player_game_summary", d, trigger_id=t, records_processed=3,
                          entities_changed=2, duration_s=0.4)
    log.flush(); log.close()

Writers share :class:`RowExecutionLog` (``execution_log.base``): it builds the rows
(``execution_log.rows``) and a subclass only stores them.

Readers return the same :class:`LogData` from either store::

    data = read_log(path, since=d)                                   # SQLite
    data = read_bigquery_log(bigquery_reader.default_client(), "proj.ds.pipeline_execution_log")
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from scoperouter.execution_log.api import (
    COMPLETIONS_TABLE,
    DEFAULT_LOG_PATH,
    EVENTS_TABLE,
    FAILED_STATUSES,
    LOG_TABLE,
    TRIGGER_REPORTS_TABLE,
    ExecutionLog,
    NullExecutionLog,
)
from scoperouter.execution_log.base import RowExecutionLog
from scoperouter.execution_log.bigquery import BigQueryExecutionLog, ExecutionLogError
from scoperouter.execution_log.bigquery_reader import read_bigquery_log
from scoperouter.execution_log.completions import CompletionReport, completion_from_event
from scoperouter.execution_log.reader import LogData, read_log
from scoperouter.execution_log.sqlite import SqliteExecutionLog


def open_log(
    path: str | Path | None = None,
    *,
    retention_s: float | None = None,
    clock: Callable[[], float] | None = None,
) -> SqliteExecutionLog:
    """The default SQLite log at ``path`` (``DEFAULT_LOG_PATH`` when None); creates it.
    ``retention_s``: prune rows older than that (None: keep everything), measured back from
    ``clock()`` (None: the wall clock)."""
    return SqliteExecutionLog(
        DEFAULT_LOG_PATH if path is None else path, retention_s=retention_s, clock=clock
    )


__all__ = [
    "COMPLETIONS_TABLE",
    "DEFAULT_LOG_PATH",
    "EVENTS_TABLE",
    "FAILED_STATUSES",
    "LOG_TABLE",
    "TRIGGER_REPORTS_TABLE",
    "BigQueryExecutionLog",
    "CompletionReport",
    "ExecutionLog",
    "ExecutionLogError",
    "LogData",
    "NullExecutionLog",
    "RowExecutionLog",
    "SqliteExecutionLog",
    "completion_from_event",
    "open_log",
    "read_bigquery_log",
    "read_log",
]

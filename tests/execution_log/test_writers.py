"""Every writer (SQLite, BigQuery, Null) builds its rows the same way (execution_log.base):
the same game day recorded into each yields the same rows, whatever the storage."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from logsupport import DAY, FakeInsertClient, completion, game_day_events

from scoperouter.execution_log import (
    COMPLETIONS_TABLE,
    EVENTS_TABLE,
    LOG_TABLE,
    BigQueryExecutionLog,
    ExecutionLog,
    NullExecutionLog,
    SqliteExecutionLog,
)
from scoperouter.execution_log.base import RowExecutionLog
from scoperouter.execution_log.reader import stored_log_rows
from scoperouter.execution_log.rows import (
    COMPLETION_COLUMNS,
    EVENT_COLUMNS,
    LIST_COLUMNS,
    LOG_COLUMNS,
)
from scoperouter.execution_log.simulate import record_stream
from scoperouter.processor_registry.compiled import CompiledRegistry
from scoperouter.processor_registry.relations import InMemoryRelations
from scoperouter.router.planner import plan

Rows = dict[str, list[dict[str, Any]]]
# columns a writer fills after the fact (SQLite links decisions to their trigger on flush;
# BigQuery leaves that to a view) or from the clock
LATE = {LOG_TABLE: {"trigger_id"}, EVENTS_TABLE: set(), COMPLETIONS_TABLE: {"reported_at"}}
COLUMNS = {
    LOG_TABLE: LOG_COLUMNS,
    EVENTS_TABLE: EVENT_COLUMNS,
    COMPLETIONS_TABLE: COMPLETION_COLUMNS,
}


class Client(FakeInsertClient):
    """insert_rows_json that keeps every row per table."""

    def __init__(self) -> None:
        self.rows: Rows = {}

    def insert(self, table: str, rows: list[dict[str, Any]], ids: list[str]) -> list[Any]:
        self.rows.setdefault(table.rsplit(".", 1)[-1], []).extend(json.loads(json.dumps(rows)))
        return []


def sqlite_rows(path: Path) -> Rows:
    db = sqlite3.connect(path)
    db.row_factory = sqlite3.Row
    try:
        out: Rows = {}
        for table in COLUMNS:
            out[table] = []
            stored = (
                stored_log_rows(db) if table == LOG_TABLE else db.execute(f"SELECT * FROM {table}")
            )
            for r in stored:
                row = dict(r)
                for c in LIST_COLUMNS & row.keys():
                    row[c] = (
                        json.loads(row[c]) if row[c] is not None else []
                    )  # BigQuery: [] for null
                out[table].append(row)
        return out
    finally:
        db.close()


def comparable(rows: Rows) -> dict[str, list[tuple[Any, ...]]]:
    """Each table's rows without the late columns, sorted."""
    return {
        t: sorted(
            tuple(json.dumps(r[c], sort_keys=True) for c in COLUMNS[t] if c not in LATE[t])
            for r in rows.get(t, [])
        )
        for t in COLUMNS
    }


@pytest.fixture(scope="module")
def recorded(
    tmp_path_factory: pytest.TempPathFactory,
    registry: CompiledRegistry,
    relations: InMemoryRelations,
) -> tuple[Rows, Rows]:
    """The synthetic game day (decisions, dispatches, completions) in SQLite and in BigQuery."""
    path = tmp_path_factory.mktemp("writers") / "l.sqlite"
    client = Client()
    for log in (
        SqliteExecutionLog(path),
        BigQueryExecutionLog(client, "p.d.pipeline_execution_log"),
    ):
        record_stream(log, registry, relations, game_day_events(), as_of=DAY, completion=completion)
        log.close()
    return sqlite_rows(path), client.rows


@pytest.mark.parametrize("table", [LOG_TABLE, EVENTS_TABLE, COMPLETIONS_TABLE])
def test_sqlite_and_bigquery_build_the_same_rows(recorded: tuple[Rows, Rows], table: str) -> None:
    """Both writers store the same rows per table (but for the columns filled late)."""
    sqlite, bigquery = recorded
    got = comparable(sqlite)[table]
    assert got, f"the game day writes {table}"
    assert got == comparable(bigquery)[table]


def test_null_log_returns_the_stored_decision_ids(
    recorded: tuple[Rows, Rows], registry: CompiledRegistry, relations: InMemoryRelations
) -> None:
    """NullExecutionLog returns exactly the decision ids the real writers store."""
    sqlite, _ = recorded
    null = NullExecutionLog()
    ids = [
        i
        for ev, at in game_day_events()
        for i in null.record_decisions(
            ev,
            plan(registry, relations, ev, DAY),
            at,
            registry=registry,
            relations=relations,
            as_of=DAY,
        )
    ]
    null.close()
    assert sorted(ids) == sorted(
        r["decision_id"] for r in sqlite[LOG_TABLE] if r["kind"] == "decision"
    )


@pytest.mark.parametrize("cls", [SqliteExecutionLog, BigQueryExecutionLog, NullExecutionLog])
def test_every_writer_is_a_row_log(cls: type[Any]) -> None:
    """Every writer shares the row-building base and satisfies the ExecutionLog protocol."""
    assert issubclass(cls, RowExecutionLog)
    assert issubclass(cls, ExecutionLog)

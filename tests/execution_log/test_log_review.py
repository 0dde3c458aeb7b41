"""Adversarial review of the execution log: what ``report`` and the readers answer about
an update stays true after redrives, redeliveries and retention."""

from __future__ import annotations

import logging
import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from logsupport import DAY, T0, FakeInsertClient, row_ids

from scoperouter.execution_log import (
    BigQueryExecutionLog,
    ExecutionLogError,
    SqliteExecutionLog,
    read_log,
)
from scoperouter.execution_log.base import RowExecutionLog
from scoperouter.execution_log.runs import build_runs
from scoperouter.messages.models import Event, Trigger
from scoperouter.processor_registry.compiled import CompiledRegistry
from scoperouter.processor_registry.relations import InMemoryRelations
from scoperouter.router.planner import plan


def _trigger(tid: str = "t-1") -> Trigger:
    return Trigger(
        trigger_id=tid, processor="player_game_summary", game_date=DAY, start_date=DAY,
        end_date=DAY, scope="date", reason="full_date", caused_by=("e1",),
        fired_at=T0 + timedelta(seconds=10),
    )  # fmt: skip


# (status, attempts, seconds after T0) of each outcome, in the order they happened; the
# run's final status. A dead trigger redriven (`outbox redrive`, `deadletters redrive`)
# starts again with a fresh attempt count (state/api.py redrive_dead).
REDRIVES = [
    ([("dead_letter", 3, 20), ("ok", 1, 600)], "ok"),
    ([("dead_letter", 5, 20), ("dead_letter", 2, 600)], "dead_letter"),
    ([("dead_letter", 2, 20), ("ok", 1, 600), ("dead_letter", 4, 30)], "ok"),
    ([("ok", 1, 20)], "ok"),
    ([("dead_letter", 1, 20), ("ok", 3, 600)], "ok"),
]


@pytest.mark.parametrize(("outcomes", "final"), REDRIVES)
def test_final_outcome_is_the_latest_not_the_most_attempted(
    tmp_path: Path, outcomes: list[tuple[str, int, int]], final: str
) -> None:
    """A redriven trigger's run has the status of its latest outcome, not its highest attempt."""
    path = tmp_path / "log.sqlite"
    with SqliteExecutionLog(path) as log:
        for status, attempts, s in outcomes:
            log.record_dispatch(
                _trigger(), status=status, attempts=attempts, latency_ms=1.0,
                dispatched_at=T0 + timedelta(seconds=s),
            )  # fmt: skip
            log.flush()
    runs, from_dispatches = build_runs(read_log(path))
    assert from_dispatches
    assert [(r.trigger_id, r.status) for r in runs] == [("t-1", final)]
    assert runs[0].failed is (final == "dead_letter")


class _SchemaClient(FakeInsertClient):
    """insert_rows_json as BigQuery answers it (insertAll, skipInvalidRows false): a batch
    holding a row the table rejects (``reject``: its id) inserts nothing; that row's error is
    ``invalid``, every other row's ``stopped``. ``down``: calls that fail transiently first."""

    def __init__(self, reject: str, down: int = 0) -> None:
        self.reject = reject
        self.down = down
        self.stored: dict[str, list[str]] = {}

    def insert(self, table: str, rows: list[dict[str, Any]], ids: list[str]) -> list[Any]:
        ids = row_ids(rows)  # the rows' own ids (insertIds may carry more)
        if self.down:
            self.down -= 1
            return [{"index": i, "errors": [{"reason": "backendError"}]} for i in range(len(ids))]
        if self.reject in ids:
            return [
                {"index": i, "errors": [{"reason": "invalid" if x == self.reject else "stopped",
                                         "message": "no such field: bogus"}]}
                for i, x in enumerate(ids)
            ]  # fmt: skip
        self.stored.setdefault(table, []).extend(ids)
        return []


def _bq_events(log: RowExecutionLog, registry: CompiledRegistry, rel: InMemoryRelations, n: int) -> None:  # fmt: skip
    for i in range(1, n + 1):
        e = Event.model_validate(
            {"event_id": f"e{i}", "source": "nba_raw.nbac_injury_report", "game_date": DAY,
             "affected_entities": {"players": [f"t0{i}p03"]}, "changed_fields": ["injury_status"]}
        )  # fmt: skip
        log.record_decisions(e, plan(registry, rel, e, DAY), T0, registry=registry, relations=rel)


def test_bigquery_invalid_row_is_dropped_counted_and_does_not_block_the_rest(
    registry: CompiledRegistry, relations: InMemoryRelations, caplog: pytest.LogCaptureFixture
) -> None:
    """A row BigQuery rejects as invalid is dropped with a count and a log line; its batch's other rows go."""
    client = _SchemaClient(reject="e2")
    log = BigQueryExecutionLog(client, "p.d.pipeline_execution_log")
    _bq_events(log, registry, relations, 3)
    with caplog.at_level(logging.ERROR):
        log.flush()
    assert client.stored["p.d.pipeline_execution_events"] == ["e1", "e3"]
    assert len(client.stored["p.d.pipeline_execution_log"]) > 0
    assert log.dropped == 1
    assert any("e2" in r.getMessage() and "no such field" in r.getMessage() for r in caplog.records)
    log.flush()  # nothing left to send, nothing sent twice
    assert client.stored["p.d.pipeline_execution_events"] == ["e1", "e3"]


def test_bigquery_transient_row_errors_keep_every_row(
    registry: CompiledRegistry, relations: InMemoryRelations
) -> None:
    """Row errors that are not ``invalid`` (a backend error) keep the batch for the next flush."""
    client = _SchemaClient(reject="none", down=1)
    log = BigQueryExecutionLog(client, "p.d.pipeline_execution_log")
    _bq_events(log, registry, relations, 2)
    with pytest.raises(ExecutionLogError):
        log.flush()
    log.flush()
    assert client.stored["p.d.pipeline_execution_events"] == ["e1", "e2"]
    assert log.dropped == 0


def test_bigquery_buffer_overflow_is_counted(
    registry: CompiledRegistry, relations: InMemoryRelations
) -> None:
    """Rows dropped because the buffer overflowed while BigQuery was down are counted."""
    client = _SchemaClient(reject="none", down=10)
    log = BigQueryExecutionLog(client, "p.d.pipeline_execution_log", max_buffer=2)
    _bq_events(log, registry, relations, 3)
    with pytest.raises(ExecutionLogError):
        log.flush()
    assert log.dropped >= 1  # one event row at least (and log rows past 2)


def test_sqlite_failed_flush_keeps_its_rows_for_the_next(
    tmp_path: Path, registry: CompiledRegistry, relations: InMemoryRelations
) -> None:
    """A flush that fails (disk full, locked) rolls back and keeps its rows: the next flush writes them."""
    path = tmp_path / "log.sqlite"
    log = SqliteExecutionLog(path)
    _bq_events(log, registry, relations, 2)
    log.record_dispatch(
        _trigger(),
        status="ok",
        attempts=1,
        latency_ms=1.0,
        dispatched_at=T0 + timedelta(seconds=20),
    )
    with sqlite3.connect(path) as c:  # the next insert fails as a full disk would
        c.execute(
            "CREATE TRIGGER boom BEFORE INSERT ON pipeline_execution_events "
            "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
        )
    with pytest.raises(sqlite3.DatabaseError):
        log.flush()
    with sqlite3.connect(path) as c:
        c.execute("DROP TRIGGER boom")
    log.close()
    data = read_log(path)
    assert [e.event.event_id for e in data.events] == ["e1", "e2"]
    assert {d.event_id for d in data.decisions} == {"e1", "e2"}
    assert [(x.trigger_id, x.dispatch_status) for x in data.dispatches] == [("t-1", "ok")]
    assert log.dropped == 0


def test_sqlite_failing_log_drops_past_max_buffer_counted(
    tmp_path: Path, registry: CompiledRegistry, relations: InMemoryRelations
) -> None:
    """A log that keeps failing keeps at most max_buffer rows; what it drops is counted."""
    path = tmp_path / "log.sqlite"
    log = SqliteExecutionLog(path, max_buffer=3)
    with sqlite3.connect(path) as c:
        c.execute(
            "CREATE TRIGGER boom BEFORE INSERT ON pipeline_execution_events "
            "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
        )
    _bq_events(log, registry, relations, 2)
    with pytest.raises(sqlite3.DatabaseError):
        log.flush()
    assert log.dropped > 0 and log._pending() == 0

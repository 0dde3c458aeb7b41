"""One row a log's database cannot take (a count past a 64-bit integer, a lone surrogate, a
value of no SQL or JSON type, a request BigQuery refuses whole) is dropped alone, counted and
logged with its ids; the rest of its flush is written and later flushes are not held back.
A failing disk or network still keeps every row for the next flush (here and
tests/execution_log/test_log_review.py)."""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from logsupport import DAY, T0, FakeInsertClient, row_ids

from scoperouter.execution_log import (
    BigQueryExecutionLog,
    ExecutionLogError,
    NullExecutionLog,
    SqliteExecutionLog,
)
from scoperouter.execution_log.base import RowExecutionLog
from scoperouter.messages.models import Event, Trigger
from scoperouter.processor_registry.compiled import CompiledRegistry
from scoperouter.processor_registry.relations import InMemoryRelations
from scoperouter.router.planner import plan

Poison = Callable[[RowExecutionLog, CompiledRegistry, InMemoryRelations], None]


def _record(
    log: RowExecutionLog,
    registry: CompiledRegistry,
    rel: InMemoryRelations,
    event_id: str,
    **extra: object,
) -> int:
    """One injury-report event and its decisions; how many decision rows it has."""
    e = Event.model_validate(
        {"event_id": event_id, "source": "nba_raw.nbac_injury_report", "game_date": DAY,
         "affected_entities": {"players": ["t01p03"]}, "changed_fields": ["injury_status"],
         **extra}
    )  # fmt: skip
    return len(
        log.record_decisions(e, plan(registry, rel, e, DAY), T0, registry=registry, relations=rel)
    )


def _completion(records: object) -> Poison:
    def poison(log: RowExecutionLog, _reg: CompiledRegistry, _rel: InMemoryRelations) -> None:
        log.record_completion(
            "player_game_summary", DAY, trigger_id="t-bad", records_processed=records,  # type: ignore[arg-type]
            entities_changed=1, duration_s=0.0,
        )  # fmt: skip

    return poison


def _report(log: RowExecutionLog, _reg: CompiledRegistry, _rel: InMemoryRelations) -> None:
    assert isinstance(log, SqliteExecutionLog)
    log.record_trigger_report("t-\udc00", "success", event_id="e-report")


def _event(log: RowExecutionLog, reg: CompiledRegistry, rel: InMemoryRelations) -> None:
    # an event row past the database's length limit (SQLITE_LIMIT_LENGTH, lowered here):
    # the row SQLite refuses, whatever the others
    assert isinstance(log, SqliteExecutionLog) and log._conn is not None
    log._conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, 20_000)
    _record(
        log,
        reg,
        rel,
        "e-bad",
        changed_fields=["injury_status"] + [f"f{i:05d}" for i in range(3000)],
    )


def _dispatch(log: RowExecutionLog, _reg: CompiledRegistry, _rel: InMemoryRelations) -> None:
    trigger = Trigger(
        trigger_id="t-disp", processor="player_game_summary", game_date=DAY, start_date=DAY,
        end_date=DAY, scope="date", reason="full_date", caused_by=("e-earlier",),
        fired_at=T0 + timedelta(seconds=10),
    )  # fmt: skip
    log.record_dispatch(
        trigger, status="failed", attempts=1, latency_ms=1.0,
        dispatched_at=T0 + timedelta(seconds=20), error="target said \udc00",
    )  # fmt: skip


def _events(path: Path) -> list[str]:
    with sqlite3.connect(path) as c:
        return [
            r[0] for r in c.execute("SELECT event_id FROM pipeline_execution_events ORDER BY rowid")
        ]


@pytest.mark.parametrize(
    ("poison", "dropped", "named", "error"),
    [
        (_completion(2**64), 1, "pipeline_execution_completions", "OverflowError"),
        (_completion(Decimal(3)), 1, "pipeline_execution_completions", "ProgrammingError"),
        (_report, 1, "e-report", "UnicodeEncodeError"),
        (_event, None, "e-bad", "DataError"),  # its decision rows go with it
        (_dispatch, 1, "t-disp", "UnicodeEncodeError"),
    ],
    ids=[
        "count-past-int64",
        "no-sql-type",
        "report-surrogate",
        "event-too-big",
        "dispatch-surrogate",
    ],
)
def test_sqlite_drops_only_the_row_it_cannot_store(
    tmp_path: Path,
    registry: CompiledRegistry,
    relations: InMemoryRelations,
    caplog: pytest.LogCaptureFixture,
    poison: Poison,
    dropped: int | None,
    named: str,
    error: str,
) -> None:
    """A row SQLite refuses for its value is dropped, counted and logged; its flush's other rows and later flushes are written."""
    path = tmp_path / "log.sqlite"
    log = SqliteExecutionLog(path)
    _record(log, registry, relations, "e1")
    poison(log, registry, relations)
    _record(log, registry, relations, "e2")
    with caplog.at_level(logging.ERROR):
        log.flush()  # does not raise: the database is fine
    assert _events(path) == ["e1", "e2"]
    if dropped is None:  # the event row and each of its decision rows
        dropped = 1 + _record(NullExecutionLog(), registry, relations, "e-bad")
    assert log.dropped == dropped
    msgs = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any(named in m and error in m for m in msgs), msgs
    _record(log, registry, relations, "e3")
    log.flush()  # nothing held back by the bad row
    assert _events(path) == ["e1", "e2", "e3"]
    assert log.dropped == dropped and log._pending() == 0
    log.close()


def test_sqlite_disk_error_while_isolating_keeps_every_row(
    tmp_path: Path, registry: CompiledRegistry, relations: InMemoryRelations
) -> None:
    """A disk error in the row-by-row pass rolls it back and keeps every row (the bad one too) for the next flush."""
    path = tmp_path / "log.sqlite"
    log = SqliteExecutionLog(path)
    _record(log, registry, relations, "e1")
    _completion(2**64)(log, registry, relations)
    log.record_trigger_report("t-1", "success", event_id="e1")  # written after completions
    with sqlite3.connect(path) as c:
        c.execute(
            "CREATE TRIGGER boom BEFORE INSERT ON pipeline_execution_trigger_reports "
            "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
        )
    with pytest.raises(sqlite3.DatabaseError):
        log.flush()
    assert _events(path) == [] and log.dropped == 0
    with sqlite3.connect(path) as c:
        c.execute("DROP TRIGGER boom")
    log.flush()
    assert _events(path) == ["e1"] and log.dropped == 1
    with sqlite3.connect(path) as c:
        assert c.execute("SELECT count(*) FROM pipeline_execution_trigger_reports").fetchone() == (
            1,
        )
        assert c.execute("SELECT count(*) FROM pipeline_execution_completions").fetchone() == (0,)
    log.close()


class _Client(FakeInsertClient):
    """insert_rows_json as the real client runs it: the request serialised to JSON first (a
    value of no JSON type raises TypeError; with ``allow_nan`` false, as ``requests`` does,
    NaN raises ValueError). ``down``: calls that fail as a network error first;
    ``bad_table``: every call raises ValueError as a malformed table id does."""

    def __init__(self, *, allow_nan: bool = True, down: int = 0, bad_table: bool = False) -> None:
        self.allow_nan, self.down, self.bad_table = allow_nan, down, bad_table
        self.stored: dict[str, list[str]] = {}

    def insert(self, table: str, rows: list[dict[str, Any]], ids: list[str]) -> list[Any]:
        ids = row_ids(rows)  # the rows' own ids (insertIds may carry more)
        if self.down:
            self.down -= 1
            raise ConnectionError("network down")
        if self.bad_table:
            raise ValueError(f"table_id must be a fully-qualified ID, got {table!r}")
        json.dumps({"rows": rows}, allow_nan=self.allow_nan)
        self.stored.setdefault(table.rsplit(".", 1)[-1], []).extend(ids)
        return []


def _bq_completion(duration: float) -> Poison:
    def poison(log: RowExecutionLog, _reg: CompiledRegistry, _rel: InMemoryRelations) -> None:
        log.record_completion(
            "player_game_summary", DAY, trigger_id="t-bad", records_processed=3,
            entities_changed=1, duration_s=duration,
        )  # fmt: skip

    return poison


@pytest.mark.parametrize(
    ("poison", "allow_nan", "error"),
    [
        (_completion(Decimal(3)), True, "TypeError"),
        (_bq_completion(float("nan")), False, "ValueError"),
    ],
    ids=["no-json-type", "nan-for-a-strict-client"],
)
@pytest.mark.parametrize("batch_size", [500, 2])
def test_bigquery_drops_only_the_row_it_cannot_send(
    registry: CompiledRegistry,
    relations: InMemoryRelations,
    caplog: pytest.LogCaptureFixture,
    poison: Poison,
    allow_nan: bool,
    error: str,
    batch_size: int,
) -> None:
    """A row the client cannot serialise is dropped, counted and logged; its batch's other rows and later flushes go."""
    client = _Client(allow_nan=allow_nan)
    log = BigQueryExecutionLog(client, "p.d.pipeline_execution_log", batch_size=batch_size)
    n = _record(log, registry, relations, "e1")
    log.record_completion(
        "player_game_summary", DAY, trigger_id="t-good", records_processed=3,
        entities_changed=1, duration_s=1.0,
    )  # fmt: skip
    poison(log, registry, relations)
    n += _record(log, registry, relations, "e2")
    with caplog.at_level(logging.ERROR):
        log.flush()  # does not raise: BigQuery is up
    assert client.stored["pipeline_execution_events"] == ["e1", "e2"]
    assert len(client.stored["pipeline_execution_log"]) == n
    assert len(client.stored["pipeline_execution_completions"]) == 1
    assert log.dropped == 1
    msgs = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("completion_id" in m and error in m for m in msgs), msgs
    _record(log, registry, relations, "e3")
    log.flush()  # nothing held back by the bad row
    assert client.stored["pipeline_execution_events"] == ["e1", "e2", "e3"]
    assert log.dropped == 1


@pytest.mark.parametrize(
    "client",
    [_Client(down=1), _Client(bad_table=True)],
    ids=["network-down", "data-error-for-every-row"],
)
def test_bigquery_keeps_every_row_unless_a_row_is_at_fault(
    registry: CompiledRegistry, relations: InMemoryRelations, client: _Client
) -> None:
    """A network error, or a data error no row of the batch causes (a bad table id), keeps the batch; nothing dropped."""
    log = BigQueryExecutionLog(client, "p.d.pipeline_execution_log")
    _record(log, registry, relations, "e1")
    with pytest.raises(ExecutionLogError):
        log.flush()
    assert log.dropped == 0
    client.bad_table = False
    log.flush()
    assert client.stored["pipeline_execution_events"] == ["e1"] and log.dropped == 0

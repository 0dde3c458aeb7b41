"""The BigQuery log keeps events and their decision rows as the SQLite log does: an event
once by its date and id (two events sharing an id but not a date are both kept, with all
their decision rows), a redelivery's decision rows never (SQLite writes none once the event
row is there), and no decision row is sent while its event row could not be."""

from __future__ import annotations

import tempfile
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from logsupport import DAY, T0, FakeInsertClient, game_day_events
from test_bigquery_reader import TABLE, FakeQueryClient, InsertRecorder, same_records
from test_log_fold import OUTCOMES, _event, _play, _trigger

from scoperouter.execution_log import BigQueryExecutionLog, ExecutionLogError, SqliteExecutionLog
from scoperouter.execution_log.api import ExecutionLog
from scoperouter.execution_log.bigquery_reader import read_bigquery_log
from scoperouter.execution_log.reader import read_log
from scoperouter.messages.models import Event
from scoperouter.processor_registry.compiled import CompiledRegistry
from scoperouter.processor_registry.relations import InMemoryRelations
from scoperouter.router.planner import plan

EVENTS = TABLE.rsplit(".", 1)[0] + ".pipeline_execution_events"


def _injury(player: str, day: date) -> Event:
    return Event.model_validate(
        {"event_id": "same-id", "source": "nba_raw.nbac_injury_report", "game_date": day,
         "affected_entities": {"players": [player]}, "changed_fields": ["injury_status"]}
    )  # fmt: skip


def _both(
    tmp_path: Path, write: Any, seed: int = 0
) -> tuple[Any, Any, InsertRecorder, list[list[str]]]:
    """``write`` run into a SQLite log and through the BigQuery writer: both read back, the
    recorder and the insertIds of each events-table request."""
    path = tmp_path / "l.sqlite"
    write(SqliteExecutionLog(path))
    rec = InsertRecorder()
    ids: list[list[str]] = []
    insert = rec.insert_rows_json

    def recording(table: Any, rows: Any, *, row_ids: Any = None) -> Any:
        if str(table) == EVENTS:
            ids.append(list(row_ids))
        return insert(table, rows, row_ids=row_ids)

    rec.insert_rows_json = recording  # type: ignore[method-assign]
    write(BigQueryExecutionLog(rec, TABLE))
    return read_log(path), read_bigquery_log(FakeQueryClient(rec.tables, seed), TABLE), rec, ids


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_two_events_sharing_an_id_on_two_dates_are_both_kept(
    tmp_path: Path, registry: CompiledRegistry, relations: InMemoryRelations, seed: int
) -> None:
    """Both events and every decision row of each read back as from SQLite, under two insertIds."""
    events = (_injury("t01p03", DAY), _injury("t02p01", DAY - timedelta(days=1)))

    def write(log: ExecutionLog) -> None:
        for i, e in enumerate(events):
            log.record_decisions(e, plan(registry, relations, e, DAY), T0 + timedelta(minutes=i),
                                 registry=registry, relations=relations, as_of=DAY)  # fmt: skip
        log.close()

    want, got, _rec, ids = _both(tmp_path, write, seed)
    assert len(want.events) == 2 and same_records(got, want)
    assert len({i for batch in ids for i in batch}) == 2


def test_redelivery_after_the_dedupe_horizon_adds_no_decision_rows(
    tmp_path: Path, registry: CompiledRegistry, relations: InMemoryRelations
) -> None:
    """Redelivered two days later (its plan reaching more dates), the event keeps its first rows only."""
    e = game_day_events()[0][0]

    def write(log: ExecutionLog) -> None:
        for k in (0, 2):
            as_of = DAY + timedelta(days=k)
            log.record_decisions(e, plan(registry, relations, e, as_of), T0 + timedelta(days=k),
                                 registry=registry, relations=relations, as_of=as_of)  # fmt: skip
            log.flush()
        log.close()

    want, got, _rec, _ids = _both(tmp_path, write)
    assert len(want.events) == 1 and same_records(got, want)


class _EventsDown(FakeInsertClient):
    """Stores what it is sent, but the events table fails while ``down``."""

    def __init__(self) -> None:
        self.tables: dict[str, list[dict[str, Any]]] = {}
        self.down = True

    def insert(self, table: str, rows: list[dict[str, Any]], ids: list[str]) -> list[Any]:
        if self.down and table == EVENTS:
            raise ConnectionError("events table: network down")
        self.tables.setdefault(table, []).extend(rows)
        return []


def test_no_decision_row_is_sent_while_its_event_row_fails(
    registry: CompiledRegistry, relations: InMemoryRelations
) -> None:
    """A flush whose events insert fails sends no log row; the next one sends both."""
    e = game_day_events()[0][0]
    client = _EventsDown()
    log = BigQueryExecutionLog(client, TABLE)
    log.record_decisions(e, plan(registry, relations, e, DAY), T0, registry=registry,
                         relations=relations, as_of=DAY)  # fmt: skip
    with pytest.raises(ExecutionLogError, match="not sent: the events table failed"):
        log.flush()
    assert client.tables == {}
    client.down = False
    log.close()
    got = read_bigquery_log(FakeQueryClient(client.tables, duplicates=0), TABLE)
    assert len(got.events) == 1 and got.decisions


@pytest.mark.parametrize("seed", range(4))
def test_a_repeated_outcome_reads_back_as_its_fuller_copy(
    registry: CompiledRegistry, relations: InMemoryRelations, seed: int
) -> None:
    """An outcome logged again after a restart (no registry facts) reads back as SQLite's copy, whatever the row order."""
    steps = [("e", 3), ("x", 3, 2, 0), ("||",), ("x", 3, 2, 0)]
    path = Path(tempfile.mkdtemp()) / "l.sqlite"
    _play(path, steps, registry, relations)
    rec = InsertRecorder()
    log = BigQueryExecutionLog(rec, TABLE)
    e = _event(3)
    log.record_decisions(e, plan(registry, relations, e, DAY), T0 + timedelta(seconds=3),
                         registry=registry, relations=relations)  # fmt: skip
    for restart in (False, True):
        if restart:
            log.close()
            log = BigQueryExecutionLog(rec, TABLE)
        status, attempts = OUTCOMES[0]
        log.record_dispatch(_trigger("x", 3, 2), status=status, attempts=attempts,
                            latency_ms=1.0, dispatched_at=T0 + timedelta(seconds=20))  # fmt: skip
    log.close()
    want = [x.entity_type for x in read_log(path).dispatches]
    got = read_bigquery_log(FakeQueryClient(rec.tables, seed=seed, duplicates=0), TABLE)
    assert want == ["player"] and [x.entity_type for x in got.dispatches] == want

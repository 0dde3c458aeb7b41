"""A redriven trigger (``deadletters redrive``: the same trigger, attempts counted from 1
again) that fails again logs outcomes whose trigger, status and attempt count repeat an
earlier one's, at another time: each is a row of its own -- in SQLite, folded or not,
across flushes and restarts and in a log created by an earlier version, and in BigQuery
with the same row ids -- while the very same outcome delivered twice (same time too) is
stored once."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from logsupport import DAY, T0
from test_bigquery_reader import TABLE, FakeQueryClient, InsertRecorder, same_records
from test_log_layout import LAYOUTS

import scoperouter.execution_log.sqlite_write as sqlite_write
from scoperouter.execution_log import BigQueryExecutionLog, SqliteExecutionLog, read_log
from scoperouter.execution_log.api import ExecutionLog
from scoperouter.execution_log.bigquery_reader import read_bigquery_log
from scoperouter.execution_log.reader import LogData
from scoperouter.execution_log.row_values import _sha20, ids_json
from scoperouter.execution_log.rows import LOG_COLUMNS, dispatch_row
from scoperouter.messages.models import Event, Trigger
from scoperouter.processor_registry.compiled import CompiledRegistry
from scoperouter.processor_registry.relations import InMemoryRelations
from scoperouter.router.planner import plan

# outcome letter -> (status, attempts, seconds after T0): a trigger retried then dead-lettered
# (r, a), redriven, retried and dead-lettered again at the same attempt counts (R, b)
OUTCOMES = {
    "r": ("retry", 1, 15),
    "a": ("dead_letter", 2, 20),
    "R": ("retry", 1, 615),
    "b": ("dead_letter", 2, 620),
}


def _event(i: int) -> Event:
    return Event.model_validate(
        {"event_id": f"e{i}", "source": "nba_raw.nbac_injury_report", "game_date": DAY,
         "affected_entities": {"players": [f"t0{i}p03"]}, "changed_fields": ["injury_status"]}
    )  # fmt: skip


def _trigger(kind: str) -> Trigger:
    """``d``: event 1's trigger (its outcomes may fold); ``n``: the same without fired_at;
    ``m``: caused by events 1 and 2 (never folded)."""
    return Trigger(
        trigger_id=f"t{kind}-1", processor="player_game_summary", game_date=DAY,
        start_date=DAY, end_date=DAY, scope="entities", entity_type="player",
        entity_ids=("t01p03",), reason="entity_scope",
        caused_by=("e1", "e2") if kind == "m" else ("e1",),
        fired_at=None if kind == "n" else T0 + timedelta(seconds=10),
    )  # fmt: skip


def _at(letter: str) -> datetime:
    return T0 + timedelta(seconds=OUTCOMES[letter][2])


def _play(
    open_log: Any, script: str, registry: CompiledRegistry, relations: InMemoryRelations
) -> None:
    """``script`` on the logs ``open_log()`` gives: ``eN`` event N's decisions, ``|`` a
    flush, ``||`` a new writer, ``<kind><letter>`` an outcome of :data:`OUTCOMES`."""
    log: ExecutionLog = open_log()
    try:
        for step in script.split():
            if step == "|":
                log.flush()
            elif step == "||":
                log.close()
                log = open_log()
            elif step[0] == "e":
                e = _event(int(step[1:]))
                log.record_decisions(
                    e, plan(registry, relations, e, DAY), T0, registry=registry,
                    relations=relations,
                )  # fmt: skip
            else:
                status, attempts, _s = OUTCOMES[step[1]]
                log.record_dispatch(
                    _trigger(step[0]), status=status, attempts=attempts, latency_ms=2.0,
                    dispatched_at=_at(step[1]),
                )  # fmt: skip
    finally:
        log.close()


def _outcomes(data: LogData) -> list[tuple[Any, ...]]:
    return sorted((x.dispatch_status, x.attempts, x.dispatched_at) for x in data.dispatches)


def _want(letters: str) -> list[tuple[Any, ...]]:
    return sorted((OUTCOMES[c][0], OUTCOMES[c][1], _at(c)) for c in letters)


@contextmanager
def _folding(on: bool) -> Iterator[None]:
    """The SQLite writer as it is (``on``) or one that never folds an outcome."""
    if on:
        yield
        return

    def never(rows: Any, log: Any, ids: Any) -> tuple[Any, list[Any]]:
        return rows, [x if isinstance(x, tuple) else x.row(ids) for x in log]

    with mock.patch.object(sqlite_write, "fold", never):
        yield


SCRIPTS = [
    ("e1 e2 da | db", "ab"),  # dead-lettered, redriven, dead again in a later flush
    ("e1 e2 da db", "ab"),  # ... in the same flush
    ("e1 e2 da || db", "ab"),  # ... after a restart
    ("e1 e2 dr da | dR db", "raRb"),  # the retries before each dead-lettering too
    ("e1 e2 dr da || dR db | dR db", "raRb"),  # ... the second run's outcomes delivered twice
    ("e1 e2 da | da", "a"),  # the very same outcome twice: one row
    ("e1 e2 da da || da", "a"),  # ... in one flush, then after a restart
    ("e1 e2 na | nb", "ab"),  # a trigger without fired_at
    ("e1 e2 na nb na", "ab"),
    ("e1 e2 ma || mb", "ab"),  # a trigger of two events (never folded)
    ("e1 e2 ma ma mb mb", "ab"),
]


@pytest.mark.parametrize("fold", [True, False], ids=["folding", "never-folding"])
@pytest.mark.parametrize(("script", "letters"), SCRIPTS)
def test_each_dead_lettering_is_a_row_and_a_repeat_is_not(
    tmp_path: Path,
    registry: CompiledRegistry,
    relations: InMemoryRelations,
    fold: bool,
    script: str,
    letters: str,
) -> None:
    """A table of redrive scripts: read_log gives one dispatch row per distinct outcome (trigger, status, attempts, time), ids unique."""
    path = tmp_path / "l.sqlite"
    with _folding(fold):
        _play(lambda: SqliteExecutionLog(path), script, registry, relations)
    data = read_log(path)
    assert _outcomes(data) == _want(letters)
    ids = [x.decision_id for x in data.dispatches]
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize(("script", "letters"), SCRIPTS)
def test_bigquery_rows_and_ids_are_the_sqlite_ones(
    tmp_path: Path,
    registry: CompiledRegistry,
    relations: InMemoryRelations,
    script: str,
    letters: str,
) -> None:
    """The BigQuery writer keys dispatch rows as SQLite does: the same outcomes read back with the same ids, a repeat sent under the same insertId."""
    path = tmp_path / "l.sqlite"
    _play(lambda: SqliteExecutionLog(path), script, registry, relations)
    rec = InsertRecorder()
    sent: list[tuple[str, str]] = []  # (insertId, kind) of every log row sent
    insert = rec.insert_rows_json

    def recording(table: Any, json_rows: Any, *, row_ids: Any = None) -> Any:
        if str(table) == TABLE:
            sent.extend(zip(row_ids, (r["kind"] for r in json_rows), strict=True))
        return insert(table, json_rows, row_ids=row_ids)

    rec.insert_rows_json = recording  # type: ignore[method-assign]
    _play(lambda: BigQueryExecutionLog(rec, TABLE), script, registry, relations)
    got, want = read_bigquery_log(FakeQueryClient(rec.tables), TABLE), read_log(path)
    assert same_records(got, want)
    assert _outcomes(got) == _want(letters)
    x_ids = {i for i, kind in sent if kind == "dispatch"}
    assert x_ids == {x.decision_id for x in want.dispatches}  # one insertId per outcome


@pytest.mark.parametrize("layout", [k for k in LAYOUTS if k != "new"])
def test_a_log_of_an_earlier_version_takes_the_redriven_outcomes(
    tmp_path: Path, registry: CompiledRegistry, relations: InMemoryRelations, layout: str
) -> None:
    """A log whose dispatch row an earlier version wrote (its id without the time) opens, keeps that row and adds the redriven trigger's outcomes once each."""
    path = tmp_path / "l.sqlite"
    with sqlite3.connect(path) as c:
        c.executescript(LAYOUTS[layout])
    _play(lambda: SqliteExecutionLog(path), "e1 e2", registry, relations)
    trigger, (status, attempts, _s) = _trigger("d"), OUTCOMES["a"]
    row = dispatch_row(
        trigger, status=status, attempts=attempts, latency_ms=2.0, dispatched_at=_at("a"),
        error=None, phase=3, granularity="player", universe=450, ids=ids_json,
    )  # fmt: skip
    old_id = _sha20(f"x-{trigger.trigger_id}|{status}|{attempts}")  # the earlier versions' id
    with sqlite3.connect(path) as c:
        c.execute(
            f"INSERT INTO pipeline_execution_log ({', '.join(LOG_COLUMNS)}) "
            f"VALUES ({', '.join('?' * len(LOG_COLUMNS))})",
            (old_id, *row[1:]),
        )
    _play(lambda: SqliteExecutionLog(path), "dR db | dR db || db", registry, relations)
    data = read_log(path)
    assert _outcomes(data) == _want("aRb")
    assert old_id in {x.decision_id for x in data.dispatches}  # the old row untouched

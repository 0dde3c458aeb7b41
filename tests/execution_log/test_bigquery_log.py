"""The BigQuery execution log: exact rows and batches sent, failure handling, DDL columns.

No BigQuery emulator runs here (bqemulator installs from PyPI but needs a DuckDB extension
downloaded at start-up), so the writer is tested with a recording client and, when
google-cloud-bigquery is installed, through the real client against a recording HTTP
session (the insertAll request bodies are asserted)."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from logsupport import DAY, T0, FakeInsertClient

from scoperouter.execution_log import BigQueryExecutionLog, ExecutionLogError, NullExecutionLog
from scoperouter.execution_log.row_values import event_from_row_json
from scoperouter.execution_log.rows import COMPLETION_COLUMNS, EVENT_COLUMNS, LOG_COLUMNS
from scoperouter.messages.models import Event, Trigger
from scoperouter.processor_registry.compiled import CompiledRegistry
from scoperouter.processor_registry.relations import InMemoryRelations
from scoperouter.router.planner import plan

REPO = Path(__file__).resolve().parents[2]
DDL = REPO / "sql" / "pipeline_execution_log.sql"


class RecordingClient(FakeInsertClient):
    """insert_rows_json that records (table, rows, row_ids) and fails on demand."""

    def __init__(self, fail: int = 0, row_errors: bool = False) -> None:
        self.calls: list[tuple[str, list[dict[str, Any]], list[str]]] = []
        self.fail = fail
        self.row_errors = row_errors

    def insert(self, table: str, rows: list[dict[str, Any]], ids: list[str]) -> list[Any]:
        if self.fail:
            self.fail -= 1
            raise ConnectionError("network down")
        json.dumps(rows)  # must be JSON-serialisable as sent
        self.calls.append((table, rows, ids))
        if self.row_errors:
            # transient (an 'invalid' row is dropped, not kept: test_log_review)
            return [{"index": 0, "errors": [{"reason": "backendError"}]}]
        return []


def event(i: int) -> Event:
    return Event.model_validate(
        {
            "event_id": f"e{i}",
            "source": "nba_raw.nbac_injury_report",
            "game_date": DAY,
            "affected_entities": {"players": ["t01p03"]},
            "changed_fields": ["injury_status"],
            "correlation_id": "c-1",
        }
    )


def test_rows_and_tables(registry: CompiledRegistry, relations: InMemoryRelations) -> None:
    """Decisions go to the log table, the event to the events table, with insertId = row id."""
    client = RecordingClient()
    log = BigQueryExecutionLog(client, "proj.ds.pipeline_execution_log", batch_size=500)
    e = event(1)
    ids = log.record_decisions(
        e, plan(registry, relations, e, DAY), T0, registry=registry, relations=relations
    )
    assert client.calls == []  # batched
    log.flush()
    tables = [c[0] for c in client.calls]
    assert tables == ["proj.ds.pipeline_execution_events", "proj.ds.pipeline_execution_log"]
    ev_rows, log_rows = client.calls[0][1], client.calls[1][1]
    assert ids == [r["decision_id"] for r in log_rows]
    # insertIds: a decision row's id and its decided_at, an event's date and id
    assert client.calls[1][2] == [f"{r['decision_id']}|{r['decided_at']}" for r in log_rows]
    assert client.calls[0][2] == [f"{r['game_date']}|{r['event_id']}" for r in ev_rows]
    assert set(log_rows[0]) == set(LOG_COLUMNS) and set(ev_rows[0]) == set(EVENT_COLUMNS)
    pgs = [r for r in log_rows if r["processor"] == "player_game_summary"]
    assert pgs == [
        {
            **pgs[0],
            "event_id": "e1",
            "correlation_id": "c-1",
            "phase": 3,
            "game_date": "2025-11-19",
            "action": "run",
            "scope": "entities",
            "entity_type": "player",
            "entities_requested": 1,
            "entities_universe": 450,
            "reason": "entity_scope",
            "trigger_id": None,
            "decided_at": "2025-11-19T15:00:00.000000+00:00",
            "kind": "decision",
            "entity_ids": ["t01p03"],
            "caused_by": [],
        }
    ]
    assert all(r["caused_by"] == [] for r in log_rows)  # REPEATED columns never null
    # not_an_input skips have no rows (a run has one row per date: the injury report's
    # game_date readers run on the next day too, routes.yaml `ahead`) ...
    logged = {r["processor"] for r in log_rows}
    assert len(logged) < len(registry.processor_names)
    assert json.loads(ev_rows[0]["skips"]) == {
        "not_an_input": len(registry.processor_names) - len(logged)
    }
    stored = ev_rows[0]["event_json"]  # event_id and source are columns, not repeated here
    assert '"event_id"' not in stored and '"source"' not in stored
    assert Event.model_validate_json(event_from_row_json(stored, "e1", e.source)) == e


def test_batches_split_at_batch_size(
    registry: CompiledRegistry, relations: InMemoryRelations
) -> None:
    """A full buffer is sent without waiting for flush, in batches of at most batch_size."""
    client = RecordingClient()
    e0 = event(0)
    n_proc = len(
        NullExecutionLog().record_decisions(
            e0, plan(registry, relations, e0, DAY), T0, registry=registry, relations=relations
        )
    )
    assert n_proc > 2  # rows per event
    log = BigQueryExecutionLog(client, "ds.pipeline_execution_log", batch_size=n_proc + 1)
    log.record_decisions(
        e0, plan(registry, relations, e0, DAY), T0, registry=registry, relations=relations
    )
    assert client.calls == []  # n_proc rows < batch_size
    e1 = event(1)
    log.record_decisions(
        e1, plan(registry, relations, e1, DAY), T0, registry=registry, relations=relations
    )
    assert [len(c[1]) for c in client.calls if c[0] == "ds.pipeline_execution_log"] == [
        n_proc + 1,
        n_proc - 1,
    ]
    e2 = event(2)
    log.record_decisions(
        e2, plan(registry, relations, e2, DAY), T0, registry=registry, relations=relations
    )
    log.close()
    log_calls = [c for c in client.calls if c[0] == "ds.pipeline_execution_log"]
    assert [len(c[1]) for c in log_calls] == [n_proc + 1, n_proc - 1, n_proc]
    sent = [r["decision_id"] for c in log_calls for r in c[1]]
    assert len(sent) == len(set(sent)) == 3 * n_proc


def test_dispatch_and_completion_rows(
    registry: CompiledRegistry, relations: InMemoryRelations
) -> None:
    """Dispatch rows carry the trigger and caused_by; completions go to their own table."""
    client = RecordingClient()
    log = BigQueryExecutionLog(client, "p.d.pipeline_execution_log")
    e = event(1)
    log.record_decisions(
        e, plan(registry, relations, e, DAY), T0, registry=registry, relations=relations
    )
    t = Trigger(
        trigger_id="t-1",
        processor="player_game_summary",
        game_date=DAY,
        start_date=DAY,
        end_date=DAY,
        scope="entities",
        entity_type="player",
        entity_ids=("t01p03",),
        reason="entity_scope",
        caused_by=("e1",),
        fired_at=T0 + timedelta(seconds=10),
    )
    log.record_dispatch(
        t, status="ok", attempts=1, latency_ms=12.0, dispatched_at=T0 + timedelta(seconds=11)
    )
    log.record_completion(
        "player_game_summary",
        DAY,
        trigger_id="t-1",
        records_processed=1,
        entities_changed=1,
        duration_s=0.5,
    )
    log.flush()
    disp = [r for c in client.calls for r in c[1] if r.get("kind") == "dispatch"]
    assert [
        (
            r["trigger_id"],
            r["caused_by"],
            r["dispatch_status"],
            r["entities_universe"],
            r["decided_at"],
        )
        for r in disp
    ] == [("t-1", ["e1"], "ok", 450, "2025-11-19T15:00:10.000000+00:00")]
    comp = [c for c in client.calls if c[0] == "p.d.pipeline_execution_completions"]
    assert len(comp) == 1 and set(comp[0][1][0]) == set(COMPLETION_COLUMNS)


@pytest.mark.parametrize(("fail", "row_errors"), [(1, False), (0, True)])
def test_failed_insert_keeps_rows(
    registry: CompiledRegistry, relations: InMemoryRelations, fail: int, row_errors: bool
) -> None:
    """A failed batch raises ExecutionLogError and is sent again by the next flush."""
    client = RecordingClient(fail=fail, row_errors=row_errors)
    log = BigQueryExecutionLog(client, "p.d.pipeline_execution_log")
    e = event(1)
    log.record_decisions(
        e, plan(registry, relations, e, DAY), T0, registry=registry, relations=relations
    )
    with pytest.raises(ExecutionLogError):
        log.flush()
    client.row_errors = False
    log.flush()
    ids = [r["event_id"] for c in client.calls if c[0].endswith("_events") for r in c[1]]
    assert ids[-1] == "e1"
    want = len(
        NullExecutionLog().record_decisions(
            e, plan(registry, relations, e, DAY), T0, registry=registry, relations=relations
        )
    )
    assert sum(len(c[1]) for c in client.calls if c[0].endswith("_log")) >= want > 0


def _ddl_columns(table: str) -> list[str]:
    text = DDL.read_text(encoding="utf-8")
    m = re.search(r"CREATE TABLE IF NOT EXISTS `[^`]*\." + table + r"` \((.*?)\n\)", text, re.S)
    assert m, table
    return [line.split()[0] for line in m.group(1).strip().splitlines() if line.strip()]


@pytest.mark.parametrize(
    ("table", "columns"),
    [
        ("pipeline_execution_log", LOG_COLUMNS),
        ("pipeline_execution_events", EVENT_COLUMNS),
        ("pipeline_execution_completions", COMPLETION_COLUMNS),
    ],
)
def test_ddl_matches_rows(table: str, columns: tuple[str, ...]) -> None:
    """The shipped DDL declares exactly the columns the writers send, in order."""
    assert _ddl_columns(table) == list(columns)


def test_ddl_partitioning() -> None:
    """The log is partitioned by game_date and clustered by processor, correlation_id."""
    text = DDL.read_text(encoding="utf-8")
    block = text.split("pipeline_execution_log` (", 1)[1].split("pipeline_execution_events", 1)[0]
    assert "PARTITION BY game_date" in block and "CLUSTER BY processor, correlation_id" in block


def test_real_client_payload(registry: CompiledRegistry, relations: InMemoryRelations) -> None:
    """Through google-cloud-bigquery, the insertAll bodies carry our rows and insertIds."""
    bigquery = pytest.importorskip("google.cloud.bigquery")
    from google.auth.credentials import AnonymousCredentials

    class Resp:
        status_code = 200
        headers = {"content-type": "application/json"}
        request = None

        def __init__(self) -> None:
            self.content = b'{"kind": "bigquery#tableDataInsertAllResponse"}'
            self.text = self.content.decode()

        def json(self) -> Any:
            return json.loads(self.content)

    class Session:
        is_mtls = False

        def __init__(self) -> None:
            self.calls: list[tuple[str, str, Any]] = []

        def request(self, method: str, url: str, data: Any = None, **_kw: Any) -> Resp:
            self.calls.append((method, url, json.loads(data)))
            return Resp()

    session = Session()
    client = bigquery.Client(
        project="proj",
        credentials=AnonymousCredentials(),
        _http=session,
        client_options={"api_endpoint": "http://127.0.0.1:9"},
    )
    log = BigQueryExecutionLog(client, "proj.ds.pipeline_execution_log")
    e = event(1)
    ids = log.record_decisions(
        e, plan(registry, relations, e, DAY), T0, registry=registry, relations=relations
    )
    log.close()
    urls = [u.split("?")[0] for _m, u, _d in session.calls]
    assert urls == [
        "http://127.0.0.1:9/bigquery/v2/projects/proj/datasets/ds/tables/pipeline_execution_events/insertAll",
        "http://127.0.0.1:9/bigquery/v2/projects/proj/datasets/ds/tables/pipeline_execution_log/insertAll",
    ]
    body = session.calls[1][2]
    assert [r["insertId"] for r in body["rows"]] == [
        f"{i}|{r['json']['decided_at']}" for i, r in zip(ids, body["rows"], strict=True)
    ]
    assert {r["json"]["event_id"] for r in body["rows"]} == {"e1"}

"""Reading the BigQuery execution log (``report --bigquery``): the same records and the same
report as the SQLite log written from the same inputs; table ids, query parameters, errors.

No BigQuery runs here. The rows are the ones :class:`BigQueryExecutionLog` sends
(``insert_rows_json``, recorded), typed as BigQuery returns them (TIMESTAMP -> aware
datetime, DATE -> date, REPEATED -> list; column types from ``sql/``), in no particular
order and with streaming duplicates. One test goes through google-cloud-bigquery's own
client against a recording HTTP session to check the query request and the value types."""

from __future__ import annotations

import json
import random
import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from logsupport import DAY, T0, FakeInsertClient, completion, game_day_events

from scoperouter.cli import main
from scoperouter.errors import ScopeRouterError
from scoperouter.execution_log import BigQueryExecutionLog, ExecutionLogError, SqliteExecutionLog
from scoperouter.execution_log import bigquery_reader as bqr
from scoperouter.execution_log import rows as rows_mod
from scoperouter.execution_log.api import ExecutionLog
from scoperouter.execution_log.bigquery_reader import QueryParam, read_bigquery_log, select_sql
from scoperouter.execution_log.reader import LogData, LogInvalidError, LogRow, read_log
from scoperouter.execution_log.rows import COMPLETION_COLUMNS, EVENT_COLUMNS, LOG_COLUMNS
from scoperouter.execution_log.simulate import record_stream
from scoperouter.messages.models import Trigger
from scoperouter.processor_registry.compiled import CompiledRegistry
from scoperouter.processor_registry.relations import InMemoryRelations
from scoperouter.router.planner import plan

REPO = Path(__file__).resolve().parents[2]
DDL = REPO / "sql" / "pipeline_execution_log.sql"
TABLE = "my-project.nba_orchestration.pipeline_execution_log"


def ddl_types() -> dict[str, dict[str, str]]:
    """{table: {column: BigQuery type}} from the DDL."""
    out: dict[str, dict[str, str]] = {}
    for name, body in re.findall(
        r"CREATE TABLE IF NOT EXISTS `[^`]*\.(\w+)` \((.*?)\n\)", DDL.read_text(), re.S
    ):
        out[name] = dict(
            re.findall(
                r"^\s+(\w+)\s+(ARRAY<STRING>|STRING|INT64|FLOAT64|DATE|TIMESTAMP)(?=[\s,]|$)",
                body,
                re.M,
            )
        )
    return out


TYPES = ddl_types()


def as_bigquery(value: Any, bq_type: str) -> Any:
    """A value as sent in insert_rows_json, as the BigQuery client returns it."""
    if value is None:
        return [] if bq_type.startswith("ARRAY") else None
    return {
        "TIMESTAMP": lambda v: datetime.fromisoformat(v).astimezone(UTC),
        "DATE": date.fromisoformat,
        "ARRAY<STRING>": lambda v: [str(x) for x in v],
        "INT64": int,
        "FLOAT64": float,
        "STRING": str,
    }[bq_type](value)


class InsertRecorder(FakeInsertClient):
    """insert_rows_json that keeps the rows as sent (through JSON, like the wire)."""

    def __init__(self) -> None:
        self.tables: dict[str, list[dict[str, Any]]] = {}

    def insert(self, table: str, rows: list[dict[str, Any]], ids: list[str]) -> list[Any]:
        self.tables.setdefault(table, []).extend(json.loads(json.dumps(rows)))
        return []


_BY_ID_COLUMN = {
    "decision_id": "pipeline_execution_log",
    "event_id": "pipeline_execution_events",
    "completion_id": "pipeline_execution_completions",
}
_SELECT = re.compile(
    r"SELECT (?P<cols>[a-z_]+(?:, [a-z_]+)*) FROM `(?P<table>[^`]+)`(?P<where> WHERE game_date >= @since)?"
)


@dataclass
class FakeQueryClient:
    """Serves the recorded rows typed as BigQuery returns them, shuffled, with some rows
    delivered twice (streaming insertId deduplication is best effort)."""

    recorded: dict[str, list[dict[str, Any]]]
    seed: int = 0
    duplicates: int = 3
    fail: Exception | None = None
    calls: list[tuple[str, list[QueryParam]]] = field(default_factory=list)

    def run_query(self, sql: str, params: Sequence[QueryParam]) -> Iterable[dict[str, Any]]:
        self.calls.append((sql, list(params)))
        if self.fail is not None:
            raise self.fail
        m = _SELECT.fullmatch(sql)
        assert m is not None, sql
        cols = m["cols"].split(", ")
        types = TYPES[_BY_ID_COLUMN[cols[0]]]
        rows = [
            {c: as_bigquery(r[c], types[c]) for c in cols}
            for r in self.recorded.get(m["table"], [])
        ]
        if m["where"]:
            assert [(p.name, p.type) for p in params] == [("since", "DATE")]
            since = params[0].value
            rows = [r for r in rows if r["game_date"] is not None and r["game_date"] >= since]
        else:
            assert not params
        rng = random.Random(self.seed)
        rows += [dict(r) for r in rng.sample(rows, min(self.duplicates, len(rows)))]
        rng.shuffle(rows)
        return rows


class Clock(datetime):
    """datetime whose now() ticks one second per call from T0 (completion reported_at)."""

    ticks = 0

    @classmethod
    def now(cls, tz: Any = None) -> Clock:
        cls.ticks += 1
        t = T0 + timedelta(hours=6, seconds=cls.ticks)
        return cls.fromtimestamp(t.timestamp(), tz)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> type[Clock]:
    monkeypatch.setattr(rows_mod, "datetime", Clock)
    return Clock


def record(
    log: ExecutionLog,
    registry: CompiledRegistry,
    relations: InMemoryRelations,
    clock: type[Clock],
    with_completions: bool = True,
) -> None:
    """The synthetic game day into ``log``, the same rows (and completion times) every time."""
    clock.ticks = 0
    record_stream(
        log,
        registry,
        relations,
        game_day_events(),
        as_of=DAY,
        completion=completion if with_completions else None,
    )
    log.close()


@dataclass
class Logs:
    sqlite: Path
    bigquery: dict[str, list[dict[str, Any]]]


@pytest.fixture
def logs(
    tmp_path: Path, registry: CompiledRegistry, relations: InMemoryRelations, clock: type[Clock]
) -> Logs:
    """The game day written once to SQLite and once through the BigQuery writer."""
    path = tmp_path / "execution_log.sqlite"
    record(SqliteExecutionLog(path), registry, relations, clock)
    rec = InsertRecorder()
    record(BigQueryExecutionLog(rec, TABLE, batch_size=7), registry, relations, clock)
    return Logs(path, rec.tables)


def same_records(got: LogData, want: LogData) -> bool:
    """Equal records, in the same order except among log rows of one ``decided_at`` (SQLite
    keeps those in insertion order, which BigQuery does not have)."""

    def canonical(rows: tuple[LogRow, ...]) -> list[LogRow]:
        return sorted(
            rows, key=lambda r: (r.decided_at is not None, r.decided_at or T0, r.decision_id)
        )

    return (
        [r.decided_at for r in got.decisions + got.dispatches]
        == [r.decided_at for r in want.decisions + want.dispatches]
        and canonical(got.decisions) == canonical(want.decisions)
        and canonical(got.dispatches) == canonical(want.dispatches)
        and (got.completions, got.events) == (want.completions, want.events)
    )


def test_recorded_rows_cover_every_table(logs: Logs) -> None:
    """The BigQuery writer sent rows to all three tables, of every kind the reader parses back."""
    tables = {t.rsplit(".", 1)[1]: rows for t, rows in logs.bigquery.items()}
    assert (
        set(tables)
        == set(TYPES)
        == {"pipeline_execution_log", "pipeline_execution_events", "pipeline_execution_completions"}
    )
    for name, cols in (
        ("pipeline_execution_log", LOG_COLUMNS),
        ("pipeline_execution_events", EVENT_COLUMNS),
        ("pipeline_execution_completions", COMPLETION_COLUMNS),
    ):
        assert (
            set(TYPES[name]) == set(cols) == set(tables[name][0])
        )  # every column typed from the DDL
    log_rows = tables["pipeline_execution_log"]
    assert {r["kind"] for r in log_rows} == {"decision", "dispatch"}
    assert {r["action"] for r in log_rows} == {"run", "dispatch"}  # skips: counts on events
    assert any(r["skips"] for r in tables["pipeline_execution_events"])
    assert {r["scope"] for r in log_rows} >= {"entities", "date"}
    assert any(r["entity_ids"] for r in log_rows) and any(r["caused_by"] for r in log_rows)


@pytest.mark.parametrize("since", [None, DAY - timedelta(days=1), DAY, DAY + timedelta(days=30)])
@pytest.mark.parametrize("seed", [0, 1])
def test_same_records_as_sqlite(logs: Logs, since: date | None, seed: int) -> None:
    """Whatever order BigQuery returns, with duplicates, the records equal the SQLite reader's."""
    got = read_bigquery_log(FakeQueryClient(logs.bigquery, seed=seed), TABLE, since=since)
    want = read_log(logs.sqlite, since=since)
    assert same_records(got, want)
    assert got.empty == (since == DAY + timedelta(days=30))
    if not got.empty:
        assert any(d.trigger_id for d in got.decisions)  # the decision -> trigger link was rebuilt


@pytest.mark.parametrize(
    "options",
    [
        [],
        ["--since", DAY.isoformat()],
        ["--what-if", "max_entities=50", "window.quiet=60s"],
    ],
    ids=["all", "since", "what-if"],
)
def test_report_json_equal(
    logs: Logs,
    config_path: Path,
    tmp_path: Path,
    options: list[str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """report --bigquery gives the same --json output and --html page as --log on the same inputs."""
    projects: list[str | None] = []

    def client(project: str | None = None) -> FakeQueryClient:
        projects.append(project)
        return FakeQueryClient(logs.bigquery)

    monkeypatch.setattr(bqr, "default_client", client)
    common = ["--config", str(config_path), "--json", *options]
    assert (
        main(["report", "--log", str(logs.sqlite), *common, "--html", str(tmp_path / "a.html")])
        == 0
    )
    want = json.loads(capsys.readouterr().out)
    assert main(["report", "--bigquery", TABLE, *common, "--html", str(tmp_path / "b.html")]) == 0
    got = json.loads(capsys.readouterr().out)
    assert projects == ["my-project"]
    assert (got.pop("log"), want.pop("log")) == (TABLE, str(logs.sqlite))
    assert got == want and want["summary"]["runs"] > 0
    assert (tmp_path / "b.html").read_text(encoding="utf-8") == (tmp_path / "a.html").read_text(
        encoding="utf-8"
    )


def test_dispatch_logged_by_another_process(
    tmp_path: Path, registry: CompiledRegistry, relations: InMemoryRelations
) -> None:
    """A dispatch row logged without its decisions is filled and linked from them, as in SQLite."""
    e = game_day_events()[5][0]  # the schedule: date-scope runs of entity-granular processors
    decisions = plan(registry, relations, e, DAY)
    d = next(
        x
        for x in decisions
        if x.action == "run"
        and x.scope == "date"
        and not registry.processors[x.processor].is_date_granularity
    )
    t = Trigger(
        trigger_id="t-1",
        processor=d.processor,
        game_date=DAY,
        start_date=DAY,
        end_date=DAY,
        scope="date",
        reason=d.reason,
        caused_by=(e.event_id,),
        fired_at=T0,
    )

    def write(decider: Any, dispatcher: Any) -> None:
        decider.record_decisions(
            e, decisions, T0, registry=registry, relations=relations, as_of=DAY
        )
        decider.close()
        dispatcher.record_dispatch(
            t, status="ok", attempts=1, latency_ms=3.0, dispatched_at=T0 + timedelta(seconds=1)
        )
        dispatcher.close()

    path = tmp_path / "log.sqlite"
    write(SqliteExecutionLog(path), SqliteExecutionLog(path))
    rec = InsertRecorder()
    write(BigQueryExecutionLog(rec, TABLE), BigQueryExecutionLog(rec, TABLE))
    sent = next(r for r in rec.tables[TABLE] if r["kind"] == "dispatch")
    assert (sent["phase"], sent["entities_universe"]) == (None, None)  # as written: incomplete
    got = read_bigquery_log(FakeQueryClient(rec.tables), TABLE)
    assert same_records(got, read_log(path))
    x = got.dispatches[0]
    assert x.phase is not None and x.granularity is not None and x.entities_universe is not None
    assert x.entities_requested == x.entities_universe
    assert [
        r.trigger_id for r in got.decisions if r.processor == d.processor and r.action == "run"
    ] == ["t-1"]


@pytest.mark.parametrize(
    ("table", "ok"),
    [
        (TABLE, True),
        ("abcdef.d.t", True),
        ("proj-123.Dataset_1.My_Log_2", True),
        ("nba_orchestration.pipeline_execution_log", False),  # no project
        ("pipeline_execution_log", False),
        ("abc.ds.t", False),  # project id too short
        ("Proj-ect.ds.t", False),  # upper case project
        ("1project.ds.t", False),  # project starts with a digit
        ("project-.ds.t", False),  # project ends with a hyphen
        ("example.com:proj.ds.t", False),  # domain-scoped projects are refused
        ("proj12.ds.t.extra", False),
        ("proj12.ds.t`; DROP TABLE x; --", False),
        ("proj12.ds.t WHERE 1=1", False),
        ("proj12.d-s.t", False),
        ("proj12.ds.", False),
        ("proj12..t", False),
        ("proj12.ds.t\n", False),
        ("", False),
    ],
)
def test_table_id_validation(table: str, ok: bool) -> None:
    """Only strict PROJECT.DATASET.TABLE ids are accepted; anything else is refused before a query."""
    client = FakeQueryClient({})
    if ok:
        assert read_bigquery_log(client, table).empty
        assert len(client.calls) == 3
    else:
        with pytest.raises(ExecutionLogError, match="invalid BigQuery table id"):
            read_bigquery_log(client, table)
        assert client.calls == []


@pytest.mark.parametrize("since", [None, date(2025, 11, 18)])
def test_sql_uses_parameters(since: date | None) -> None:
    """Each table is read with its columns listed; --since is a DATE parameter, never SQL text."""
    client = FakeQueryClient({})
    read_bigquery_log(client, TABLE, since=since)
    prefix = "my-project.nba_orchestration."
    assert [sql for sql, _ in client.calls] == [
        f"SELECT {', '.join(cols)} FROM `{prefix}{name}`"
        + (" WHERE game_date >= @since" if since else "")
        for name, cols in (
            ("pipeline_execution_log", LOG_COLUMNS),
            ("pipeline_execution_completions", COMPLETION_COLUMNS),
            ("pipeline_execution_events", EVENT_COLUMNS),
        )
    ]
    for sql, params in client.calls:
        assert "2025" not in sql and "'" not in sql
        assert params == ([QueryParam("since", "DATE", since)] if since else [])
    assert select_sql(TABLE, ["a"], since)[1] == client.calls[0][1]


def _one_error_line(err: str) -> str:
    assert err.count("\n") == 1 and err.startswith("error: "), err
    return err


@pytest.mark.parametrize("json_out", [False, True])
def test_missing_library(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], json_out: bool
) -> None:
    """Without google-cloud-bigquery: one line naming the extra to install, exit 1."""
    monkeypatch.setitem(sys.modules, "google.cloud.bigquery", None)
    with pytest.raises(ExecutionLogError) as exc:
        bqr.default_client("my-project")
    assert isinstance(exc.value.__cause__, ImportError)
    assert isinstance(exc.value, ScopeRouterError)
    assert main(["report", "--bigquery", TABLE, *(["--json"] if json_out else [])]) == 1
    out, err = capsys.readouterr()
    assert "pip install 'scoperouter[bigquery]'" in _one_error_line(err)
    if json_out:
        assert json.loads(out) == {
            "error": "no_client",
            "detail": err[len("error: ") : -1],
            "log": TABLE,
        }
    else:
        assert out == ""


@pytest.mark.parametrize("json_out", [False, True])
def test_query_failure(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], json_out: bool
) -> None:
    """A failing query is one line naming the table, exit 1, with the cause chained."""
    boom = RuntimeError(
        "404 Not found: Table my-project:nba_orchestration.pipeline_execution_log\n\nLocation: US"
    )
    client = FakeQueryClient({}, fail=boom)
    with pytest.raises(ExecutionLogError) as exc:
        read_bigquery_log(client, TABLE)
    assert exc.value.__cause__ is boom
    monkeypatch.setattr(bqr, "default_client", lambda project=None: client)
    assert main(["report", "--bigquery", TABLE, *(["--json"] if json_out else [])]) == 1
    out, err = capsys.readouterr()
    assert _one_error_line(err) == (
        f"error: BigQuery query on {TABLE} failed: 404 Not found: Table "
        "my-project:nba_orchestration.pipeline_execution_log Location: US\n"
    )
    assert (json.loads(out)["error"] if json_out else out) == ("query_failed" if json_out else "")


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("decided_at", datetime(2025, 11, 19, 15)),  # naive: not what BigQuery returns
        ("game_date", "19/11/2025"),
        ("entity_ids", 5),
    ],
)
def test_unreadable_rows(
    logs: Logs,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    column: str,
    value: Any,
) -> None:
    """Rows of a foreign shape are an invalid log: one line, exit 1, cause chained."""
    client = FakeQueryClient(logs.bigquery)
    served = client.run_query

    def run_query(sql: str, params: Sequence[QueryParam]) -> Iterator[dict[str, Any]]:
        for r in served(sql, params):
            yield {**r, column: value} if "decision_id" in r else r

    monkeypatch.setattr(client, "run_query", run_query)
    with pytest.raises(LogInvalidError) as exc:
        read_bigquery_log(client, TABLE)
    assert isinstance(exc.value.__cause__, ValueError)
    monkeypatch.setattr(bqr, "default_client", lambda project=None: client)
    assert main(["report", "--bigquery", TABLE]) == 1
    assert f"{TABLE} has rows this version cannot read" in _one_error_line(capsys.readouterr().err)


@pytest.mark.parametrize(
    ("args", "code", "error"),
    [
        (["--bigquery", "ds.pipeline_execution_log"], 1, "invalid_table"),
        (["--bigquery", "proj12.ds.t'--"], 1, "invalid_table"),
    ],
)
def test_cli_invalid_table(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    code: int,
    error: str,
) -> None:
    """An invalid table id is one line, exit 1, and no client is created."""
    monkeypatch.setattr(bqr, "default_client", lambda project=None: pytest.fail("client created"))
    assert main(["report", *args, "--json"]) == code
    out, err = capsys.readouterr()
    assert "invalid BigQuery table id" in _one_error_line(err)
    assert json.loads(out)["error"] == error


def test_cli_log_and_bigquery_exclusive(tmp_path: Path) -> None:
    """--log and --bigquery together are a usage error (exit 2)."""
    with pytest.raises(SystemExit) as exc:
        main(["report", "--log", str(tmp_path / "x.sqlite"), "--bigquery", TABLE])
    assert exc.value.code == 2


def test_cli_empty_bigquery_log(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An empty BigQuery log (or nothing since --since) exits 0 and says so, naming the table."""
    monkeypatch.setattr(bqr, "default_client", lambda project=None: FakeQueryClient({}))
    assert main(["report", "--bigquery", TABLE, "--json", "--since", DAY.isoformat()]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "empty": True,
        "message": f"log is empty: no decisions recorded yet since {DAY}",
        "log": TABLE,
    }


def test_real_client_request_and_types(logs: Logs) -> None:
    """Through the real client: --since is a DATE job parameter and cells come back typed as read."""
    bigquery = pytest.importorskip("google.cloud.bigquery")
    from google.auth.credentials import AnonymousCredentials

    log_rows = [r for r in logs.bigquery[TABLE] if r["kind"] == "dispatch"][:2]
    types = TYPES["pipeline_execution_log"]
    schema = [
        {
            "name": c,
            "type": {"ARRAY<STRING>": "STRING", "INT64": "INTEGER", "FLOAT64": "FLOAT"}.get(
                types[c], types[c]
            ),
            **({"mode": "REPEATED"} if types[c].startswith("ARRAY") else {}),
        }
        for c in LOG_COLUMNS
    ]

    def cell(v: Any, t: str) -> Any:
        if v is None:
            return {"v": [] if t.startswith("ARRAY") else None}
        if t == "TIMESTAMP":
            return {"v": str(int(datetime.fromisoformat(v).timestamp() * 1_000_000))}
        if t.startswith("ARRAY"):
            return {"v": [{"v": x} for x in v]}
        return {"v": str(v)}

    class Resp:
        status_code = 200
        headers = {"content-type": "application/json"}
        request = None

        def __init__(self, body: dict[str, Any]) -> None:
            self.content = json.dumps(body).encode()
            self.text = self.content.decode()

        def json(self) -> Any:
            return json.loads(self.content)

    class Session:
        is_mtls = False

        def __init__(self) -> None:
            self.posts: list[dict[str, Any]] = []

        def request(self, method: str, url: str, data: Any = None, **_kw: Any) -> Resp:
            job = {"projectId": "my-project", "jobId": f"j{len(self.posts)}", "location": "US"}
            if method == "POST":
                self.posts.append(json.loads(data))
                return Resp({**json.loads(data), "jobReference": job, "status": {"state": "DONE"}})
            assert "/queries/" in url, url
            sql = self.posts[-1]["configuration"]["query"]["query"]
            rows = (
                log_rows if "`my-project.nba_orchestration.pipeline_execution_log`" in sql else []
            )
            return Resp(
                {
                    "jobComplete": True,
                    "jobReference": job,
                    "totalRows": str(len(rows)),
                    "schema": {"fields": schema},
                    "rows": [{"f": [cell(r[c], types[c]) for c in LOG_COLUMNS]} for r in rows],
                }
            )

    session = Session()
    client = bigquery.Client(
        project="my-project",
        credentials=AnonymousCredentials(),
        _http=session,
        client_options={"api_endpoint": "http://127.0.0.1:9"},
    )
    data = read_bigquery_log(bqr.GoogleQueryClient(client), TABLE, since=DAY)
    assert len(session.posts) == 3
    for body in session.posts:
        q = body["configuration"]["query"]
        assert (
            q["query"].endswith(" WHERE game_date >= @since") and DAY.isoformat() not in q["query"]
        )
        assert q["queryParameters"] == [
            {
                "name": "since",
                "parameterType": {"type": "DATE"},
                "parameterValue": {"value": DAY.isoformat()},
            }
        ]
        assert q["useLegacySql"] is False
    assert data == read_bigquery_log(
        FakeQueryClient({TABLE: log_rows}, duplicates=0), TABLE, since=DAY
    )
    assert len(data.dispatches) == 2
    x = data.dispatches[0]
    assert x.decided_at is not None and x.decided_at.tzinfo is not None
    assert (
        isinstance(x.game_date, date)
        and isinstance(x.caused_by, tuple)
        and isinstance(x.latency_ms, float)
    )


@pytest.mark.parametrize(
    ("extra", "project"),
    [([], "my-project"), (["--billing-project", "billing-proj"], "billing-proj")],
)
def test_cli_query_jobs_project(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    project: str,
) -> None:
    """Query jobs run in the table's project unless --billing-project names another."""
    seen: list[str | None] = []

    def client(project: str | None = None) -> FakeQueryClient:
        seen.append(project)
        return FakeQueryClient({})

    monkeypatch.setattr(bqr, "default_client", client)
    assert main(["report", "--bigquery", TABLE, "--json", *extra]) == 0
    capsys.readouterr()
    assert seen == [project]


def test_cli_bad_billing_project(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A malformed --billing-project is a one-line error, exit 1, and no client is created."""
    monkeypatch.setattr(bqr, "default_client", lambda project=None: pytest.fail("client created"))
    assert main(["report", "--bigquery", TABLE, "--billing-project", "Bad Project!"]) == 1
    assert "not a Google Cloud project id" in _one_error_line(capsys.readouterr().err)

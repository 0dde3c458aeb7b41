"""The real baseline (issue 19, acceptance 3): given the date-level pipeline's run history for
the demo day, in the shape production's ``RunHistoryMixin`` writes it
(najicham/nba-stats-scraper shared/processors/mixins/run_history_mixin.py:324-349: a
``running`` row first, :159-161, then the final row with ``duration_seconds``), ``report``
computes hours saved from the recorded durations, matching a hand check within 1%."""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from demo_support import RecordedDay
from scoperouter.cli import main
from scoperouter.examples.nba.harness import (
    CostModel,
    Job,
    PlannedRouter,
    simulate,
)
from scoperouter.execution_log import SqliteExecutionLog
from scoperouter.execution_log.run_history import class_to_name, map_history, read_bigquery
from scoperouter.processor_registry.compiled import CompiledRegistry

Runs = dict[tuple[str, date], list[float]]


def _camel(name: str) -> str:
    return "".join(w.capitalize() for w in name.split("_")) + "Processor"


def _collect(into: Runs) -> Any:
    """An on_run callback: each job's duration, split evenly over its dates."""

    def on_run(job: Job, now: float, dur: float, rows: int, changed: frozenset[str]) -> None:
        for d in job.dates:
            into[(job.processor, d)].append(dur / len(job.dates))

    return on_run


def _history_rows(
    reg: CompiledRegistry, runs: Runs, rows_per_run: dict[tuple[str, date], int]
) -> list[dict[str, Any]]:
    """Rows as RunHistoryMixin writes them: a 'running' row, then the final 'success' row."""
    out: list[dict[str, Any]] = []
    for (proc, d), durs in sorted(runs.items()):
        pub = reg.processors[proc].publishes or ""
        dataset, _, table = pub.partition(".")
        for i, dur in enumerate(durs):
            base = {
                "processor_name": _camel(proc),
                "run_id": f"{_camel(proc)}_{d:%Y%m%d}_{i:04d}",
                "data_date": d.isoformat(),
                "started_at": f"{d}T18:00:00+00:00",
                "output_table": table,
                "output_dataset": dataset,
                "phase": f"phase_{reg.processors[proc].phase}",
                "trigger_source": "pubsub",
            }
            out.append({**base, "status": "running", "duration_seconds": None})
            out.append(
                {
                    **base,
                    "status": "success",
                    "duration_seconds": dur,
                    "records_processed": rows_per_run[(proc, d)],
                    "processed_at": f"{d}T18:01:00+00:00",
                }
            )
    return out


@pytest.fixture(scope="module")
def recorded(
    tmp_path_factory: pytest.TempPathFactory, short_day_2025: RecordedDay
) -> dict[str, Any]:
    """The demo day run date level (its runs become the run history: the session's run,
    tests/demo_support.py) and routed (into a log)."""
    day = short_day_2025.day
    reg = day.registry
    cost = CostModel()
    date_runs: Runs = defaultdict(list)
    rows: dict[tuple[str, date], list[int]] = defaultdict(list)
    for job, dur, n in short_day_2025.date_runs:
        for d in job.dates:
            date_runs[(job.processor, d)].append(dur / len(job.dates))
            rows[(job.processor, d)].append(n // len(job.dates))
    routed_runs: Runs = defaultdict(list)
    tmp = tmp_path_factory.mktemp("rh")
    log = tmp / "log.sqlite"
    with SqliteExecutionLog(log) as lg:
        simulate(
            day.overnight.copy(),
            day.updates,
            PlannedRouter(reg, day.relations, day.game_date, lg),
            reg,
            day.game_date,
            cost,
            on_run=_collect(routed_runs),
        )
    hist = _history_rows(reg, date_runs, {k: max(v) for k, v in rows.items()})
    path = tmp / "processor_run_history.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in hist), encoding="utf-8")
    return {
        "log": log,
        "history": path,
        "rows": hist,
        "date_runs": date_runs,
        "routed_runs": routed_runs,
        "registry": reg,
    }


def _report(args: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    capsys.readouterr()
    assert main(["report", "--json", *args]) == 0
    out: dict[str, Any] = json.loads(capsys.readouterr().out)
    return out


def test_hours_saved_match_a_hand_check(
    recorded: dict[str, Any], routes_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Saved hours from the recorded durations equal (date-level seconds - routed seconds) within 1%."""
    out = _report(
        [
            "--log",
            str(recorded["log"]),
            "--config",
            str(routes_path),
            "--run-history",
            str(recorded["history"]),
        ],
        capsys,
    )
    ro = out["rollout"]
    procs = {p["processor"]: p for p in ro["processors"]}
    hand = (
        sum(map(sum, recorded["date_runs"].values()))
        - sum(map(sum, recorded["routed_runs"].values()))
    ) / 3600
    got = sum(p["saved_hours"] for p in procs.values())
    assert hand > 0
    assert abs(got - hand) <= 0.01 * hand, (got, hand)
    assert all(p["baseline"].startswith("run_history") for p in procs.values() if p["runs"]), procs
    assert ro["history"]["ignored_by_status"] == {"running": len(recorded["rows"]) // 2}


def test_missing_history_falls_back_to_the_fitted_model(
    recorded: dict[str, Any], routes_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A processor absent from the run history is labelled fitted_model and named in the text."""
    rows = [r for r in recorded["rows"] if r["processor_name"] != "PlayerGameSummaryProcessor"]
    path = tmp_path / "h.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=sorted({k for r in rows for k in r}))
        w.writeheader()
        w.writerows(rows)
    args = ["--log", str(recorded["log"]), "--config", str(routes_path), "--run-history", str(path)]
    procs = {p["processor"]: p for p in _report(args, capsys)["rollout"]["processors"]}
    assert procs["player_game_summary"]["baseline"] == "fitted_model"
    assert procs["player_game_summary"]["missing_history_days"]
    assert procs["player_composite_factors"]["baseline"].startswith("run_history")
    capsys.readouterr()
    assert main(["report", *args]) == 0
    assert "from fitted_model" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("row", "expect"),
    [
        (
            {
                "processor_name": "PlayerGameSummaryProcessor",
                "output_table": "player_game_summary",
                "output_dataset": "nba_analytics",
            },
            "player_game_summary",
        ),
        (
            {
                "processor_name": "Renamed",
                "output_table": "nba_analytics.player_game_summary",
                "output_dataset": "nba_analytics",
            },
            "player_game_summary",
        ),
        (
            {
                "processor_name": "PlayerGameSummaryProcessor",
                "output_table": "",
                "output_dataset": "",
            },
            "player_game_summary",
        ),
        (
            {
                "processor_name": "BdlStandingsProcessor",
                "output_table": "bdl_standings",
                "output_dataset": "nba_raw",
            },
            None,
        ),
    ],
)
def test_rows_map_by_output_table_then_class_name(row: dict[str, Any], expect: str | None) -> None:
    """output_dataset.output_table = publishes first (never prefixed twice), then the class name."""
    h = map_history(
        [{**row, "status": "success", "duration_seconds": 3.0, "data_date": "2025-11-19"}],
        {"player_game_summary": "nba_analytics.player_game_summary"},
    )
    assert list(h.runs) == ([(expect, date(2025, 11, 19))] if expect else [])
    assert sum(h.unmapped.values()) == (0 if expect else 1)
    assert class_to_name("PlayerGameSummaryProcessor") == "player_game_summary"


class FakeClient:
    """Records the query and its parameters; returns the given rows."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows, self.calls = rows, []  # type: ignore[var-annotated]

    def run_query(self, sql: str, params: Any) -> list[dict[str, Any]]:
        self.calls.append((sql, list(params)))
        return self.rows


def test_bigquery_query_is_parameterised() -> None:
    """The live read names the validated table and passes the dates as DATE parameters."""
    row = {
        c: None
        for c in (
            "processor_name",
            "run_id",
            "status",
            "duration_seconds",
            "records_processed",
            "data_date",
            "output_table",
            "output_dataset",
            "phase",
            "trigger_source",
        )
    }
    c = FakeClient([{**row, "status": "success"}])
    got = read_bigquery(
        c, "my-project.nba_reference.processor_run_history", date(2025, 11, 1), date(2025, 11, 19)
    )
    sql, params = c.calls[0]
    assert (
        "`my-project.nba_reference.processor_run_history`" in sql
        and "@since" in sql
        and "@until" in sql
    )
    assert [(p.name, p.type, p.value) for p in params] == [
        ("since", "DATE", date(2025, 11, 1)),
        ("until", "DATE", date(2025, 11, 19)),
    ]
    assert got[0]["status"] == "success"
    with pytest.raises(Exception, match="invalid BigQuery table id"):
        read_bigquery(c, "x`; DROP", date(2025, 11, 1), date(2025, 11, 19))


def test_bigquery_history_of_a_log_without_decision_rows(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    routes_path: Path,
) -> None:
    """A log whose events every processor skipped (no decision row, no date): no query, an empty history, exit 0."""
    from logsupport import DAY, T0, relations_for

    from scoperouter.execution_log import bigquery_reader
    from scoperouter.execution_log.simulate import record_stream
    from scoperouter.messages.models import Event
    from scoperouter.processor_registry.loader import load_config

    reg = load_config(routes_path, with_relations=False).registry
    ev = {"source": "nba_raw.no_such_table", "game_date": DAY, "correlation_id": "c"}
    events = [(Event.model_validate({**ev, "event_id": f"e-{i}"}), T0) for i in range(2)]
    log = tmp_path / "skips.sqlite"
    with SqliteExecutionLog(log) as lg:
        record_stream(lg, reg, relations_for(reg), events, as_of=DAY)
    client = FakeClient([])
    monkeypatch.setattr(bigquery_reader, "default_client", lambda project=None: client)
    table = "my-project.nba_reference.processor_run_history"
    argv = ["--log", str(log), "--config", str(routes_path), "--run-history-bigquery", table]
    out = _report(argv, capsys)
    assert client.calls == []
    assert (out["rollout"]["history"]["rows"], out["rollout"]["history"]["runs"]) == (0, 0)


ROW = json.dumps({"processor_name": "PsumProcessor", "run_id": "r1", "status": "success",
                  "duration_seconds": 3, "data_date": "2025-11-18"})  # fmt: skip


@pytest.mark.parametrize(
    ("name", "text", "says"),
    [
        ("h.json", f"[{ROW}, 5]", "h.json: run history row 2 is not a JSON object: 5"),
        ("h.json", f'[{ROW}, [["status", "success"]]]', "h.json: run history row 2 is not"),
        ("h.jsonl", f"{ROW}\nnull\n", "h.jsonl:2: run history row is not a JSON object: null"),
        ("h.jsonl", f"{ROW}\n\n[1, 2]\n", "h.jsonl:3: run history row is not a JSON object"),
    ],
)
def test_a_run_history_row_that_is_not_an_object_is_one_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, text: str, says: str
) -> None:
    """A run-history export whose row is not a JSON object (an array element, a JSON line)
    is one error naming the file and the row (with --json the run_history error object),
    not a traceback."""
    from logsupport import one_processor_registry

    routes = one_processor_registry(tmp_path, players=2)
    event = {"event_id": "e1", "source": "raw.stats", "game_date": "2025-11-18",
             "affected_entities": {"players": ["p1"]}}  # fmt: skip
    (tmp_path / "ev.jsonl").write_text(json.dumps(event) + "\n")
    log = str(tmp_path / "log.sqlite")
    assert main(["replay", str(tmp_path / "ev.jsonl"), "--config", str(routes), "--log", log,
                 "--outbox", str(tmp_path / "ob.jsonl")]) == 0  # fmt: skip
    (tmp_path / name).write_text(text)
    capsys.readouterr()
    argv = ["report", "--config", str(routes), "--log", log, "--run-history", str(tmp_path / name)]
    assert main([*argv, "--json"]) == 1
    out, err = capsys.readouterr()
    assert json.loads(out)["error"] == "run_history"
    assert len(err.splitlines()) == 1 and says in err, err

"""Drift at run time: the SDK puts a run's referenced tables in its completion event; the
router counts reads routes.yaml does not declare (metric, rate-limited WARNING) and
``report`` lists them in its "undeclared reads" section."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import jsonschema
import pytest
from lineage_support import ROUTES

from scoperouter.cli import main
from scoperouter.execution_log import SqliteExecutionLog
from scoperouter.execution_log.reader import read_log
from scoperouter.execution_log.undeclared_reads import undeclared
from scoperouter.lineage.drift import parse_referenced, undeclared_reads
from scoperouter.messages.normalize import normalize_event
from scoperouter.processor_registry.loader import load_config
from scoperouter.router.planner import plan
from scoperouter.runtime.metrics import Metrics
from scoperouter.runtime.undeclared_reads import UndeclaredReads
from scoperouter.sdk import build_completion_event, referenced_tables

CFG = load_config(ROUTES)
AT = datetime(2026, 1, 15, 23, 50, tzinfo=UTC)
PGS_READS = [
    "nba-props-platform.nba_raw.nbac_gamebook_player_stats",
    "nba_analytics.team_offense_game_summary",
    "nba_reference.arena_capacity",  # read, not declared (a made-up table)
]


def _event(eid: str = "pgs-1", tables: list[str] | None = None) -> dict[str, object]:
    jobs = [
        SimpleNamespace(
            referenced_tables=[
                SimpleNamespace(dataset_id=t.split(".")[-2], table_id=t.split(".")[-1])
                for t in (tables or PGS_READS)
            ]
        )
    ]
    return build_completion_event(
        source="nba_analytics.player_game_summary",
        game_date=AT.date(),
        affected_entities={"players": ["lebronjames"]},
        changed_fields=["points"],
        event_id=eid,
        referenced_tables=referenced_tables(*jobs),
    )


def test_sdk_event_carries_referenced_tables() -> None:
    """The SDK collects the jobs' table references; normalisation keeps them as dataset.table."""
    body = _event()
    assert body["referenced_tables"] == [
        "nba_analytics.team_offense_game_summary",
        "nba_raw.nbac_gamebook_player_stats",
        "nba_reference.arena_capacity",
    ]
    schema = json.loads(
        (ROUTES.parent / "schemas" / "event.schema.json").read_text(encoding="utf-8")
    )
    jsonschema.validate(body, schema)  # the published event schema accepts it
    ev = normalize_event(json.loads(json.dumps(body)), CFG.registry)
    assert ev.referenced_tables == tuple(body["referenced_tables"])  # type: ignore[arg-type]
    assert undeclared_reads(CFG.registry, ev.source, ev.referenced_tables) == (
        "player_game_summary",
        ("nba_reference.arena_capacity",),
    )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, None),
        ("nba_raw.x", None),
        (
            ["p.ds.t", "ds.t", {"project_id": "p", "dataset_id": "ds", "table_id": "u"}, 3, "bare"],
            ("ds.t", "ds.u"),
        ),
        ([], ()),
    ],
)
def test_parse_referenced(raw: object, expected: tuple[str, ...] | None) -> None:
    """Names and BigQuery table references become sorted dataset.table; junk entries are skipped, never a rejection."""
    assert parse_referenced(raw) == expected


def test_router_counter_and_warning(caplog: pytest.LogCaptureFixture) -> None:
    """Each undeclared (processor, table) read is counted; the WARNING is rate limited per pair."""
    now = [1000.0]
    drift = UndeclaredReads(Metrics(), lambda: now[0], interval_s=300.0)
    ev = normalize_event(_event(), CFG.registry)
    with caplog.at_level(logging.WARNING, logger="scoperouter.runtime"):
        assert drift.observe(CFG.registry, ev) == ("nba_reference.arena_capacity",)
        now[0] += 10
        drift.observe(CFG.registry, ev)
        now[0] += 300
        drift.observe(CFG.registry, ev)
    value = drift.counter.labels("player_game_summary", "nba_reference.arena_capacity")._value.get()
    assert value == 3
    warnings = [r for r in caplog.records if "undeclared_read" in r.getMessage()]
    assert (
        len(warnings) == 2
        and "player_game_summary read nba_reference.arena_capacity" in warnings[0].getMessage()
    )


def test_declared_reads_and_foreign_sources_count_nothing() -> None:
    """Declared inputs, the processor's own output and events no processor publishes give nothing."""
    drift = UndeclaredReads(Metrics(), lambda: 0.0)
    ok = normalize_event(
        _event(tables=["nba_raw.nbac_gamebook_player_stats", "nba_analytics.player_game_summary"]),
        CFG.registry,
    )
    assert drift.observe(CFG.registry, ok) == ()
    raw = normalize_event(
        {
            "event_id": "r",
            "source": "nba_raw.nbac_injury_report",
            "game_date": "2026-01-15",
            "referenced_tables": ["x.y"],
        },
        CFG.registry,
    )
    assert drift.observe(CFG.registry, raw) == ()


def test_report_section(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`report` text and --json list the undeclared reads from the logged completion events."""
    log = tmp_path / "log.sqlite"
    with SqliteExecutionLog(log) as w:
        for eid in ("pgs-1", "pgs-2"):
            ev = normalize_event(_event(eid), CFG.registry)
            w.record_decisions(
                ev,
                plan(CFG.registry, CFG.relations, ev, AT.date()),
                AT,
                registry=CFG.registry,
                relations=CFG.relations,
            )
    rows = undeclared(read_log(log), CFG.registry)
    assert [(u.processor, u.table, u.events) for u in rows] == [
        ("player_game_summary", "nba_reference.arena_capacity", 2)
    ]
    assert main(["report", "--log", str(log), "--config", str(ROUTES)]) == 0
    text = capsys.readouterr().out
    assert "undeclared reads" in text and "nba_reference.arena_capacity" in text
    assert main(["report", "--log", str(log), "--config", str(ROUTES), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [(u["processor"], u["table"], u["events"]) for u in doc["undeclared_reads"]] == [
        ("player_game_summary", "nba_reference.arena_capacity", 2)
    ]


def test_lineage_runtime_route(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`scoperouter lineage --runtime --log LOG` reports the reads runs reported as missing inputs (route runtime)."""
    log = tmp_path / "log.sqlite"
    with SqliteExecutionLog(log) as w:
        ev = normalize_event(_event(), CFG.registry)
        w.record_decisions(
            ev,
            plan(CFG.registry, CFG.relations, ev, AT.date()),
            AT,
            registry=CFG.registry,
            relations=CFG.relations,
        )
    assert main(["lineage", "--config", str(ROUTES), "--runtime", "--log", str(log), "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["route"] == "runtime" and doc["processors"] == ["player_game_summary"]
    assert [(f["code"], f["source"]) for f in doc["findings"] if f["severity"] == "error"] == [
        ("missing_input", "nba_reference.arena_capacity")
    ]
    assert (
        main(
            [
                "lineage",
                "--config",
                str(ROUTES),
                "--runtime",
                "--log",
                str(tmp_path / "none.sqlite"),
            ]
        )
        == 1
    )


def _ref(table: str) -> SimpleNamespace:
    ds, tb = table.split(".")
    return SimpleNamespace(project="p", dataset_id=ds, table_id=tb)


def _job(reads: list[str], dest: str | None) -> SimpleNamespace:
    return SimpleNamespace(
        referenced_tables=[_ref(t) for t in reads], destination=_ref(dest) if dest else None
    )


STAGING = "nba_analytics.player_game_summary_staging"
OWN_OUTPUT = "nba_analytics.player_game_summary"
RAW = "nba_raw.nbac_gamebook_player_stats"


@pytest.mark.parametrize(
    ("jobs", "expected"),
    [
        # stage, then merge the staging table into the output: staging is no read
        ([_job([RAW], STAGING), _job([STAGING, OWN_OUTPUT], OWN_OUTPUT)], [RAW]),
        # order does not matter: a table written by any of the run's jobs
        ([_job([STAGING], OWN_OUTPUT), _job([RAW], STAGING)], [RAW]),
        # a job without destination (a script's child, an object without the attribute)
        ([_job([RAW], None), SimpleNamespace(referenced_tables=[_ref(STAGING)])], [STAGING, RAW]),
    ],
    ids=["staging", "reverse_order", "no_destination"],
)
def test_sdk_drops_the_runs_own_destinations(
    jobs: list[SimpleNamespace], expected: list[str]
) -> None:
    """referenced_tables leaves out the tables the given jobs wrote, as the JOBS route does: a processor's staging table is no undeclared read."""
    got = referenced_tables(*jobs)
    assert got == expected
    if expected == [RAW]:
        assert undeclared_reads(CFG.registry, OWN_OUTPUT, tuple(got)) == ("player_game_summary", ())

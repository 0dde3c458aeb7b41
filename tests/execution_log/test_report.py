"""``scoperouter report``: figures per processor, the recommendation rule, CLI behaviour."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from logsupport import DAY, completion, game_day_events

from scoperouter.cli import main
from scoperouter.execution_log import SqliteExecutionLog
from scoperouter.execution_log.analysis import (
    DATE_LEVEL,
    ENTITY_LEVEL,
    INSUFFICIENT,
    ProcessorInfo,
    ProcessorReport,
    build_report,
    recommend,
)
from scoperouter.execution_log.reader import read_log
from scoperouter.execution_log.simulate import record_stream
from scoperouter.processor_registry.compiled import CompiledRegistry
from scoperouter.processor_registry.models import ReportSpec
from scoperouter.processor_registry.relations import InMemoryRelations

PERMISSIVE = ReportSpec(
    waste_pct=0, wasted_hours_per_week=0, payback_weeks=1e9, engineering_hours=1
)


def info(registry: CompiledRegistry) -> dict[str, ProcessorInfo]:
    return {
        n: ProcessorInfo(p.phase, p.granularity, p.spec.engineering_hours)
        for n, p in registry.processors.items()
    }


@pytest.mark.parametrize("thresholds", [ReportSpec(), PERMISSIVE], ids=["default", "permissive"])
def test_every_processor_and_date_granularity_never_entity_level(
    game_day_log: Path, registry: CompiledRegistry, thresholds: ReportSpec
) -> None:
    """Every registry processor is reported; date-granularity ones are never entity-level, even
    when the thresholds would pass anything (entity-granular ones then are)."""
    rep = build_report(read_log(game_day_log), thresholds=thresholds, processors=info(registry))
    by = {p.processor: p for p in rep.processors}
    assert set(by) == set(registry.processor_names)
    for name, p in by.items():
        if registry.processors[name].is_date_granularity:
            assert p.recommendation == DATE_LEVEL and "granularity is date" in p.why
        elif thresholds is PERMISSIVE and p.measured_runs:
            assert p.recommendation == ENTITY_LEVEL, p.why


def test_waste_uses_completion_reports(
    game_day_log: Path, registry: CompiledRegistry, relations: InMemoryRelations, tmp_path: Path
) -> None:
    """With completions, waste % = (records processed - entities changed) / records processed."""
    with SqliteExecutionLog(tmp_path / "x.sqlite") as log:
        fired = record_stream(log, registry, relations, game_day_events(), as_of=DAY)
    rep = build_report(read_log(game_day_log), processors=info(registry))
    by = {p.processor: p for p in rep.processors}
    for name in {t.processor for t in fired}:
        reps = [completion(t) for t in fired if t.processor == name]
        processed = sum(r[0] for r in reps)
        changed = sum(r[1] or 0 for r in reps)
        p = by[name]
        assert p.runs == len(reps) and p.runs_with_completion == len(reps)
        assert p.waste_pct == pytest.approx(100.0 * (processed - changed) / processed)
        linear = len({r[0] for r in reps}) > 1  # logsupport durations are exactly 0.05 s x records
        assert p.seconds_per_entity == pytest.approx(0.05 if linear else 30 / 450)
        assert p.overhead_s == pytest.approx(0.0, abs=1e-9)
        assert p.entity_runs + p.date_runs == p.runs


def test_waste_from_decisions_alone(bare_log: Path, registry: CompiledRegistry) -> None:
    """Without completions, entity runs waste nothing as run, a fallback run wastes the
    universe minus the ids the event reached, and date-level waste counts the universe."""
    data = read_log(bare_log)
    rep = build_report(data, processors=info(registry))
    pgs = next(p for p in rep.processors if p.processor == "player_game_summary")
    runs = [x for x in data.dispatches if x.processor == "player_game_summary"]
    fallback = [x for x in runs if x.reason == "fallback_threshold"]
    assert len(fallback) == 1
    mapped = next(
        d.entities_mapped
        for d in data.decisions
        if d.processor == "player_game_summary" and d.reason == "fallback_threshold"
    )
    assert mapped is not None and 100 < mapped < 450
    entity_ids = sum(len(x.entity_ids or ()) for x in runs if x.scope == "entities")
    assert pgs.waste_pct == pytest.approx(100.0 * (450 - mapped) / (450 + entity_ids))
    needed = mapped + entity_ids
    assert pgs.date_level_waste_pct == pytest.approx(
        100.0 * (450 * len(runs) - needed) / (450 * len(runs))
    )
    assert (
        pgs.seconds_per_entity == pytest.approx(30 / 450)
        and pgs.seconds_per_entity_source == "default"
    )
    assert pgs.saved_hours == pytest.approx((450 * (len(runs) - 1) - entity_ids) * 30 / 450 / 3600)


def _pr(**kw: object) -> ProcessorReport:
    base: dict[str, object] = dict(
        processor="p",
        phase=3,
        granularity="player",
        runs=10,
        measured_runs=10,
        engineering_hours=16.0,
    )
    base.update(kw)
    return ProcessorReport(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("report", "want", "why_part"),
    [
        (
            _pr(date_level_waste_pct=80.0, date_level_wasted_hours_per_week=5.0, payback_weeks=3.2),
            ENTITY_LEVEL,
            "pays",
        ),
        (
            _pr(date_level_waste_pct=30.0, date_level_wasted_hours_per_week=5.0, payback_weeks=3.2),
            DATE_LEVEL,
            "30% <= 30%",
        ),
        (
            _pr(date_level_waste_pct=80.0, date_level_wasted_hours_per_week=2.0, payback_weeks=3.2),
            DATE_LEVEL,
            "2.00 wasted h/week <= 2",
        ),
        (
            _pr(date_level_waste_pct=80.0, date_level_wasted_hours_per_week=5.0, payback_weeks=8.0),
            DATE_LEVEL,
            "payback 8.0 >= 8",
        ),
        (
            _pr(
                date_level_waste_pct=80.0,
                date_level_wasted_hours_per_week=0.0,
                payback_weeks=math.inf,
            ),
            DATE_LEVEL,
            "never",
        ),
        (
            _pr(
                granularity="date",
                date_level_waste_pct=99.0,
                date_level_wasted_hours_per_week=50.0,
                payback_weeks=0.1,
            ),
            DATE_LEVEL,
            "granularity is date",
        ),
        (_pr(measured_runs=0), INSUFFICIENT, "no measurable run"),
        (_pr(runs=0, measured_runs=0), INSUFFICIENT, "no runs"),
    ],
)
def test_recommendation_rule(report: ProcessorReport, want: str, why_part: str) -> None:
    """Entity-level only when waste > 30 %, wasted hours > 2/week and payback < 8 weeks (strict)."""
    got, why = recommend(report, ReportSpec())
    assert got == want and why_part in why


def test_thresholds_come_from_routes_yaml(game_day_log: Path, registry: CompiledRegistry) -> None:
    """report: thresholds and per-processor engineering_hours drive payback and the verdict."""
    data = read_log(game_day_log)
    base = build_report(data, processors=info(registry))
    pgs = next(p for p in base.processors if p.processor == "player_game_summary")
    custom = {
        **info(registry),
        "player_game_summary": ProcessorInfo(3, "player", 2 * pgs.engineering_hours),
    }
    rep = build_report(data, processors=custom)
    pgs2 = next(p for p in rep.processors if p.processor == "player_game_summary")
    assert pgs.payback_weeks is not None and pgs2.payback_weeks == pytest.approx(
        2 * pgs.payback_weeks
    )
    th = ReportSpec(waste_pct=0, wasted_hours_per_week=0, payback_weeks=pgs.payback_weeks * 1.5)
    verdicts = {
        p.processor: p.recommendation
        for p in build_report(data, thresholds=th, processors=custom).processors
    }
    assert verdicts["player_game_summary"] == DATE_LEVEL  # doubled cost: payback now too long
    verdicts = {
        p.processor: p.recommendation
        for p in build_report(data, thresholds=th, processors=info(registry)).processors
    }
    assert verdicts["player_game_summary"] == ENTITY_LEVEL


# ---------------------------------------------------------------------------- CLI
def test_cli_missing_log(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """No log file: exit 1 and say how to get one."""
    path = tmp_path / "nope.sqlite"
    assert main(["report", "--log", str(path)]) == 1
    assert (
        f"no execution log at {path}; run scoperouter demo or serve first"
        in capsys.readouterr().err
    )


def _foreign_table(path: Path) -> None:
    import sqlite3

    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE pipeline_execution_log (a INTEGER)")
    conn.execute("INSERT INTO pipeline_execution_log VALUES (1)")
    conn.commit()
    conn.close()


def _state_store(path: Path) -> None:
    """The closed loop's state store (beside the log in .scoperouter/): no log table."""
    from scoperouter.runtime.store import Store

    Store(path).close()


@pytest.mark.parametrize("json_out", [False, True], ids=["text", "json"])
@pytest.mark.parametrize(
    ("make", "error", "detail"),
    [
        (None, "no_log", "no execution log at"),
        (
            lambda p: p.write_bytes(b"not a database " * 40),
            "invalid_log",
            "is not a readable SQLite execution log",
        ),
        (_foreign_table, "invalid_log", "is not a readable SQLite execution log"),
        (_state_store, "invalid_log", "is not a readable SQLite execution log"),
    ],
    ids=["missing", "not-sqlite", "foreign-table", "state-store"],
)
def test_cli_bad_log(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    make: Callable[[Path], object] | None,
    error: str,
    detail: str,
    json_out: bool,
) -> None:
    """A missing or unreadable log: exit 1 with one error line (no traceback); --json also
    prints {"error", "detail"} on stdout."""
    path = tmp_path / "garbage.db"
    if make is not None:
        make(path)
    assert main(["report", "--log", str(path), *(["--json"] if json_out else [])]) == 1
    out, err = capsys.readouterr()
    assert err.count("\n") == 1 and err.startswith("error: ") and detail in err
    if json_out:
        got = json.loads(out)
        assert got["error"] == error and detail in got["detail"]
    else:
        assert out == ""


@pytest.mark.parametrize("json_out", [False, True])
def test_cli_empty_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], routes_path: Path, json_out: bool
) -> None:
    """An empty log: exit 0 and say so plainly."""
    path = tmp_path / "empty.sqlite"
    SqliteExecutionLog(path).close()
    argv = ["report", "--log", str(path), "--config", str(routes_path)] + (
        ["--json"] if json_out else []
    )
    assert main(argv) == 0
    out = capsys.readouterr().out
    if json_out:
        assert json.loads(out)["empty"] is True
    else:
        assert "log is empty" in out


_FIRST = "WHERE rowid = (SELECT min(rowid) FROM {t})"


@pytest.mark.parametrize(
    ("damage", "needle"),
    [
        (
            "UPDATE pipeline_execution_events SET skips = '[1, 2]' " + _FIRST,
            "skips is not a JSON object",
        ),
        (
            """UPDATE pipeline_execution_events SET skips = '{"not_an_input": "2"}' """ + _FIRST,
            "not an integer: '2'",
        ),
        (
            "UPDATE pipeline_execution_log SET decided_at = '2025-11-19T10:00:00' " + _FIRST,
            "not a timezone-aware timestamp",
        ),
        (
            "UPDATE pipeline_execution_log SET phase = 'three' " + _FIRST,
            "not an integer: 'three'",
        ),
        (
            "UPDATE pipeline_execution_completions SET entities_changed = 'many' " + _FIRST,
            "not an integer: 'many'",
        ),
        (
            "UPDATE pipeline_execution_completions SET duration_s = 'slow' " + _FIRST,
            "not a number: 'slow'",
        ),
        (
            "INSERT OR REPLACE INTO scoperouter_meta (key, value) "
            """VALUES ('processor_modes', '{"modes": [1]}')""",
            "modes is not a JSON object",
        ),
    ],
    ids=[
        "skips_not_an_object",
        "skip_count_text",
        "naive_decided_at",
        "phase_text",
        "entities_changed_text",
        "duration_text",
        "modes_not_an_object",
    ],
)
def test_cli_log_with_a_damaged_value(
    game_day_log: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    damage: str,
    needle: str,
) -> None:
    """One damaged value in any table: LogInvalidError, and report exits 1 with one line (no traceback)."""
    import shutil
    import sqlite3

    from scoperouter.execution_log.reader import LogInvalidError

    path = tmp_path / "damaged.sqlite"
    shutil.copy(game_day_log, path)
    conn = sqlite3.connect(path)
    table = damage.split()[1] if damage.startswith("UPDATE") else "scoperouter_meta"
    assert conn.execute(damage.replace("{t}", table)).rowcount == 1
    conn.commit()
    conn.close()
    with pytest.raises(LogInvalidError, match=needle):
        read_log(path)
    assert main(["report", "--log", str(path)]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1, err
    assert (
        err.startswith(f"error: {path} is not a readable SQLite execution log (") and needle in err
    )


def test_cli_database_without_tables_is_an_empty_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A SQLite file with no table at all (a log before its writer opened it): empty, exit 0."""
    import sqlite3

    path = tmp_path / "blank.sqlite"
    sqlite3.connect(path).close()
    path.touch()
    assert main(["report", "--log", str(path)]) == 0
    assert "log is empty" in capsys.readouterr().out


def test_cli_json(
    game_day_log: Path,
    registry: CompiledRegistry,
    routes_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """--json prints every processor with its figures and recommendation."""
    assert main(["report", "--log", str(game_day_log), "--config", str(routes_path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    procs = {p["processor"]: p for p in out["processors"]}
    assert set(procs) == set(registry.processor_names)
    for p in procs.values():
        for key in (
            "runs_per_day",
            "entity_runs",
            "date_runs",
            "avg_entities_per_run",
            "waste_pct",
            "saved_hours",
            "recommendation",
            "why",
        ):
            assert key in p
    assert procs["league_rankings"]["recommendation"] != ENTITY_LEVEL
    assert out["summary"]["events"] == len(game_day_events())


def test_cli_since_filters(
    game_day_log: Path, routes_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--since keeps game dates on or after it; past every date the log reads as empty."""
    assert (
        main(
            [
                "report",
                "--log",
                str(game_day_log),
                "--config",
                str(routes_path),
                "--json",
                "--since",
                DAY.isoformat(),
            ]
        )
        == 0
    )
    runs_since = json.loads(capsys.readouterr().out)["summary"]["runs"]
    assert main(["report", "--log", str(game_day_log), "--config", str(routes_path), "--json"]) == 0
    runs_all = json.loads(capsys.readouterr().out)["summary"]["runs"]
    assert 0 < runs_since < runs_all
    later = (DAY + timedelta(days=30)).isoformat()
    assert main(["report", "--log", str(game_day_log), "--since", later]) == 0
    assert "log is empty" in capsys.readouterr().out


def test_cli_text_and_html(
    game_day_log: Path, routes_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Text output has a line per processor; --html writes one self-contained page with 3 charts."""
    html = tmp_path / "r" / "report.html"
    assert (
        main(
            [
                "report",
                "--log",
                str(game_day_log),
                "--config",
                str(routes_path),
                "--html",
                str(html),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "- league_rankings: date-level -- granularity is date" in out
    page = html.read_text(encoding="utf-8")
    for chart in ("chart-waste", "chart-runs", "chart-saved"):
        assert f'id="{chart}"' in page
    assert "<script" not in page and "http://" not in page.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in page


@pytest.mark.parametrize("json_out", [False, True], ids=["text", "json"])
@pytest.mark.parametrize("where", ["dir", "under_a_file"])
def test_cli_html_that_cannot_be_written(
    game_day_log: Path,
    routes_path: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    where: str,
    json_out: bool,
) -> None:
    """An --html path it cannot write: exit 1, one error line; the text report still printed, --json the error object."""
    (tmp_path / "a_dir").mkdir()
    (tmp_path / "a_file").write_text("x", encoding="utf-8")
    html = tmp_path / "a_dir" if where == "dir" else tmp_path / "a_file" / "r.html"
    argv = ["report", "--log", str(game_day_log), "--config", str(routes_path)]
    rc = main([*argv, "--html", str(html), *(["--json"] if json_out else [])])
    out, err = capsys.readouterr()
    assert rc == 1
    assert err.count("\n") == 1 and err.startswith(f"error: cannot write {html}: "), err
    if json_out:
        assert json.loads(out) == {
            "error": "html_unwritable",
            "detail": err[len("error: ") : -1],
            "log": str(game_day_log),
        }
    else:
        assert main(argv) == 0
        assert out == capsys.readouterr().out  # the whole text report, no "written" line


@pytest.mark.parametrize("bad", [["--since", "yesterday"], ["--what-if"]])
def test_cli_usage_errors(game_day_log: Path, bad: list[str]) -> None:
    """Malformed options are usage errors (exit 2)."""
    with pytest.raises(SystemExit) as exc:
        main(["report", "--log", str(game_day_log), *bad])
    assert exc.value.code == 2


@pytest.mark.parametrize(
    ("event", "want"),
    [
        (
            {
                "source": "nba_analytics.player_game_summary",
                "record_count": 3,
                "affected_entities": {"players": ["a", "b"]},
            },
            ("player_game_summary", 3, 2),
        ),
        (
            {"source": "nba_analytics.player_game_summary", "record_count": 450},
            ("player_game_summary", 450, None),
        ),
        ({"source": "nba_analytics.player_game_summary"}, None),  # no record_count
        (
            {"source": "nba_analytics.player_game_summary", "record_count": 3, "status": "failed"},
            None,
        ),
        (
            {"source": "nba_raw.nbac_injury_report", "record_count": 3},
            None,
        ),  # not a processor's output
    ],
)
def test_completion_from_event(
    registry: CompiledRegistry, event: dict[str, object], want: tuple[str, int, int | None] | None
) -> None:
    """A processor's own completion event gives records processed and entities changed."""
    from scoperouter.execution_log.completions import completion_from_event
    from scoperouter.messages.models import Event

    rep = completion_from_event(
        registry, Event.model_validate({"event_id": "x", "game_date": DAY, **event})
    )
    got = (rep.processor, rep.records_processed, rep.entities_changed) if rep else None
    assert got == want


def test_without_dispatch_rows_runs_are_decisions(
    tmp_path: Path, registry: CompiledRegistry, relations: InMemoryRelations
) -> None:
    """A log with decisions only (dry run) counts every run decision, uncoalesced, and says so."""
    from scoperouter.router.planner import plan

    path = tmp_path / "l.sqlite"
    n_run = 0
    with SqliteExecutionLog(path) as log:
        for ev, at in game_day_events():
            ds = plan(registry, relations, ev, DAY)
            n_run += sum(len(d.dates) for d in ds if d.action == "run")
            log.record_decisions(ev, ds, at, registry=registry, relations=relations, as_of=DAY)
    rep = build_report(read_log(path), processors=info(registry))
    assert not rep.coalesced and rep.runs == n_run
    assert rep.to_json()["summary"]["runs_are"] == "run decisions (no dispatch rows)"


def test_failed_dispatch_and_unlinked_completion(
    tmp_path: Path, registry: CompiledRegistry, relations: InMemoryRelations
) -> None:
    """Dead-lettered triggers count as failed runs; a completion without trigger_id is matched
    to the run of the same processor and date; one with no run is reported unmatched."""
    path = tmp_path / "l.sqlite"
    events = game_day_events()[:1]
    with SqliteExecutionLog(path) as log:
        fired = record_stream(log, registry, relations, events, as_of=DAY, status="dead_letter")
        t = fired[0]
        log.record_completion(
            t.processor,
            t.game_date,
            trigger_id=None,
            records_processed=10,
            entities_changed=4,
            duration_s=2.0,
        )
        log.record_completion(
            "league_rankings",
            DAY,
            trigger_id=None,
            records_processed=450,
            entities_changed=None,
            duration_s=30.0,
        )
    rep = build_report(read_log(path), processors=info(registry))
    by = {p.processor: p for p in rep.processors}
    assert sum(p.failed_runs for p in rep.processors) == len(fired) > 0
    assert by[t.processor].runs_with_completion == 1
    assert (
        by[t.processor].waste_pct is None and by[t.processor].entity_rows_processed == 0
    )  # it never ran
    assert rep.unmatched_completions == 1


def test_text_report_reads_on_its_own(
    game_day_log: Path, routes_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The text report has a headline in the demo's words whose figures add up from the
    per-processor rows, and a legend line for every column of its table."""
    from scoperouter.commands.report import LEGEND

    assert main(["report", "--log", str(game_day_log), "--config", str(routes_path)]) == 0
    out = capsys.readouterr().out
    assert main(["report", "--log", str(game_day_log), "--config", str(routes_path), "--json"]) == 0
    procs = json.loads(capsys.readouterr().out)["processors"]
    routed = sum(p["entity_rows_processed"] for p in procs)
    date_level = sum(p["date_level_rows"] for p in procs)
    assert 0 < routed < date_level
    assert (
        f"work: routed {routed:,} entity rows in {sum(p['runs'] for p in procs):,} runs; the "
        f"same runs at date level {date_level:,}: {date_level / routed:.1f}x less work routed"
    ) in out
    header = next(line for line in out.splitlines() if line.startswith("processor "))
    columns = re.split(r"\s{2,}", header.strip())[1:]  # 'processor' names itself
    legend = {k for key, _ in LEGEND for k in key.split(", ")}
    assert set(columns) == legend
    for key, meaning in LEGEND:
        assert f"  {key}" in out and meaning in out


def test_html_report_has_the_headline_and_a_legend(
    game_day_log: Path, routes_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The HTML page carries the text report's headline, a tooltip on every column header
    and a visible legend with one entry per column."""
    from scoperouter.execution_log.html import HTML_COLUMNS

    html = tmp_path / "r.html"
    args = ["report", "--log", str(game_day_log), "--config", str(routes_path)]
    assert main([*args, "--html", str(html)]) == 0
    headline = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("work: "))
    page = html.read_text(encoding="utf-8")
    assert f'<p class="headline">{headline}</p>' in page
    headers = re.findall(r'<th title="([^"]+)">([^<]+)</th>', page)
    assert [h for _m, h in headers][1:] == [h for h, _m in HTML_COLUMNS]
    assert all(m for m, _h in headers)
    assert page.count("<dt>") == len(HTML_COLUMNS)

"""No silent nothing: an event whose source routes.yaml names nowhere gets ``unknown_source``
in ``explain``, a per-source counter and a rate-limited WARNING in the daemon, and a section
in ``report`` (text, --json, --html)."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest
from production_corpus import CASES, DAY

from cli_fork import CliRun, run_cli
from scoperouter.cli import main
from scoperouter.execution_log import SqliteExecutionLog
from scoperouter.execution_log.reader import read_log
from scoperouter.execution_log.unknown_sources import unknown_sources
from scoperouter.messages.normalize import normalize_event
from scoperouter.processor_registry.loader import load_config
from scoperouter.router.planner import plan
from scoperouter.runtime.metrics import Metrics
from scoperouter.runtime.unknown_sources import OTHER, UnknownSources

REPO = Path(__file__).resolve().parents[2]
ROUTES = REPO / "routes.yaml"
[REFEREE] = [c for c in CASES if c.name == "p2_referee_unknown"]
[STANDINGS] = [c for c in CASES if c.name == "p2_standings_routes_nothing"]


def cli(*args: str, stdin: str) -> CliRun:
    """The CLI in a process of its own (tests/cli_fork.py)."""
    return run_cli(args, cwd=Path.cwd(), budget_s=60, stdin=stdin)


@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_explain_prints_unknown_source(as_json: bool) -> None:
    """`explain` on a production Phase 2 completion of a table no processor knows says
    unknown_source for every processor (exit 0: the event is valid)."""
    args = ["explain", "-", "--config", str(ROUTES), "--as-of", DAY] + (
        ["--json"] if as_json else []
    )
    out = cli(*args, stdin=json.dumps(REFEREE.body))
    assert out.returncode == 0, out.stderr
    if as_json:
        doc = json.loads(out.stdout)
        assert doc["event"]["source"] == "nba_raw.nbac_referee_game_assignments"
        assert {d["reason"] for d in doc["decisions"]} == {"unknown_source"}
    else:
        rows = [ln for ln in out.stdout.splitlines()[2:] if ln.strip()]
        assert rows and all(ln.rstrip().endswith("unknown_source") for ln in rows), out.stdout


def test_declared_source_nobody_reads_is_not_an_input() -> None:
    """A table routes.yaml declares under sources: but nothing reads is not_an_input, not
    unknown_source (production's trigger table maps bdl_standings to nothing)."""
    out = cli(
        "explain",
        "-",
        "--config",
        str(ROUTES),
        "--as-of",
        DAY,
        "--json",
        stdin=json.dumps(STANDINGS.body),
    )
    assert {d["reason"] for d in json.loads(out.stdout)["decisions"]} == {"not_an_input"}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_counter_and_rate_limited_warning(caplog: pytest.LogCaptureFixture) -> None:
    """Every event counts under its source; one WARNING per source per interval, the next
    one saying how many events came since."""
    m, clock = Metrics(), Clock()
    u = UnknownSources(m, clock, interval_s=60.0)
    caplog.set_level(logging.WARNING, logger="scoperouter.runtime")
    for i in range(5):
        u.observe("nba_raw.x", f"e{i}")
        clock.now += 10.0
    u.observe("nba_raw.y", "f0")
    assert m.unknown_source_events.labels("nba_raw.x")._value.get() == 5
    assert m.unknown_source_events.labels("nba_raw.y")._value.get() == 1
    warned = [(r.source, r.events) for r in caplog.records]  # type: ignore[attr-defined]
    assert warned == [("nba_raw.x", 1), ("nba_raw.y", 1)]
    clock.now += 30.0  # 80 s after the first warning about x
    u.observe("nba_raw.x", "e5")
    warned = [(r.source, r.events) for r in caplog.records]  # type: ignore[attr-defined]
    assert warned[-1] == ("nba_raw.x", 5)  # e1..e5


def test_counter_labels_are_bounded() -> None:
    """Past max_sources distinct sources, new ones count under '(other)'."""
    m = Metrics()
    u = UnknownSources(m, Clock(), max_sources=2)
    for s in ("a.1", "a.2", "a.3", "a.4", "a.1"):
        u.observe(s, "e")
    assert m.unknown_source_events.labels("a.1")._value.get() == 2
    assert m.unknown_source_events.labels(OTHER)._value.get() == 2


def _log_corpus(path: Path) -> None:
    """The corpus' completions through the planner into an SQLite execution log."""
    cfg = load_config(ROUTES)
    at = datetime(2026, 1, 15, 23, 50, tzinfo=UTC)
    with SqliteExecutionLog(path) as log:
        for case in CASES:
            if not case.completion:
                continue
            ev = normalize_event(case.body, cfg.registry)
            decisions = plan(cfg.registry, cfg.relations, ev, at.date())
            log.record_decisions(ev, decisions, at, registry=cfg.registry, relations=cfg.relations)
        # a second event from the same unknown source
        ev = normalize_event(
            {**case_body("p2_referee_unknown"), "execution_id": "k2"}, cfg.registry
        )
        log.record_decisions(
            ev,
            plan(cfg.registry, cfg.relations, ev, at.date()),
            at,
            registry=cfg.registry,
            relations=cfg.relations,
        )


def case_body(name: str) -> dict[str, object]:
    [case] = [c for c in CASES if c.name == name]
    return dict(case.body)


def test_report_lists_unknown_sources(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`report` text, --json and --html list each unknown source with its event count."""
    log = tmp_path / "log.sqlite"
    _log_corpus(log)
    got = {u.source: u.events for u in unknown_sources(read_log(log))}
    assert got == {"nba_raw.nbac_referee_game_assignments": 2, "nba_raw.bdl_injuries": 1}
    html = tmp_path / "r.html"
    assert main(["report", "--log", str(log), "--config", str(ROUTES), "--html", str(html)]) == 0
    text = capsys.readouterr().out
    assert "unknown sources (3 events)" in text
    assert [ln.split()[:2] for ln in text.splitlines() if ln.startswith("  nba_raw.")] == [
        ["nba_raw.nbac_referee_game_assignments", "2"],
        ["nba_raw.bdl_injuries", "1"],
    ]
    page = html.read_text(encoding="utf-8")
    assert (
        'id="unknown-sources"' in page
        and "nba_raw.nbac_referee_game_assignments</td><td>2<" in page
    )
    assert main(["report", "--log", str(log), "--config", str(ROUTES), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [(u["source"], u["events"]) for u in doc["unknown_sources"]] == [
        ("nba_raw.nbac_referee_game_assignments", 2),
        ("nba_raw.bdl_injuries", 1),
    ]


def test_report_without_unknown_sources_has_no_section(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A log with no unknown_source decision prints no such section and an empty list."""
    cfg = load_config(ROUTES)
    at = datetime(2026, 1, 15, 23, 50, tzinfo=UTC)
    log = tmp_path / "log.sqlite"
    with SqliteExecutionLog(log) as w:
        ev = normalize_event(case_body("p2_injury_report"), cfg.registry)
        w.record_decisions(
            ev,
            plan(cfg.registry, cfg.relations, ev, at.date()),
            at,
            registry=cfg.registry,
            relations=cfg.relations,
        )
    assert main(["report", "--log", str(log), "--config", str(ROUTES)]) == 0
    assert "unknown sources" not in capsys.readouterr().out
    assert main(["report", "--log", str(log), "--config", str(ROUTES), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["unknown_sources"] == []

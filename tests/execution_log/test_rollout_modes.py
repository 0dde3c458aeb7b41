"""A processor without runs takes the mode the daemon logged for it at its start (review
defect 4): ``serve --shadow`` is not in routes.yaml, so routes.yaml cannot say; a log that
recorded no mode (another writer, BigQuery) says ``unknown``, never ``live``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from test_rollout_coverage import PGS, ROUTES, boxscore, history, rollout, shadow_log

from scoperouter.execution_log import SqliteExecutionLog
from scoperouter.execution_log.reader import read_log

LIVE_ROUTES = ROUTES.replace("  mode: shadow\n", "  mode: live\n")


@pytest.mark.parametrize(
    ("logged", "mode", "decision", "why"),
    [
        pytest.param({PGS: "shadow"}, "shadow", "no-go", "no routed run", id="logged-shadow"),
        pytest.param({PGS: "live"}, "live", "live", "already live", id="logged-live"),
        pytest.param(None, "unknown", "no-go", "no routed run", id="nothing-logged"),
        pytest.param({"other": "live"}, "unknown", "no-go", "no routed run", id="not-named"),
    ],
)
def test_mode_without_runs_is_the_logged_one(
    logged: dict[str, str] | None,
    mode: str,
    decision: str,
    why: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """No runs: the logged mode, else unknown -- not routes.yaml's (live here)."""
    args = shadow_log(tmp_path, [boxscore(1)], history([1]), routes=LIVE_ROUTES)
    if logged is not None:
        with SqliteExecutionLog(args[1]) as lg:
            lg.record_modes(logged)
    ro = rollout(args, capsys)
    p = {x["processor"]: x for x in ro["processors"]}[PGS]
    assert (p["mode"], p["decision"]) == (mode, decision)
    assert why in p["why"]
    assert PGS in ro["by_mode"][mode]["processors"]


def test_record_modes_keeps_the_last_start(tmp_path: Path) -> None:
    """Each start replaces the modes kept; the reader returns them (None before any)."""
    path = tmp_path / "log.sqlite"
    SqliteExecutionLog(path).close()  # a log, no mode recorded yet
    assert read_log(path).modes is None
    with SqliteExecutionLog(path) as lg:
        lg.record_modes({PGS: "shadow", "x": "shadow"})
    with SqliteExecutionLog(path) as lg:
        lg.record_modes({PGS: "live"})
    got: Any = read_log(path).modes
    assert dict(got) == {PGS: "live"}


@pytest.mark.parametrize(
    ("routes_mode", "mode", "shadow_runs", "live_runs"),
    [
        pytest.param("shadow", "shadow", 2, 0, id="routes-shadow"),
        pytest.param("live", "live", 0, 2, id="routes-live"),
        pytest.param(None, "unknown", 0, 0, id="no-config"),
    ],
)
def test_replayed_runs_take_the_mode_of_routes_yaml(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    routes_mode: str | None,
    mode: str,
    shadow_runs: int,
    live_runs: int,
) -> None:
    """Runs written by ``scoperouter replay`` (status 'replayed': nothing was sent) are not
    live: their processor's mode is routes.yaml's (unknown without it), never 'live' by
    default -- under ``mode: shadow`` the processor is judged, not 'already live'."""
    from logsupport import one_processor_registry

    from scoperouter.cli import main

    routes = one_processor_registry(tmp_path, players=4, extra="report: {shadow_days: 1}\n")
    if routes_mode is not None:
        text = routes.read_text().replace("defaults:\n", f"defaults:\n  mode: {routes_mode}\n")
        routes.write_text(text)
    events = [
        {"event_id": f"e{i}", "source": "raw.stats", "game_date": f"2025-11-1{8 + i}",
         "affected_entities": {"players": [f"p{i}"]}, "produced_at": f"2025-11-1{8 + i}T09:00:00Z"}
        for i in range(2)
    ]  # fmt: skip
    (tmp_path / "ev.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    log = str(tmp_path / "log.sqlite")
    argv = ["replay", str(tmp_path / "ev.jsonl"), "--config", str(routes), "--log", log]
    assert main([*argv, "--outbox", str(tmp_path / "ob.jsonl")]) == 0
    assert {d.dispatch_status for d in read_log(log).dispatches} == {"replayed"}
    capsys.readouterr()
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")  # no ./routes.yaml: no registry without --config
    report = ["report", "--log", log, "--json"]
    report += ["--config", str(routes)] if routes_mode is not None else []
    assert main(report) == 0
    ro = json.loads(capsys.readouterr().out)["rollout"]
    p = {x["processor"]: x for x in ro["processors"]}["psum"]
    assert (p["mode"], p["runs_shadow"], p["runs_live"]) == (mode, shadow_runs, live_runs)
    assert (p["decision"] == "live") is (mode == "live")
    assert "psum" in ro["by_mode"][mode]["processors"]

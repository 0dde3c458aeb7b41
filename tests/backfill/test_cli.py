"""``scoperouter backfill``: --dry-run plan and estimate (text and --json), usage errors,
progress output (plain lines, --json events) and the run/resume cycle on the reference
pipeline."""

from __future__ import annotations

import io
import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from backfill_support import REPO

from scoperouter.backfill.plan import Request, plan_backfill
from scoperouter.backfill.progress import Progress
from scoperouter.cli import main
from scoperouter.execution_log.sqlite import SqliteExecutionLog
from scoperouter.processor_registry.loader import load_config

BASE = ["backfill", "--config", str(REPO / "routes.yaml"), "--as-of", "2025-11-22"]


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    rc = main(args)
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_dry_run_json_has_plan_and_estimate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--dry-run --json: runs per processor, lookback runs, per-processor estimate; no run."""
    rc, out, _ = _run([*BASE, "--start", "2025-11-10", "--end", "2025-11-12", "--phases", "3-4",
                       "--state-dir", str(tmp_path), "--dry-run", "--json"], capsys)  # fmt: skip
    assert rc == 0
    got = json.loads(out)
    assert (
        got["plan"]["runs"] == got["estimate"]["runs"] == sum(got["plan"]["per_processor"].values())
    )
    assert got["plan"]["lookback_runs"] > 0
    assert {p["phase"] for p in got["estimate"]["processors"]} == {3, 4}
    assert got["estimate"]["range_only"]["runs"] == 3 * len(got["estimate"]["processors"])
    assert all(p["cost_source"] == "default" for p in got["estimate"]["processors"])
    # a dry run stores the plan (so the real run resumes it) but runs nothing
    rc, out, _ = _run([*BASE, "--start", "2025-11-10", "--end", "2025-11-12", "--phases", "3-4",
                       "--state-dir", str(tmp_path), "--dry-run", "--json"], capsys)  # fmt: skip
    assert json.loads(out)["resumed"] is True


def test_dry_run_uses_the_fitted_cost_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With completions in the execution log, hours come from report's least-squares fit."""
    log = SqliteExecutionLog(tmp_path / "execution_log.sqlite")
    for rows, secs in ((100, 12.0), (300, 32.0), (450, 47.0)):
        log.record_completion("player_game_summary", date(2025, 11, 1), trigger_id=None,
                              records_processed=rows, entities_changed=None, duration_s=secs)  # fmt: skip
    log.close()
    rc, out, _ = _run([*BASE, "--start", "2025-11-10", "--end", "2025-11-11", "--processors",
                       "player_game_summary", "--state-dir", str(tmp_path), "--dry-run"], capsys)  # fmt: skip
    assert rc == 0
    assert "measured (least squares over 3 completions)" in out
    (line,) = [x for x in out.splitlines() if x.startswith("player_game_summary")]
    runs, rows, hours = line.split()[2:5]
    assert (runs, rows) == ("2", "600")  # median measured size 300 x 2 runs
    assert float(hours) == pytest.approx(2 * (2.0 + 0.1 * 300) / 3600, abs=0.01)


@pytest.mark.parametrize(
    ("extra", "rc", "err"),
    [
        (["--start", "2025-11-10", "--end", "2025-11-09"], 2, "before --start"),
        (["--start", "2025-11-10", "--end", "2025-11-11", "--processors", "nope"], 2, "unknown"),
        (["--start", "1025-11-10", "--end", "2025-11-11", "--dry-run"], 2, "more than 3660 days"),
        (
            ["--start", "2025-11-10", "--end", "2025-11-11", "--executor", "reference"],
            1,
            "--warehouse",
        ),
    ],
)
def test_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], rc: int, err: str
) -> None:
    """Bad ranges and selections are usage errors (2); a missing warehouse is 1."""
    got, _out, stderr = _run([*BASE, "--state-dir", str(tmp_path), *extra], capsys)
    assert got == rc and err in stderr


@pytest.mark.parametrize(
    "argv",
    [
        ["--phases", "6-3"],
        ["--phases", "x"],
        ["--phases", "3-"],  # was read as phase 3 alone
        ["--processors", "a", "--from", "b"],
        # nothing could ever start: the backfill ended at once, stored "done", exit 0
        ["--max-running", "0"],
        ["--max-running", "-1"],
        ["--max-attempts", "0"],
        ["--max-attempts", "-2"],
    ],
)
def test_usage_errors_exit_2(argv: list[str]) -> None:
    """Malformed options are argparse usage errors."""
    with pytest.raises(SystemExit) as exc:
        main([*BASE, "--start", "2025-11-10", "--end", "2025-11-11", *argv])
    assert exc.value.code == 2


def _events() -> list[dict[str, Any]]:
    return [
        {"event": "start", "backfill_id": "b", "resumed": True, "counts": {"done": 1},
         "done_by_phase": {"3": 1}},
        {"event": "run", "run": "player_game_summary@2025-11-02", "attempt": 1},
        {"event": "retrying", "run": "player_game_summary@2025-11-02", "phase": 3, "attempt": 1,
         "error": "boom"},
        {"event": "done", "run": "player_game_summary@2025-11-02", "phase": 3, "attempt": 2,
         "rows": 5},
        {"event": "end", "backfill_id": "b", "status": "done",
         "counts": {"done": 2, "failed": 0, "blocked": 0}, "rows": 5, "seconds": 0.5},
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("mode", "want"),
    [
        ("plain", ["backfill b: 2 runs (resumed: 1 runs already done)",
                   "retrying: player_game_summary@2025-11-02 attempt 1: boom",
                   "2/2 done, 0 failed, 0 waiting | P3 2/2",
                   "backfill b done: 2 done, 0 failed, 0 blocked; 5 entity rows, 0.5 s of runs"]),
        ("json", [json.dumps(e) for e in _events()]),
        ("tty", ["backfill b: 2 runs (resumed: 1 runs already done)",
                 "\r2/2 done, 0 failed, 0 waiting | P3 2/2",
                 "backfill b done: 2 done, 0 failed, 0 blocked; 5 entity rows, 0.5 s of runs"]),
    ],
)  # fmt: skip
def test_progress_output(mode: str, want: list[str]) -> None:
    """Plain lines (not a terminal) and --json events; the plain status line counts per phase."""
    reg = load_config(REPO / "routes.yaml", with_relations=False).registry
    plan = plan_backfill(reg, Request(date(2025, 11, 1), date(2025, 11, 2),
                                      processors=("player_game_summary",)), as_of=date(2025, 11, 5))  # fmt: skip
    buf = io.StringIO()
    prog = Progress(plan, mode=mode, out=buf, clock=lambda: 1.0)
    for ev in _events():
        prog(ev)
    lines = buf.getvalue().rstrip("\n").split("\n")  # a terminal line starts with \r
    assert len(lines) == len(want)
    assert all(line.startswith(w) for line, w in zip(lines, want, strict=True)), lines


def test_targets_executor_sends_backfill_triggers_in_dependency_order(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Default executor, outbox targets: one reason-backfill trigger per run, each after the
    triggers of every run it reads; the same command again sends nothing."""
    import shutil

    shutil.copy(REPO / "routes.yaml", tmp_path / "routes.yaml")
    shutil.copytree(REPO / "data", tmp_path / "data")
    monkeypatch.chdir(tmp_path)
    argv = ["backfill", "--start", "2025-11-10", "--end", "2025-11-11", "--from",
            "upcoming_player_game_context", "--as-of", "2025-11-14", "--json"]  # fmt: skip
    rc, _out, err = _run(argv, capsys)
    assert rc == 0, err
    lines = (tmp_path / ".scoperouter" / "outbox.jsonl").read_text().splitlines()
    sent = [json.loads(x) for x in lines]
    assert {t["reason"] for t in sent} == {"backfill"} and {t["scope"] for t in sent} == {"date"}
    pos = {f"{t['processor']}@{t['game_date']}": i for i, t in enumerate(sent)}
    reg = load_config(tmp_path / "routes.yaml").registry
    plan = plan_backfill(reg, Request(date(2025, 11, 10), date(2025, 11, 11),
                                      from_=("upcoming_player_game_context",)),
                         as_of=date(2025, 11, 14), relations=load_config(tmp_path / "routes.yaml").relations)  # fmt: skip
    assert sorted(pos) == sorted(r.key for r in plan.runs)
    for r in plan.runs:
        for d in r.deps:
            for k in range((d.hi - d.lo).days + 1):
                assert pos[f"{d.upstream}@{(d.lo + timedelta(days=k)).isoformat()}"] < pos[r.key]
    rc, out, _ = _run(argv, capsys)
    assert rc == 0 and '"executed": 0' in out.splitlines()[-1]
    assert len((tmp_path / ".scoperouter" / "outbox.jsonl").read_text().splitlines()) == len(lines)


def test_second_process_on_the_same_backfill_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """While the backfill's run lock is held, the same command exits 1 and runs nothing."""
    from scoperouter.backfill.store import BackfillStore

    argv = [*BASE, "--start", "2025-11-10", "--end", "2025-11-10", "--processors",
            "league_rankings", "--state-dir", str(tmp_path)]  # fmt: skip
    assert _run([*argv, "--dry-run", "--json"], capsys)[0] == 0
    store = BackfillStore(tmp_path / "backfills.sqlite")
    (bid,) = store.ids()
    with store.running(bid):
        rc, _out, err = _run(argv, capsys)
    assert rc == 1 and "is running in process" in err
    assert {r.state for r in store.runs(bid)} == {"waiting"}
    store.close()
    outbox = tmp_path / "outbox.jsonl"
    assert not outbox.exists() or outbox.read_text() == ""


def test_resuming_with_a_later_as_of_says_which_dates_the_stored_plan_leaves_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A backfill resumed as of a later date keeps its stored plan and names the dates after its as-of."""
    args = ["backfill", "--config", str(REPO / "routes.yaml"), "--start", "2025-11-10",
            "--end", "2025-11-12", "--phases", "3-4", "--state-dir", str(tmp_path), "--dry-run"]  # fmt: skip
    rc, out, err = _run([*args, "--as-of", "2025-11-22", "--json"], capsys)
    assert rc == 0 and "stale_after" not in json.loads(out) and "warning: backfill" not in err
    rc, out, err = _run([*args, "--as-of", "2025-11-25", "--json"], capsys)
    got = json.loads(out)
    assert rc == 0 and got["resumed"] is True and got["as_of"] == "2025-11-22"
    assert got["stale_after"] == {"start": "2025-11-23", "end": "2025-11-25"}
    assert "warning: backfill" in err and "--start 2025-11-23 --end 2025-11-25" in err
    rc, _out, err = _run([*args, "--as-of", "2025-11-22"], capsys)  # the same as-of again
    assert rc == 0 and "warning: backfill" not in err


def test_resuming_a_plan_whose_changes_end_before_its_as_of_names_no_stale_date(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Resumed later, a backfill whose re-run dates no lookback reads up to its as-of (it
    ends seven weeks before) names no stale date (it named every date after its as-of and
    told the operator to backfill them, because a selected processor has a lookback)."""
    args = ["backfill", "--config", str(REPO / "routes.yaml"), "--start", "2025-10-01",
            "--end", "2025-10-02", "--processors", "upcoming_team_game_context",
            "--state-dir", str(tmp_path), "--dry-run", "--json"]  # fmt: skip
    rc, out, _err = _run([*args, "--as-of", "2025-11-20"], capsys)
    assert rc == 0
    assert json.loads(out)["plan"]["last_day"] == {"upcoming_team_game_context": "2025-10-02"}
    rc, out, err = _run([*args, "--as-of", "2025-11-25"], capsys)
    got = json.loads(out)
    assert rc == 0 and got["resumed"] is True and "stale_after" not in got
    assert "warning: backfill" not in err


def test_resuming_with_a_later_as_of_names_the_requested_dates_the_stored_plan_cut_off(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Requested dates past the stored plan's as-of are named on resume, lookbacks or not."""
    args = ["backfill", "--config", str(REPO / "routes.yaml"), "--start", "2025-11-10",
            "--end", "2025-11-20", "--processors", "player_game_summary", "league_rankings",
            "--state-dir", str(tmp_path), "--dry-run", "--json"]  # fmt: skip
    rc, out, err = _run([*args, "--as-of", "2025-11-15"], capsys)
    first = json.loads(out)
    assert rc == 0 and first["plan"]["last_day"]["player_game_summary"] == "2025-11-15"
    # planned new, the dates its as-of cuts off are named at once (not only on resume)
    assert first["cut_off"] == {"start": "2025-11-16", "end": "2025-11-20"}
    assert "--end 2025-11-20 is after the as-of date 2025-11-15" in err
    rc, out, err = _run([*args, "--as-of", "2025-11-25"], capsys)
    got = json.loads(out)
    assert rc == 0 and got["resumed"] is True and got["as_of"] == "2025-11-15"
    assert got["stale_after"] == {"start": "2025-11-16", "end": "2025-11-20"}
    assert "cut_off" not in got  # resumed: stale_after names them
    assert "warning: backfill" in err and "--start 2025-11-16 --end 2025-11-20" in err


@pytest.mark.parametrize(
    ("end", "as_of", "dry", "cut_off"),
    [
        ("2025-11-20", "2025-11-20", True, None),  # the range ends on the as-of date
        ("2025-11-22", "2025-11-20", True, ("2025-11-21", "2025-11-22")),
        ("2025-11-22", "2025-11-20", False, ("2025-11-21", "2025-11-22")),  # run, --json events
        ("2025-11-19", "2025-11-20", False, None),
    ],
)
def test_a_new_backfill_names_the_requested_dates_after_as_of(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    end: str,
    as_of: str,
    dry: bool,
    cut_off: tuple[str, str] | None,
) -> None:
    """--end past --as-of: a warning on stderr and cut_off in --json (the dry run's answer,
    the run's start event), with the command that runs those dates later; none otherwise."""
    argv = ["backfill", "--config", str(REPO / "routes.yaml"), "--start", "2025-11-18",
            "--end", end, "--as-of", as_of, "--processors", "league_rankings",
            "--state-dir", str(tmp_path), "--json", *(["--dry-run"] if dry else [])]  # fmt: skip
    rc, out, err = _run(argv, capsys)
    assert rc == 0
    got = json.loads(out) if dry else json.loads(out.splitlines()[0])
    assert got.get("cut_off") == (
        None if cut_off is None else {"start": cut_off[0], "end": cut_off[1]}
    )
    if cut_off is None:
        assert "is after the as-of date" not in err
    else:
        assert f"--end {end} is after the as-of date {as_of}" in err
        assert f"--start {cut_off[0]} --end {cut_off[1]} --processors league_rankings" in err


@pytest.mark.parametrize(
    ("extra", "warned"),
    [
        ([], True),  # routes.yaml's targets are the outbox: queued, not run
        (["--completion", "ack"], True),
        (["--completion", "event"], False),
        (["--executor", "reference"], False),
    ],
)
def test_ack_with_targets_that_only_queue_the_trigger_is_warned(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], warned: bool
) -> None:
    """Completion ack on Pub/Sub or outbox targets says that done means sent, not run."""
    argv = [*BASE, "--state-dir", str(tmp_path), "--start", "2025-11-10", "--end",
            "2025-11-11", "--from", "player_composite_factors", "--dry-run", "--json", *extra]  # fmt: skip
    rc, _out, err = _run(argv, capsys)
    assert rc == 0
    assert ("completion 'ack' with targets that only queue" in err) is warned, err
    if warned:
        assert "player_composite_factors" in err and "ml_feature_store" in err


@pytest.mark.parametrize("how", ["flag", "env"])
def test_a_keyword_dsn_state_is_refused_before_anything_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    """--state / $SCOPEROUTER_STATE as 'host=... password=...' exits 1 without its password (serve refuses it): never a backfill run without the replicas' claims."""
    dsn = "host=127.0.0.1 port=1 user=u password=S3cretPW dbname=db"
    argv = [*BASE, "--start", "2025-11-10", "--end", "2025-11-10", "--processors",
            "league_rankings", "--state-dir", str(tmp_path)]  # fmt: skip
    if how == "flag":
        argv += ["--state", dsn]
    else:
        monkeypatch.setenv("SCOPEROUTER_STATE", dsn)
    rc, out, err = _run(argv, capsys)
    assert rc == 1 and "keyword-form connection string" in err, err
    assert "S3cretPW" not in out + err
    outbox = tmp_path / "outbox.jsonl"
    assert not outbox.exists() or outbox.read_text() == ""

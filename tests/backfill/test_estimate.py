"""The dry-run cost estimate (``scoperouter.backfill.estimate``): its rows are full-date
sizes, its runs are the runs the backfill then executes, and it says when it has no data."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from backfill_support import REPO

from scoperouter.backfill.estimate import estimate
from scoperouter.backfill.executor import CallableExecutor
from scoperouter.backfill.plan import Request, plan_backfill
from scoperouter.backfill.service import execute, prepare
from scoperouter.cli import main
from scoperouter.execution_log import SqliteExecutionLog
from scoperouter.execution_log.reader import read_log
from scoperouter.messages.models import Trigger
from scoperouter.processor_registry.compiled import CompiledRegistry
from scoperouter.processor_registry.loader import load_config

PGS = "player_game_summary"
D1, D2 = date(2025, 11, 1), date(2025, 11, 2)
AT = datetime(2025, 11, 3, 12, tzinfo=UTC)


@pytest.fixture(scope="module")
def registry() -> CompiledRegistry:
    """The NBA reference registry (routes.yaml)."""
    return load_config(REPO / "routes.yaml", with_relations=False).registry


def _trigger(tid: str, day: date, ids: tuple[str, ...] | None) -> Trigger:
    return Trigger(
        trigger_id=tid,
        processor=PGS,
        game_date=day,
        start_date=day,
        end_date=day,
        scope="entities" if ids else "date",
        entity_type="player" if ids else None,
        entity_ids=ids,
        reason="entity_scope" if ids else "date_scope",
    )


def _log_run(log: SqliteExecutionLog, tid: str, day: date, ids: tuple[str, ...] | None,
             records: int) -> None:  # fmt: skip
    log.record_dispatch(
        _trigger(tid, day, ids), status="ok", attempts=1, latency_ms=1.0, dispatched_at=AT
    )
    log.record_completion(PGS, day, trigger_id=tid, records_processed=records,
                          entities_changed=None, duration_s=1.0 + records / 15)  # fmt: skip


@pytest.mark.parametrize(
    ("runs", "want"),
    [
        # D1: one full-date run (450 rows) among four entity-scope runs of 2-5 players;
        # D2: only entity-scope runs -> the full-date median of the other days
        (
            [
                ("d1", D1, None, 450),
                ("e1", D1, ("a", "b"), 2),
                ("e2", D1, ("a", "b", "c"), 3),
                ("e3", D1, ("c", "d", "e"), 3),
                ("e4", D1, ("a", "b", "c", "d", "e"), 5),
                ("e5", D2, ("a", "b", "c"), 3),
            ],
            {D1: (450, "measured"), D2: (450, "measured-median")},
        ),
        # only entity-scope runs in the log: no full-date size is known (universe / unknown)
        (
            [("e1", D1, ("a", "b"), 2), ("e2", D2, ("a", "b", "c"), 3)],
            {D1: (0, "unknown"), D2: (0, "unknown")},
        ),
        # completions whose trigger is not in the log (e.g. a backfill's own date runs,
        # sent by its executor) count as full-date runs
        ([("x1", D1, None, 410)], {D1: (410, "measured"), D2: (410, "measured-median")}),
    ],
)
def test_entity_scope_completions_are_not_full_date_sizes(
    registry: CompiledRegistry,
    tmp_path: Path,
    runs: list[tuple[str, date, tuple[str, ...] | None, int]],
    want: dict[date, tuple[int, str]],
) -> None:
    """A backfill run is a date-scope run: its rows come from the log's date-scope runs,
    never from the few entities an entity-scope run processed."""
    path = tmp_path / "log.sqlite"
    with SqliteExecutionLog(path) as log:
        for tid, day, ids, records in runs:
            if tid.startswith("x"):  # a completion with no dispatch row
                log.record_completion(PGS, day, trigger_id=tid, records_processed=records,
                                      entities_changed=None, duration_s=30.0)  # fmt: skip
            else:
                _log_run(log, tid, day, ids, records)
    plan = plan_backfill(registry, Request(D1, D2, processors=(PGS,)), as_of=date(2025, 11, 5))
    (got,) = estimate(plan, registry, read_log(path)).processors
    assert got.runs == 2
    assert got.rows == sum(n for n, _ in want.values())
    assert got.rows_source == "+".join(sorted({s for _, s in want.values()}))
    assert got.rows_unknown_runs == sum(1 for _, s in want.values() if s == "unknown")


RANGE = ["--start", "2025-11-10", "--end", "2025-11-12", "--phases", "3-4"]
AS_OF = date(2025, 11, 22)


def _dry_run(state: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    args = ["backfill", "--config", str(REPO / "routes.yaml"), "--as-of", AS_OF.isoformat(),
            *RANGE, "--state-dir", str(state), "--dry-run", "--json"]  # fmt: skip
    assert main(args) == 0
    out: dict[str, object] = json.loads(capsys.readouterr().out)
    return out


def _invoke(state: Path, failing: frozenset[str]) -> Counter[str]:
    """One invocation of the backfill of RANGE (one attempt per run, ``failing`` processors
    fail); returns the runs it executed per processor."""
    cfg = load_config(REPO / "routes.yaml")
    req = Request(date(2025, 11, 10), date(2025, 11, 12), phases=(3, 4))
    prep = prepare(cfg.registry, cfg.relations, req, state_dir=state, as_of=AS_OF)
    ran: Counter[str] = Counter()

    def run(processor: str, day: date) -> int:
        ran[processor] += 1
        if processor in failing:
            raise RuntimeError("boom")
        return 1

    try:
        asyncio.run(execute(prep, cfg.registry, CallableExecutor(run), max_attempts=1))
    finally:
        prep.store.close()
    return ran


@pytest.mark.parametrize(
    "before",
    [
        pytest.param((), id="new"),
        pytest.param((frozenset({"upcoming_player_game_context"}),), id="resumed-after-failures"),
        pytest.param((frozenset(),), id="resumed-all-done"),
    ],
)
def test_estimate_counts_the_runs_the_backfill_then_executes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], before: tuple[frozenset[str], ...]
) -> None:
    """The dry-run's runs (in total and per processor) are those the same command then
    executes: a resumed backfill's runs stored done are not run again, nor estimated."""
    for failing in before:
        _invoke(tmp_path, failing)
    est = _dry_run(tmp_path, capsys)["estimate"]
    assert isinstance(est, dict)
    ran = _invoke(tmp_path, frozenset())
    assert est["runs"] == sum(ran.values())
    assert {p["processor"]: p["runs"] for p in est["processors"] if p["runs"]} == dict(ran)
    if not ran:
        assert est["hours"] == est["wall_hours"] == 0


def _cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    rc = main(["backfill", "--config", str(REPO / "routes.yaml"), "--as-of", AS_OF.isoformat(),
               *args])  # fmt: skip
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.mark.parametrize(
    ("log", "at_default", "err"),
    [
        pytest.param("missing.sqlite", False, "no execution log at", id="--log-missing"),
        pytest.param("garbage.sqlite", False, "not a readable SQLite", id="--log-invalid"),
        pytest.param("garbage.sqlite", True, "not a readable SQLite", id="default-log-invalid"),
    ],
)
def test_dry_run_fails_on_a_log_it_cannot_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], log: str, at_default: bool, err: str
) -> None:
    """A --log that does not exist, or a log that is not one, is an error (exit 1, nothing
    planned), not an estimate from the default cost as if there were no history."""
    state = tmp_path / "state"
    state.mkdir()
    path = state / "execution_log.sqlite" if at_default else tmp_path / log
    if log.startswith("garbage"):
        path.write_bytes(b"not a database" * 100)
    extra = [] if at_default else ["--log", str(path)]
    rc, out, stderr = _cli([*RANGE, "--state-dir", str(state), "--dry-run", *extra], capsys)
    assert (rc, out) == (1, "")
    assert stderr.startswith("error: ") and err in stderr
    assert not (state / "backfills.sqlite").exists()


@pytest.mark.parametrize(
    ("processors", "unknown"),
    [
        pytest.param(["league_rankings"], 2, id="date-granularity"),
        pytest.param(["league_rankings", "player_game_summary"], 2, id="mixed"),
        pytest.param(["player_game_summary"], 0, id="all-known"),
    ],
)
def test_dry_run_says_when_rows_are_unknown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], processors: list[str], unknown: int
) -> None:
    """Runs with no size data (no completions, no entity universe: a date-granularity
    processor) are counted in the totals' runs_with_unknown_rows and named in the text, so
    rows and hours are not read as complete figures; no execution log is said too."""
    base = ["--start", "2025-11-10", "--end", "2025-11-11", "--processors", *processors,
            "--state-dir", str(tmp_path), "--dry-run"]  # fmt: skip
    rc, out, _ = _cli([*base, "--json"], capsys)
    assert rc == 0
    got = json.loads(out)
    assert got["estimate"]["runs_with_unknown_rows"] == unknown
    assert got["log"] is None
    rc, out, _ = _cli(base, capsys)
    assert rc == 0
    assert f"no execution log at {tmp_path / 'execution_log.sqlite'}" in out
    notes = [line for line in out.splitlines() if "unknown rows" in line]
    if unknown:
        (note,) = notes
        assert note.startswith(f"{unknown} runs with unknown rows (league_rankings)")
        assert "lower bound" in note
    else:
        assert notes == []


@pytest.mark.parametrize("bad", [float("inf"), float("nan"), -5.0, 0.0])
def test_estimate_is_finite_with_a_bad_duration_in_the_log(
    registry: CompiledRegistry, tmp_path: Path, bad: float
) -> None:
    """A completion with a duration that is no measurement (infinite, NaN, negative, 0 =
    unknown) is left out of the fit: hours stay finite and non-negative, as without it."""
    path = tmp_path / "log.sqlite"
    with SqliteExecutionLog(path) as log:
        for n, secs in ((100, 12.0), (300, bad), (450, 47.0), (200, 22.0)):
            log.record_completion(PGS, D1, trigger_id=None, records_processed=n,
                                  entities_changed=None, duration_s=secs)  # fmt: skip
    plan = plan_backfill(registry, Request(D1, D2, processors=(PGS,)), as_of=date(2025, 11, 5))
    est = estimate(plan, registry, read_log(path))
    (p,) = est.processors
    assert p.cost.overhead_s == pytest.approx(2.0)
    assert p.cost.seconds_per_entity == pytest.approx(0.1)
    assert 0 <= est.hours < float("inf") and 0 <= est.wall_hours < float("inf")
    assert "NaN" not in json.dumps(est.to_json()) and "Infinity" not in json.dumps(est.to_json())


@pytest.mark.parametrize(("max_running", "serial"), [(1, True), (8, False)])
def test_wall_clock_honours_max_running(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], max_running: int, serial: bool
) -> None:
    """--max-running reaches the wall-clock simulation: one run at a time takes the sum of
    the runs' hours; eight in flight take less."""
    rc, out, _ = _cli([*RANGE, "--state-dir", str(tmp_path), "--dry-run", "--json",
                       "--max-running", str(max_running)], capsys)  # fmt: skip
    assert rc == 0
    est = json.loads(out)["estimate"]
    assert est["hours"] > 0
    if serial:
        assert est["wall_hours"] == pytest.approx(est["hours"], abs=1e-3)
    else:
        assert 0 < est["wall_hours"] < est["hours"] / 2


def _shadow_config(tmp: Path, shadow: tuple[str, ...]) -> Path:
    """The repository's routes.yaml (and its relation data) in ``tmp``, with ``shadow``
    processors in ``mode: shadow``."""
    import shutil

    text = (REPO / "routes.yaml").read_text()
    for name in shadow:
        head = f"\n  {name}:\n"
        assert text.count(head) == 1, name
        text = text.replace(head, f"{head}    mode: shadow\n")
    (tmp / "routes.yaml").write_text(text)
    shutil.copytree(REPO / "data", tmp / "data")
    return tmp / "routes.yaml"


SHADOW = ("player_game_summary", "team_defense_zone_analysis")


@pytest.mark.parametrize(
    ("executor", "shadow_counted"),
    [
        pytest.param("targets", False, id="targets-skips-shadow"),
        pytest.param("reference", True, id="reference-runs-every-processor"),
    ],
)
def test_dry_run_leaves_out_shadow_processors_the_executor_skips(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], executor: str, shadow_counted: bool
) -> None:
    """Shadow processors, which the targets executor marks done without sending anything,
    are reported apart (runs_shadow), not in the runs, rows or hours to run."""
    config = _shadow_config(tmp_path, SHADOW)
    argv = ["backfill", "--config", str(config), "--as-of", AS_OF.isoformat(), *RANGE,
            "--state-dir", str(tmp_path / "state"), "--executor", executor,
            "--dry-run", "--json"]  # fmt: skip
    assert main(argv) == 0
    got = json.loads(capsys.readouterr().out)
    est, per_plan = got["estimate"], got["plan"]["per_processor"]
    by = {p["processor"]: p for p in est["processors"]}
    shadow_runs = sum(per_plan[n] for n in SHADOW)
    if shadow_counted:
        assert est["runs"] == got["plan"]["runs"] and est["runs_shadow"] == 0
        assert est["shadow_processors"] == []
    else:
        assert est["runs"] == got["plan"]["runs"] - shadow_runs
        assert est["runs_shadow"] == shadow_runs
        assert est["shadow_processors"] == sorted(SHADOW)
        for n in SHADOW:
            assert (by[n]["runs"], by[n]["runs_shadow"]) == (0, per_plan[n])
            assert by[n]["entity_rows"] == by[n]["hours"] == by[n]["range_only"]["runs"] == 0
    assert est["range_only"]["runs"] == 3 * (len(by) - (0 if shadow_counted else len(SHADOW)))


def test_estimate_runs_are_the_triggers_a_backfill_with_shadow_processors_sends(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Targets executor: a shadow processor's runs are done at once, skipped, sent nothing;
    the dry run's runs are exactly the triggers sent and its shadow runs the skipped ones."""
    config = _shadow_config(tmp_path, SHADOW)
    state = tmp_path / "state"
    argv = ["backfill", "--config", str(config), "--as-of", AS_OF.isoformat(), *RANGE,
            "--state-dir", str(state), "--json"]  # fmt: skip
    assert main([*argv, "--dry-run"]) == 0
    est = json.loads(capsys.readouterr().out)["estimate"]
    assert main(argv) == 0
    events = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    sent = Counter(
        json.loads(x)["processor"] for x in (state / "outbox.jsonl").read_text().splitlines()
    )
    skipped = Counter(e["run"].split("@")[0] for e in events if e.get("skipped") == "shadow")
    assert set(skipped) == set(SHADOW) and not set(sent) & set(SHADOW)
    assert est["runs"] == sum(sent.values())
    assert {p["processor"]: p["runs"] for p in est["processors"] if p["runs"]} == dict(sent)
    assert est["runs_shadow"] == sum(skipped.values())
    assert {p["processor"]: p["runs_shadow"] for p in est["processors"] if p["runs_shadow"]} == (
        dict(skipped)
    )


def test_dry_run_text_names_the_shadow_processors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The text estimate says, on a line of its own, which shadow processors are not run."""
    config = _shadow_config(tmp_path, SHADOW)
    argv = ["backfill", "--config", str(config), "--as-of", AS_OF.isoformat(), *RANGE,
            "--state-dir", str(tmp_path / "state"), "--dry-run"]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    (note,) = [line for line in out.splitlines() if "shadow processors not run" in line]
    assert note.startswith(f"2 shadow processors not run ({', '.join(sorted(SHADOW))})")
    for n in SHADOW:
        (line,) = [x for x in out.splitlines() if x.startswith(f"{n} ")]
        assert line.split()[2:5] == ["0", "0", "0.00"] and line.endswith("shadow (not run)")

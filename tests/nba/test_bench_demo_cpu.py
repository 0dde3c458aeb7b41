"""bench/demo_cpu.py, the source of the README's demo CPU figure: what it runs, how it
sums a child's CPU and how it reports and judges the runs (the demo itself is not run
here: ``tests/nba/test_nba_demo.py`` checks its figures; its CPU time is the bench's)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench_scripts import bench_module


def load() -> Any:
    return bench_module("demo_cpu")


def test_cpu_of_counts_the_childs_cpu_and_fails_loudly(tmp_path: Path) -> None:
    """cpu_of sums a child's user + system CPU (a busy child costs some), and a failed child raises instead of reporting a figure."""
    mod = load()
    busy = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.05: pass"
    assert mod.cpu_of([sys.executable, "-c", busy], str(tmp_path)) >= 0.05
    with pytest.raises(subprocess.CalledProcessError):
        mod.cpu_of([sys.executable, "-c", "raise SystemExit(3)"], str(tmp_path))


@pytest.mark.parametrize(
    ("demo_s", "limit", "median", "code"),
    [
        ([41.8, 59.2, 50.0], 60.0, 50.0, 0),  # every run under the limit
        ([41.8, 61.0, 50.0], 60.0, 50.0, 1),  # one run over it: exit 1
        ([12.0], 10.0, 12.0, 1),
    ],
)
def test_main_reports_each_run_the_floor_and_judges_the_worst(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    demo_s: list[float],
    limit: float,
    median: float,
    code: int,
) -> None:
    """main runs the demo (--no-log, a fresh empty directory per run) and the bare interpreter once per run, prints every run, their median and the floor, and exits 1 when any run passed --limit."""
    mod = load()
    figures = iter(demo_s)
    ran: list[tuple[list[str], str]] = []

    def fake_cpu_of(cmd: list[str], cwd: str) -> float:
        ran.append((cmd, cwd))
        assert not list(Path(cwd).iterdir())  # an empty directory
        return 0.02 if cmd[1:] == ["-c", "pass"] else next(figures)

    monkeypatch.setattr(mod, "cpu_of", fake_cpu_of)
    args = ["--runs", str(len(demo_s)), "--limit", str(limit), "--json"]
    assert mod.main(args) == code
    out = json.loads(capsys.readouterr().out)
    assert (out["demo_cpu_s"], out["median_s"], out["bare_interpreter_s"]) == (
        demo_s,
        median,
        0.02,
    )
    demo_cmds = [cmd for cmd, _ in ran if cmd[1:] != ["-c", "pass"]]
    assert demo_cmds == [[sys.executable, "-m", "scoperouter", "demo", "--no-log"]] * len(demo_s)
    assert len({cwd for _, cwd in ran}) == len(demo_s)  # one directory per run

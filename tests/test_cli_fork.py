"""tests/cli_fork.py: a forked run of the CLI reports what a started ``python -m
scoperouter.cli`` reports, under its memory limit and within its budget."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cli_fork import run_cli

BROKEN = Path(__file__).resolve().parent / "registry" / "broken"
REPO = Path(__file__).resolve().parents[1]
EVENT = '{"source": "nba_raw.nbac_injury_report", "game_date": "2025-11-19", "event_id": "e"}'


@pytest.mark.parametrize(
    ("argv", "cwd", "stdin"),
    [
        (["validate", "duplicate_key.yaml"], BROKEN, ""),  # a finding: exit 1, one error
        (["validate", "no_such_file.yaml"], BROKEN, ""),  # a missing file
        (["validate", "--no-such-option"], BROKEN, ""),  # argparse's usage error: exit 2
        (["validate", "routes.yaml"], REPO, ""),  # a valid one
        (["explain", "-", "--as-of", "2025-11-30", "--json"], REPO, EVENT),  # stdin read
        (["explain", "-"], REPO, "{not json"),  # stdin unreadable as an event
    ],
)
def test_a_forked_run_reports_what_a_started_process_does(
    argv: list[str], cwd: Path, stdin: str
) -> None:
    """Exit code, stdout and stderr of a forked run equal those of `python -m scoperouter.cli`."""
    started = subprocess.run(
        [sys.executable, "-m", "scoperouter.cli", *argv],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )
    forked = run_cli(argv, cwd=cwd, budget_s=120, stdin=stdin)
    assert (forked.returncode, forked.stdout, forked.stderr) == (
        started.returncode,
        started.stdout,
        started.stderr,
    )


def test_the_memory_limit_applies_to_the_run() -> None:
    """A run whose address space is too small to validate anything fails (it does not pass)."""
    run = run_cli(["validate", "duplicate_key.yaml"], cwd=BROKEN, budget_s=120, address_space=1)
    assert run.returncode != 0
    assert "MemoryError" in run.stderr or "exit code" in run.stderr, run.stderr


def test_a_run_past_its_budget_is_killed_and_fails() -> None:
    """No result within the budget raises TimeoutError (the run is killed, not waited for)."""
    with pytest.raises(TimeoutError, match="no result within"):
        run_cli(["validate", "duplicate_key.yaml"], cwd=BROKEN, budget_s=0.0)


def test_a_run_sees_the_callers_environment_not_the_servers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The environment at the call reaches the run, though the server started before it."""
    event = tmp_path / "event.json"
    event.write_text(EVENT)
    argv = ["explain", "--config", str(REPO / "routes.yaml"), str(event)]
    monkeypatch.delenv("SCOPEROUTER_AS_OF", raising=False)
    assert run_cli(argv, cwd=tmp_path, budget_s=120).returncode == 0  # the server is up
    monkeypatch.setenv("SCOPEROUTER_AS_OF", "not-a-date")
    run = run_cli(argv, cwd=tmp_path, budget_s=120)
    assert run.returncode == 1 and "SCOPEROUTER_AS_OF" in run.stderr, run
    clean = run_cli(argv, cwd=tmp_path, budget_s=120, env={"PATH": "/usr/bin:/bin"})
    assert clean.returncode == 0, clean

"""``serve`` on an execution log SQLite cannot use (not a database, truncated): one line
naming the log file and what to do (``--no-log``, or move the file away), exit 1 -- never
a traceback, and nothing started. Run in a forked process (``cli_fork``): ``serve`` configures
the process's logging (its JSON handler, no propagation), which must not leak into the
tests that share this worker and read ``caplog``."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from runtime_support import GAME_DAY, free_port, write_registry

from cli_fork import run_cli


def _garbage(path: Path) -> None:
    path.write_bytes(b"not a sqlite file\n" * 50)


def _truncated(path: Path) -> None:
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE x(a)")
    db.executemany("INSERT INTO x VALUES (?)", [("y" * 500,)] * 200)
    db.commit()
    db.close()
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize("damage", [_garbage, _truncated], ids=["not_sqlite", "truncated"])
def test_damaged_execution_log_is_one_line(tmp_path: Path, damage: Callable[[Path], None]) -> None:
    """Exit 1 with one line naming the log and pointing to --no-log."""
    cfg = write_registry(tmp_path / "cfg")
    log = tmp_path / "execution_log.sqlite"
    damage(log)
    argv = ["serve", "--config", str(cfg), "--state-dir", str(tmp_path / "state")]
    argv += ["--port", str(free_port()), "--as-of", GAME_DAY.isoformat(), "--log", str(log)]
    run = run_cli(argv, cwd=tmp_path, budget_s=60)
    out = run.stderr.strip().splitlines()
    errs = [line for line in out if not line.startswith("{")]  # not the JSON log lines
    assert run.returncode == 1, run.stderr
    assert len(errs) == 1, out
    assert errs[0].startswith(f"error: execution log {log} is not usable: "), errs
    assert "--no-log" in errs[0], errs

"""Acceptance 2 of issue 15: SIGKILL ``scoperouter backfill`` in the middle, run the same
command again: it resumes, runs nothing twice that had completed, and ends identical to
a full recompute."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import pytest
from backfill_support import REPO, corrupted, world, wrong_rows

from scoperouter.examples.nba.backfill_executor import journal, open_warehouse, save_warehouse
from scoperouter.examples.nba.season import write_relations

LAST, START, END = date(2025, 11, 8), date(2025, 10, 24), date(2025, 11, 2)


def _cmd(tmp: Path) -> list[str]:
    return [
        sys.executable, "-m", "scoperouter.cli", "backfill", "--config", str(tmp / "routes.yaml"),
        "--start", START.isoformat(), "--end", END.isoformat(), "--phases", "3-6",
        "--as-of", LAST.isoformat(), "--state-dir", str(tmp / "state"), "--executor",
        "reference", "--warehouse", str(tmp / "wh.sqlite"), "--json", "--max-running", "1",
    ]  # fmt: skip


def _done(tmp: Path) -> set[tuple[str, str]]:
    path = tmp / "state" / "backfills.sqlite"
    if not path.exists():
        return set()
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return set(db.execute("SELECT processor, day FROM backfill_runs WHERE state = 'done'"))
    except sqlite3.OperationalError:
        return set()
    finally:
        db.close()


@pytest.mark.timeout(600)
def test_sigkill_then_rerun_resumes_without_repeating_completed_runs(tmp_path: Path) -> None:
    """Kill after >= 60 runs are done; the re-run executes none of them again."""
    w = world(tmp_path / "season", LAST)
    shutil.copy(REPO / "routes.yaml", tmp_path / "routes.yaml")
    write_relations(w.season, tmp_path / "data" / "relations")
    wh = corrupted(w, START, END)
    save_warehouse(wh, tmp_path / "wh.sqlite")
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    err = tmp_path / "first.stderr"
    with err.open("wb") as fh:
        first = subprocess.Popen(_cmd(tmp_path), env=env, stdout=subprocess.DEVNULL, stderr=fh)
        try:
            deadline = time.monotonic() + 300
            while len(_done(tmp_path)) < 60:
                assert first.poll() is None, err.read_text()
                assert time.monotonic() < deadline, "the first run made no progress"
                time.sleep(0.05)
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait()
    done_at_kill = _done(tmp_path)
    second = subprocess.run(_cmd(tmp_path), env=env, capture_output=True, text=True, timeout=400)
    assert second.returncode == 0, second.stderr
    assert '"resumed": true' in second.stdout
    db = sqlite3.connect(tmp_path / "state" / "backfills.sqlite")
    states = dict(db.execute("SELECT state, COUNT(*) FROM backfill_runs GROUP BY state"))
    assert set(states) == {"done"}
    assert db.execute("SELECT MAX(completions) FROM backfill_runs").fetchone()[0] == 1
    db.close()
    final = open_warehouse(tmp_path / "wh.sqlite")
    runs = journal(final)
    again = [r for r in runs if (r[1], r[2]) in done_at_kill and r[4] != first.pid]
    assert again == [], "a run completed before the kill ran again"
    assert len({r[4] for r in runs}) == 2, "both invocations ran something"
    assert len(done_at_kill) < len(set((r[1], r[2]) for r in runs))
    try:
        assert wrong_rows(w, final) == {}
    finally:
        final.close()

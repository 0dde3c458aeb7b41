"""``serve`` with the closed loop on a state dir whose ``state.sqlite3`` is 0 bytes: when
``loop.json`` holds ledger entries (the store was in use and lost its content) it refuses
to start, one line naming both files, and ``loop.json`` is left as it was; without entries
there it starts on an empty store with a WARNING naming the file."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest
from runtime_support import GAME_DAY, free_port, write_registry

LOOP_JSON = {"version": 1, "ledger": {"entries": [{}, {}, {}, {}]}, "held": []}


def test_serve_refuses_an_emptied_store_next_to_a_ledger(tmp_path: Path) -> None:
    """Exit 1 before listening, one error line naming state.sqlite3 and loop.json."""
    cfg = write_registry(tmp_path / "cfg", defaults={"run_retries": 1})  # the closed loop
    state = tmp_path / "state"
    state.mkdir()
    (state / "state.sqlite3").write_bytes(b"")
    (state / "loop.json").write_text(json.dumps(LOOP_JSON))
    argv = [sys.executable, "-m", "scoperouter.cli", "serve", "--config", str(cfg)]
    argv += ["--state-dir", str(state), "--port", str(free_port()), "--no-log"]
    argv += ["--as-of", GAME_DAY.isoformat()]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    errs = [line for line in proc.stderr.splitlines() if line.startswith("error")]
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert len(errs) == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert errs[0].startswith(f"error: state database {state / 'state.sqlite3'} is not usable")
    assert f"{state / 'loop.json'} holds 4 ledger entries" in errs[0], errs
    assert json.loads((state / "loop.json").read_text()) == LOOP_JSON
    assert (state / "state.sqlite3").read_bytes() == b""


def test_emptied_store_without_a_ledger_warns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """No entries in loop.json (or none there): a WARNING naming the file, no refusal."""
    from scoperouter.runtime.state_open import check_emptied_loop_store

    (tmp_path / "state.sqlite3").write_bytes(b"")
    with caplog.at_level(logging.WARNING):
        check_emptied_loop_store(tmp_path)
    assert any(
        str(tmp_path / "state.sqlite3") in r.getMessage() and r.levelno == logging.WARNING
        for r in caplog.records
    )

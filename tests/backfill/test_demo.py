"""The documented demo (docs/backfill.md): build the default season's warehouse with Phase
3 corrupted, backfill it with the reference executor, check it against a full recompute."""

from __future__ import annotations

from pathlib import Path

import pytest
from backfill_support import REPO

from scoperouter.cli import main as cli
from scoperouter.examples.nba.backfill_executor import main as demo


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_demo_commands_as_documented(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """check fails on the corrupted warehouse and passes after the backfill."""
    wh = tmp_path / "wh.sqlite"
    assert demo(["build", str(wh), "--corrupt", "2025-10-25", "2025-11-08"]) == 0
    assert demo(["check", str(wh)]) == 1
    rc = cli(["backfill", "--config", str(REPO / "routes.yaml"), "--start", "2025-10-25",
              "--end", "2025-11-08", "--phases", "3-6", "--as-of", "2025-11-19",
              "--state-dir", str(tmp_path / "state"), "--executor", "reference",
              "--warehouse", str(wh)])  # fmt: skip
    assert rc == 0
    assert demo(["check", str(wh)]) == 0
    assert "identical to a full recompute" in capsys.readouterr().out

"""The lineage CLI wrapper's options and exit codes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from scoperouter.cli import main

REPO = Path(__file__).resolve().parents[2]
PROD = REPO / "tests" / "lineage" / "data" / "production"


def test_lineage_malformed_code_option_is_a_usage_error() -> None:
    """A --code value without NAME=GLOB exits 2 (usage error, SPEC section 4), not 1 (an error finding)."""
    r = subprocess.run(
        [sys.executable, "-m", "scoperouter.cli", "lineage", "--code", "nonsense"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert "NAME=GLOB" in r.stderr
    assert r.returncode == 2


def test_lineage_processor_option_filters_the_jobs_route(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """--processor limits a --jobs analysis to that processor, as it does for the code route."""
    argv = ["lineage", "--config", str(PROD / "routes.yaml"), "--jobs", str(PROD / "jobs.jsonl")]
    main([*argv, "--processor", "player_game_summary"])
    out = capsys.readouterr().out
    assert "upcoming_player_game_context" not in out
    assert "(jobs) of 1 processor:" in out

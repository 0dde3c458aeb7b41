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


def test_code_globs_are_relative_to_the_registry_and_say_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A --code glob is relative to the registry's directory, not the cwd: the help says so, and a glob that matches nothing names the directory it was tried under."""
    with pytest.raises(SystemExit):
        main(["lineage", "--help"])
    assert "relative to the registry's directory" in " ".join(capsys.readouterr().out.split())
    (tmp_path / "reg").mkdir()
    routes = (PROD / "routes.yaml").read_text(encoding="utf-8")
    (tmp_path / "reg" / "routes.yaml").write_text(routes, encoding="utf-8")
    (tmp_path / "pgs.sql").write_text("SELECT 1 FROM nba_raw.x\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    argv = ["lineage", "--config", "reg/routes.yaml", "--processor", "player_game_summary"]
    main([*argv, "--code", "player_game_summary=pgs.sql"])
    assert "pgs.sql: info: unresolved: glob matches no file under reg" in capsys.readouterr().out
    main([*argv, "--code", "player_game_summary=pgs.sql", "--root", "."])
    assert "pgs.sql: info: unresolved: glob" not in capsys.readouterr().out

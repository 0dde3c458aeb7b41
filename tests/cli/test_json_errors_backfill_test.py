"""With --json, `backfill` and `test` print their own errors as JSON on stdout too (README,
"--json errors"), besides the line on stderr."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scoperouter.cli import main

REPO = Path(__file__).resolve().parents[2]
ROUTES = str(REPO / "routes.yaml")
RANGE = ["--start", "2026-01-10", "--end", "2026-01-11", "--state-dir", "{tmp}/st"]


@pytest.mark.parametrize(
    ("argv", "rc", "needle"),
    [
        (["backfill", "--config", ROUTES, *RANGE, "--processors", "nobody"], 2, "nobody"),
        (
            [
                "backfill",
                "--config",
                ROUTES,
                *RANGE,
                "--start",
                "2026-01-11",
                "--end",
                "2026-01-10",
            ],
            2,
            "--end is before --start",
        ),
        (
            ["backfill", "--config", ROUTES, *RANGE, "--dry-run", "--log", "{tmp}/none.sqlite"],
            1,
            "no execution log at",
        ),
        (
            ["backfill", "--config", ROUTES, *RANGE, "--executor", "reference"],
            1,
            "--executor reference needs an existing --warehouse file",
        ),
        (
            [
                "test",
                "--config",
                ROUTES,
                str(REPO / "routes.tests.yaml"),
                "--junit",
                "{tmp}/f/j.xml",
            ],
            1,
            "cannot write",
        ),
    ],
    ids=[
        "backfill_unknown_processor",
        "backfill_bad_range",
        "backfill_no_log",
        "backfill_no_warehouse",
        "test_junit_unwritable",
    ],
)
def test_json_errors_are_json_on_stdout(
    argv: list[str],
    rc: int,
    needle: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The command's own error: one line on stderr, and with --json one invalid_config object on stdout."""
    (tmp_path / "f").write_text("", encoding="utf-8")
    args = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert main([*args, "--json"]) == rc
    out, err = capsys.readouterr()
    assert needle in err, err
    doc = json.loads(out.strip().splitlines()[-1])
    assert doc["error"] == "invalid_config"
    assert needle in doc["issues"][0]["message"]

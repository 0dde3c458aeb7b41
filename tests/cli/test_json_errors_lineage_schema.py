"""With --json, `lineage` and `schema` print their own errors as JSON on stdout too (README,
"--json errors": the invalid_config object main() prints), besides the line on stderr."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from scoperouter.cli import main

REPO = Path(__file__).resolve().parents[2]
ROUTES = str(REPO / "routes.yaml")


def _no_client(project: str | None = None) -> Any:
    raise OSError("no credentials")


@pytest.mark.parametrize(
    ("argv", "rc", "needle"),
    [
        (
            ["lineage", "--config", ROUTES, "--runtime", "--log", "{tmp}/none.sqlite"],
            1,
            "none.sqlite",
        ),
        (
            ["lineage", "--config", ROUTES, "--runtime", "--log", "{tmp}/bad.sqlite"],
            1,
            "not a readable",
        ),
        (
            ["lineage", "--config", ROUTES, "--jobs", "{tmp}/none.jsonl"],
            1,
            "cannot read the JOBS export",
        ),
        (["lineage", "--config", ROUTES, "--jobs", "{tmp}/bad.json"], 1, "row 1 of the array"),
        (["lineage", "--config", ROUTES, "--bigquery", "p"], 1, "cannot create a BigQuery client"),
        (
            ["lineage", "--config", ROUTES, "--processor", "nobody"],
            2,
            "unknown processor(s): nobody",
        ),
        (["lineage", "--config", ROUTES, "--format", "json", "--processor", "nobody"], 2, "nobody"),
        (["schema", "--dir", "{tmp}/file/sub"], 1, "cannot write schemas to"),
    ],
    ids=[
        "lineage_no_log",
        "lineage_bad_log",
        "lineage_no_jobs_file",
        "lineage_bad_jobs",
        "lineage_no_bigquery_client",
        "lineage_unknown_processor",
        "lineage_format_json",
        "schema_cannot_write",
    ],
)
def test_json_errors_are_json_on_stdout(
    argv: list[str],
    rc: int,
    needle: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The command's own error: one line on stderr, and with --json one invalid_config object on stdout."""
    monkeypatch.setitem(sys.modules, "google.cloud.bigquery", SimpleNamespace(Client=_no_client))
    (tmp_path / "bad.sqlite").write_bytes(b"not sqlite" * 20)
    (tmp_path / "bad.json").write_text("[5]", encoding="utf-8")
    (tmp_path / "file").write_text("", encoding="utf-8")
    args = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    json_flag = [] if "--format" in args else ["--json"]
    assert main([*args, *json_flag]) == rc
    out, err = capsys.readouterr()
    assert needle in err and len(err.strip().splitlines()) == 1, err
    doc = json.loads(out)
    assert doc["error"] == "invalid_config"
    assert needle in doc["issues"][0]["message"]
    assert err.strip() == f"error: {doc['issues'][0]['message']}"


def test_runtime_without_a_log_says_how_to_get_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """lineage --runtime with no log says so as report does, not only the path."""
    log = tmp_path / "none.sqlite"
    assert main(["lineage", "--config", ROUTES, "--runtime", "--log", str(log)]) == 1
    assert capsys.readouterr().err == (
        f"error: no execution log at {log}; run scoperouter demo or serve first\n"
    )

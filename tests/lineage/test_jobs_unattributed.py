"""JOBS route: jobs attributed to no processor are said in every format (not only --json),
are no pass under --strict, and an export that is one JSON object (rows wrapped in it) is
refused with one line instead of being read as one unattributed job."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from lineage_support import DATA

from scoperouter.cli import main

ROUTES = str(DATA / "production" / "routes.yaml")
STRAY = {
    "job_id": "j9",
    "labels": [],
    "referenced_tables": [{"dataset_id": "x", "table_id": "y"}],
    "destination_table": None,
}


@pytest.mark.parametrize(
    ("flags", "stream"),
    [([], "out"), (["--format", "github"], "err")],
    ids=["text", "github"],
)
def test_unattributed_jobs_are_in_the_summary(
    flags: list[str], stream: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The text and github summaries say how many jobs no processor was attributed."""
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text(json.dumps(STRAY) + "\n" + json.dumps(STRAY) + "\n", encoding="utf-8")
    assert main(["lineage", "--config", ROUTES, "--jobs", str(jobs), *flags]) == 0
    out, err = capsys.readouterr()
    assert "  2 jobs attributed to no processor" in (out if stream == "out" else err)


@pytest.mark.parametrize(("rows", "rc"), [([STRAY], 1), ([], 0)], ids=["unattributed", "none"])
def test_strict_fails_on_unattributed_jobs(
    rows: list[dict[str, object]], rc: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--strict: a job attributed to no processor is unresolved, exit 1 (without it, exit 0)."""
    jobs = tmp_path / "jobs.json"
    jobs.write_text(json.dumps(rows), encoding="utf-8")
    assert main(["lineage", "--config", ROUTES, "--jobs", str(jobs), "--strict"]) == rc
    err = capsys.readouterr().err
    assert ("strict mode fails on 1 job attributed to no processor" in err) == bool(rc), err
    assert main(["lineage", "--config", ROUTES, "--jobs", str(jobs)]) == 0


def test_a_json_object_export_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An export that is one JSON object (e.g. {"rows": [...]}) is a one-line error, exit 1."""
    jobs = tmp_path / "wrapped.json"
    jobs.write_text(
        json.dumps({"kind": "bigquery#queryResponse", "rows": [STRAY]}), encoding="utf-8"
    )
    assert main(["lineage", "--config", ROUTES, "--jobs", str(jobs)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(f"error: cannot read the JOBS export: {jobs}:"), err
    assert "object" in err and len(err.strip().splitlines()) == 1, err

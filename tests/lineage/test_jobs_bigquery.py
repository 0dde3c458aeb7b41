"""`scoperouter lineage --bigquery PROJECT` that cannot read INFORMATION_SCHEMA.JOBS -- no
client (no credentials, no project) or a failing query -- exits 1 with one line, as `sources
import --bigquery` does: never a traceback."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from lineage_support import DATA

from scoperouter.cli import main

ROUTES = str(DATA / "production" / "routes.yaml")


class _Client:
    """A BigQuery client whose query fails."""

    def __init__(self, project: str | None = None) -> None:
        self.project = project

    def query(self, sql: str, job_config: Any = None) -> Any:
        raise RuntimeError("403 Access Denied:\n  Project my-project")


def _no_client(project: str | None = None) -> Any:
    class DefaultCredentialsError(Exception):  # google.auth's: neither OSError nor ValueError
        pass

    raise DefaultCredentialsError("Your default credentials were not found.")


def _bigquery(client: Any) -> SimpleNamespace:
    return SimpleNamespace(
        Client=client,
        QueryJobConfig=lambda **kw: kw,
        ScalarQueryParameter=lambda *a: a,
    )


@pytest.mark.parametrize(
    ("client", "expected"),
    [
        (
            _no_client,
            "error: cannot create a BigQuery client: Your default credentials were not found.",
        ),
        (
            _Client,
            "error: BigQuery query on region-us.INFORMATION_SCHEMA.JOBS of my-project failed: "
            "403 Access Denied: Project my-project",
        ),
    ],
    ids=["no_credentials", "query_fails"],
)
def test_jobs_that_cannot_be_fetched_is_one_line(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    client: Any,
    expected: str,
) -> None:
    """No client, or a failing JOBS query: exit 1, one line naming why, nothing on stdout."""
    monkeypatch.setitem(sys.modules, "google.cloud.bigquery", _bigquery(client))
    rc = main(["lineage", "--config", ROUTES, "--bigquery", "my-project"])
    out, err = capsys.readouterr()
    assert (rc, out, err) == (1, "", expected + "\n")


class _Rows:
    """A BigQuery client that records the JOBS query and returns no row."""

    sql = ""

    def __init__(self, project: str | None = None) -> None:
        pass

    def query(self, sql: str, job_config: Any = None) -> Any:
        _Rows.sql = sql
        return SimpleNamespace(result=lambda: [])


def test_live_jobs_read_the_job_types_of_the_documented_export(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """--bigquery reads the job types the export query in docs/lineage.md selects (LOAD jobs write staging tables too)."""
    doc = (Path(__file__).resolve().parents[2] / "docs" / "lineage.md").read_text(encoding="utf-8")
    where = re.search(r"WHERE (job_type [^\n]*?) AND state = 'DONE'", doc)
    assert where is not None
    monkeypatch.setitem(sys.modules, "google.cloud.bigquery", _bigquery(_Rows))
    assert main(["lineage", "--config", ROUTES, "--bigquery", "my-project"]) == 0
    capsys.readouterr()
    assert f"WHERE {where.group(1)} AND state = 'DONE'" in _Rows.sql

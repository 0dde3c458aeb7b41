"""`scoperouter sources import --bigquery` that cannot reach the dataset -- no client (no
credentials, no project) or a failing query -- exits 1 with one line, as `report
--bigquery` does: never a traceback."""

from __future__ import annotations

import sys
from types import SimpleNamespace
from typing import Any

import pytest

from scoperouter.cli import main


class _Client:
    """A BigQuery client whose query fails."""

    def __init__(self, project: str | None = None) -> None:
        self.project = project

    def query(self, sql: str) -> Any:
        raise RuntimeError("404 Not found:\n  Dataset my-project:nba_raw")


def _no_client(project: str | None = None) -> Any:
    raise OSError("File /nowhere/creds.json was not found.")


def _default_credentials_error(project: str | None = None) -> Any:
    class DefaultCredentialsError(Exception):  # google.auth's: neither OSError nor ValueError
        pass

    raise DefaultCredentialsError("Your default credentials were not found.")


@pytest.mark.parametrize(
    ("client", "expected"),
    [
        (
            _default_credentials_error,
            "error: cannot create a BigQuery client: Your default credentials were not found.",
        ),
        (
            _no_client,
            "error: cannot create a BigQuery client: File /nowhere/creds.json was not found.",
        ),
        (
            _Client,
            "error: BigQuery query on my-project.nba_raw.INFORMATION_SCHEMA.COLUMNS failed: "
            "404 Not found: Dataset my-project:nba_raw",
        ),
    ],
    ids=["no_credentials", "credentials_file_missing", "query_fails"],
)
def test_bigquery_that_cannot_be_read_is_one_line(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    client: Any,
    expected: str,
) -> None:
    """No client, or a failing COLUMNS query: exit 1, one line naming why, nothing printed."""
    monkeypatch.setitem(sys.modules, "google.cloud.bigquery", SimpleNamespace(Client=client))
    rc = main(["sources", "import", "--bigquery", "my-project.nba_raw"])
    out, err = capsys.readouterr()
    assert (rc, out, err) == (1, "", expected + "\n")

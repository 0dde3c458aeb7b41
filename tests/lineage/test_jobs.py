"""Acceptance 4: an INFORMATION_SCHEMA.JOBS export (data/production/jobs.jsonl, in BigQuery's
export shape: labels and referenced_tables as arrays of structs) gives the same table-level
findings as the SQL route for the same processors; JSON array and CSV exports read alike."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from lineage_support import DATA, codes, lineage, registry

from scoperouter.cli import main
from scoperouter.lineage.analyse import analyse_jobs
from scoperouter.lineage.jobs import jobs_reads, load_export, snake

PROD = DATA / "production"
REG = registry(PROD / "routes.yaml")
EXPORT = PROD / "jobs.jsonl"
SQL = lineage(REG, PROD)
JOBS = analyse_jobs(REG, load_export(EXPORT), str(EXPORT), "processor")


@pytest.mark.parametrize("code", ["missing_input", "unused_input"])
def test_jobs_route_agrees_with_sql_route(code: str) -> None:
    """missing_input and unused_input are the same from the jobs as from the SQL."""
    assert codes(JOBS, code) == codes(SQL, code)
    assert codes(JOBS, code)


def test_jobs_attribution() -> None:
    """Jobs are attributed by label (class names), else by destination; the rest are counted;
    a table the processor's own jobs write (its staging table) is not a missing input."""
    assert JOBS.analysed == ("player_game_summary", "upcoming_player_game_context")
    assert JOBS.unattributed_jobs == 1
    assert (
        "nba_analytics.player_game_summary_staging_0116" in JOBS.reads["player_game_summary"].writes
    )
    assert (
        not codes(JOBS, "field_not_listed") and not JOBS.reads["player_game_summary"].columns_known
    )


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("PlayerGameSummaryProcessor", "player_game_summary"),
        ("MLFeatureStoreProcessor", "mlfeature_store"),
        ("upcoming-player-game-context", "upcoming_player_game_context"),
    ],
)
def test_snake(name: str, expected: str) -> None:
    """Class and service names become registry names."""
    assert snake(name) == expected


def _rows() -> list[dict[str, object]]:
    return [json.loads(x) for x in EXPORT.read_text(encoding="utf-8").splitlines() if x.strip()]


def test_json_array_and_csv_exports(tmp_path: Path) -> None:
    """The same jobs as a JSON array and as CSV (nested columns as JSON text) give the same reads."""
    arr = tmp_path / "jobs.json"
    arr.write_text(json.dumps(_rows()), encoding="utf-8")
    out = tmp_path / "jobs.csv"
    with out.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(_rows()[0]))
        w.writeheader()
        for r in _rows():
            w.writerow(
                {k: json.dumps(v) if isinstance(v, list | dict) else v for k, v in r.items()}
            )
    for path in (arr, out):
        got = analyse_jobs(REG, load_export(path), str(path), "processor")
        assert {p: r.tables for p, r in got.reads.items()} == {
            p: r.tables for p, r in JOBS.reads.items()
        }


def test_cli_jobs_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    """`scoperouter lineage --jobs FILE` exits 1 on the export's missing inputs, naming the route."""
    assert main(["lineage", "--config", str(PROD / "routes.yaml"), "--jobs", str(EXPORT)]) == 1
    assert "lineage (jobs) of 2 processors: 5 errors" in capsys.readouterr().out


@pytest.mark.parametrize(
    "dest",
    [
        {"project_id": "p", "dataset_id": "nba_analytics", "table_id": "player_game_summary"},
        '{"project_id": "p", "dataset_id": "nba_analytics", "table_id": "player_game_summary"}',
        "p.nba_analytics.player_game_summary",
    ],
    ids=["struct", "json_text", "name"],
)
def test_attribution_by_destination_reads_json_text(dest: object) -> None:
    """An unlabelled job is attributed by its destination whether it is a struct, the struct as JSON text (as referenced_tables may be) or a name."""
    row = {"job_id": "j", "labels": [], "referenced_tables": [], "destination_table": dest}
    reads, unattributed = jobs_reads([row], REG, "x.json")
    assert (list(reads), unattributed) == (["player_game_summary"], 0)

"""A malformed INFORMATION_SCHEMA export -- JOBS for `lineage --jobs`, COLUMNS for `sources
import` -- is one line naming the file and the row at fault, exit 1: never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from lineage_support import DATA

from scoperouter.cli import main

ROUTES = str(DATA / "production" / "routes.yaml")
JOB = '{"job_id": "j1", "labels": [], "referenced_tables": []}'


@pytest.mark.parametrize(
    ("name", "text", "where"),
    [
        ("list.jsonl", JOB + "\n[1]\n", "list.jsonl:2:"),
        ("null.jsonl", JOB + "\n\nnull\n", "null.jsonl:3:"),
        ("number.jsonl", "5\n", "number.jsonl:1:"),
        ("bad.jsonl", JOB + "\n{bad\n", "bad.jsonl:2:"),
        ("numbers.json", "[5]", "numbers.json: row 1"),
        ("strings.json", f'[{JOB}, "ab"]', "strings.json: row 2"),
        ("bad.json", "[\n{bad", "bad.json:2:"),
        ("refs.jsonl", JOB + '\n{"job_id": "j2", "referenced_tables": 5}\n', "refs.jsonl:2:"),
        ("labels.json", '[{"job_id": "j2", "labels": 7}]', "labels.json: row 1"),
        ("refs.csv", "job_id,referenced_tables\nj1,[]\nj2,7\n", "refs.csv:3:"),
    ],
    ids=[
        "jsonl_array_row",
        "jsonl_null_row",
        "jsonl_number_row",
        "jsonl_bad_json",
        "json_array_of_numbers",
        "json_array_of_strings",
        "json_bad_json",
        "referenced_tables_a_number",
        "labels_a_number",
        "csv_referenced_tables_a_number",
    ],
)
def test_bad_jobs_export_is_one_line(
    name: str, text: str, where: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A JOBS export with a non-object row, bad JSON or a non-list column: one line, file and row, exit 1."""
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    rc = main(["lineage", "--config", ROUTES, "--jobs", str(path)])
    out, err = capsys.readouterr()
    assert (rc, out) == (1, "")
    assert err.startswith(f"error: cannot read the JOBS export: {tmp_path / where}"), err
    assert len(err.strip().splitlines()) == 1, err


COL = '{"table_schema": "a", "table_name": "t", "column_name": "x", "ordinal_position": %s}'


@pytest.mark.parametrize(
    ("name", "text", "where"),
    [
        ("list.json", "[" + COL % 1 + ", " + COL % "[1]" + "]", "row 2"),
        ("object.jsonl", COL % 1 + "\n" + COL % "{}" + "\n", "row 2"),
        ("word.json", "[" + COL % '"x"' + "]", "row 1"),
    ],
    ids=["ordinal_a_list", "ordinal_an_object", "ordinal_a_word"],
)
def test_bad_ordinal_position_is_one_line(
    name: str, text: str, where: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An ordinal_position that is no whole number: one line naming the file and row, exit 1."""
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    rc = main(["sources", "import", str(path)])
    out, err = capsys.readouterr()
    assert (rc, out) == (1, "")
    assert err.startswith(f"error: {path}: {where}: ordinal_position"), err
    assert len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize(
    ("argv", "lead"),
    [
        (["lineage", "--config", ROUTES, "--jobs"], "error: cannot read the JOBS export: "),
        (["sources", "import"], "error: cannot read the COLUMNS export: "),
    ],
    ids=["jobs", "columns"],
)
def test_export_that_is_not_text_names_the_file(
    argv: list[str], lead: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An export that is not UTF-8 text: one line naming the file, exit 1."""
    path = tmp_path / "bin.json"
    path.write_bytes(b"\xff\xfe\x00[")
    assert main([*argv, str(path)]) == 1
    err = capsys.readouterr().err
    assert err == f"{lead}{path}: not UTF-8 text (byte 0)\n", err

"""`scoperouter sources import` on an export it cannot use exits 1 with one line naming the
file and the line at fault -- never a traceback, never another line's number."""

from __future__ import annotations

from pathlib import Path

import pytest

from scoperouter.cli import main

GOOD = '{"table_schema": "a", "table_name": "t", "column_name": "x", "ordinal_position": 1}\n'


@pytest.mark.parametrize(
    ("name", "text", "where"),
    [
        ("bad.jsonl", GOOD + GOOD + "{bad\n", "bad.jsonl:3:"),
        ("null.jsonl", GOOD + "null\n", "null.jsonl:2:"),
        ("list.jsonl", GOOD + "[1, 2]\n", "list.jsonl:2:"),
        ("numbers.json", "[1, 2]", "numbers.json: row 1"),
        ("object.json", '{"table_name": "t"}', "object.json:"),
    ],
    ids=[
        "jsonl_bad_line_3",
        "jsonl_null_row",
        "jsonl_array_row",
        "json_array_of_numbers",
        "json_object_not_array",
    ],
)
def test_bad_export_is_one_line(
    name: str, text: str, where: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A malformed or non-object row is a one-line error with file:line, exit 1."""
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    rc = main(["sources", "import", str(path)])
    err = capsys.readouterr().err
    assert rc == 1
    assert len(err.strip().splitlines()) == 1, err
    assert where in err, err

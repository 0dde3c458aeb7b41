"""A UTF-8 byte order mark (Windows editors, Excel's "CSV UTF-8") is not content: code files
and INFORMATION_SCHEMA exports with one read as without it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scoperouter.lineage.collect import file_reads
from scoperouter.lineage.columns_import import columns_by_table, load_columns_export
from scoperouter.lineage.jobs import load_export

BOM = "\ufeff"
JOB = {"job_id": "j1", "referenced_tables": [{"dataset_id": "pos", "table_id": "sales"}]}


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("q.sql", "SELECT amount, zzz FROM pos.sales\n"),
        ("q.py", 'Q = "SELECT amount, zzz FROM pos.sales"\n'),
    ],
    ids=["sql", "python"],
)
def test_code_file_with_a_bom_reads_as_without(name: str, text: str, tmp_path: Path) -> None:
    """A .sql / .py file starting with a BOM gives the reads it gives without one (not "unresolved")."""
    plain, marked = tmp_path / "plain" / name, tmp_path / "bom" / name
    for path, body in ((plain, text), (marked, BOM + text)):
        path.parent.mkdir()
        path.write_text(body, encoding="utf-8")
    got = file_reads(marked, marked.parent)
    assert not got.unresolved, got.unresolved
    assert got.tables == file_reads(plain, plain.parent).tables
    assert got.tables == {"pos.sales": {"amount", "zzz"}}


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("c.csv", "table_schema,table_name,column_name,ordinal_position\npos,sales,amount,1\n"),
        ("c.json", '[{"table_schema":"pos","table_name":"sales","column_name":"amount"}]'),
        ("c.jsonl", '{"table_schema":"pos","table_name":"sales","column_name":"amount"}\n'),
    ],
    ids=["csv", "json", "jsonl"],
)
def test_columns_export_with_a_bom(name: str, text: str, tmp_path: Path) -> None:
    """A COLUMNS export with a BOM reads its rows (no '\\ufefftable_schema' key, no JSON error)."""
    path = tmp_path / name
    path.write_text(BOM + text, encoding="utf-8")
    assert columns_by_table(load_columns_export(path)) == {"pos.sales": ("amount",)}


@pytest.mark.parametrize(
    ("name", "text"),
    [
        (
            "j.csv",
            'job_id,referenced_tables\nj1,"[{""dataset_id"":""pos"",""table_id"":""sales""}]"\n',
        ),
        ("j.json", json.dumps([JOB])),
        ("j.jsonl", json.dumps(JOB) + "\n"),
    ],
    ids=["csv", "json", "jsonl"],
)
def test_jobs_export_with_a_bom(name: str, text: str, tmp_path: Path) -> None:
    """A JOBS export with a BOM reads its rows as without one."""
    path = tmp_path / name
    path.write_text(BOM + text, encoding="utf-8")
    assert load_export(path) == [JOB]

"""The write benchmark: 100,000 execution-log rows to SQLite in under 5 s."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "execution_log.py"


def test_100k_rows_under_5_seconds(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """bench/execution_log.py writes 100,000 rows in under 5 s and prints the figure."""
    spec = importlib.util.spec_from_file_location("bench_execution_log", BENCH)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    rc = mod.main(["--rows", "100000", "--json", "--path", str(tmp_path / "bench.sqlite")])
    result = json.loads(capsys.readouterr().out)
    assert result["rows"] >= 100_000
    assert result["seconds"] < 5.0, result
    assert rc == 0

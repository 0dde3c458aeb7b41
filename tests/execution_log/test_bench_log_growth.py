"""bench/log_growth.py fills the log's own events table and times its flushes, keyed as the
log creates it and without the key; the figures are timing and are not checked here."""

from __future__ import annotations

import importlib.util
import sqlite3
from pathlib import Path
from typing import Any

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "log_growth.py"


def bench() -> Any:
    spec = importlib.util.spec_from_file_location("bench_log_growth", SCRIPT)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("keyed", [True, False])
def test_growth_fills_the_table_to_each_size_plus_its_probes(tmp_path: Path, keyed: bool) -> None:
    """Each size is filled (earlier probes included), then one flush of new events probes it: every row lands once."""
    b = bench()
    out = b.grow(tmp_path / "log.sqlite", [30, 120], 7, keyed)
    assert [r["events"] for r in out] == [30, 120]
    with sqlite3.connect(tmp_path / "log.sqlite") as conn:
        (n,) = conn.execute(f"SELECT count(DISTINCT event_id) FROM {b.EVENTS_TABLE}").fetchone()
        pk = [r[1] for r in conn.execute(f"PRAGMA table_info({b.EVENTS_TABLE})") if r[5]]
    assert n == 120 + 7  # the first probe counts toward the next size
    assert pk == (["event_id"] if keyed else [])


@pytest.mark.parametrize("argv", [["--sizes", "x"], ["--sizes", "-1"], ["--flush-rows", "0"]])
def test_nonsense_arguments_are_refused(argv: list[str]) -> None:
    """Sizes that are not whole numbers >= 0, or a flush of no rows, are usage errors."""
    with pytest.raises(SystemExit) as exc:
        bench().main(argv)
    assert exc.value.code == 2

"""bench/log_growth.py fills an events table laid out as the log creates it, as older logs
have it, or without a key, and times its flushes; the figures are timing and are not
checked here."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from bench_scripts import bench_module


def bench() -> Any:
    return bench_module("log_growth")


@pytest.mark.parametrize(
    ("layout", "pk", "indexes"),
    [("log", [], {"ix_events_once"}), ("id_key", ["event_id"], None), ("none", [], set())],
)
def test_growth_fills_each_layout_over_its_dates(
    tmp_path: Path, layout: str, pk: list[str], indexes: set[str] | None
) -> None:
    """Each size is filled (earlier probes included), over the dates asked, then probed with new events of the newest date: every row lands once, in the layout named."""
    b = bench()
    out = b.grow(tmp_path / "log.sqlite", [30, 120], 7, layout, dates=4)
    assert [r["events"] for r in out] == [30, 120]
    with sqlite3.connect(tmp_path / "log.sqlite") as conn:
        t = b.EVENTS_TABLE
        (n,) = conn.execute(f"SELECT count(DISTINCT event_id) FROM {t}").fetchone()
        (days,) = conn.execute(f"SELECT count(DISTINCT game_date) FROM {t}").fetchone()
        got_pk = [r[1] for r in conn.execute(f"PRAGMA table_info({t})") if r[5]]
        got = {r[1] for r in conn.execute(f"PRAGMA index_list({t})")}
    assert n == 120 + 7  # the first probe counts toward the next size
    assert days == 4
    assert got_pk == pk
    if indexes is not None:
        assert got == indexes


@pytest.mark.parametrize(
    "argv",
    [["--sizes", "x"], ["--sizes", "-1"], ["--flush-rows", "0"], ["--dates", "0"]],
)
def test_nonsense_arguments_are_refused(argv: list[str]) -> None:
    """Sizes that are not whole numbers >= 0, a flush of no rows or no dates are usage errors."""
    with pytest.raises(SystemExit) as exc:
        bench().main(argv)
    assert exc.value.code == 2

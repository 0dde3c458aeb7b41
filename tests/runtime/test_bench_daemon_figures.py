"""README's daemon figures are ``bench/daemon.py``'s rendering of a saved run
(``bench/results/daemon.json``): they come from the benchmark's output, not from hand. The
run itself is timing and is not repeated here (``python bench/daemon.py --out ...``)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from runtime_support import bench_module

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "bench" / "results" / "daemon.json"


def bench() -> Any:
    return bench_module("daemon")


def squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


@pytest.mark.parametrize("saved", [RESULTS, RESULTS.with_name("daemon-closed-loop.json")])
def test_readme_daemon_table_is_the_saved_run(saved: Path) -> None:
    """The README quotes bench/daemon.py --markdown of each saved run it shows, verbatim."""
    table = bench().markdown(json.loads(saved.read_text(encoding="utf-8")))
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert squash(table) in squash(readme), "README daemon table should read:\n" + table


@pytest.mark.parametrize(
    ("section", "figure"),
    [
        ("http", "saturation_cpu_per_event"),
        ("http", "cpu_per_event_at_rate"),
        ("http", "saturation_events_per_s"),
        ("pull", "drain_msgs_per_s"),
        ("pull", "cpu_per_msg"),
    ],
)
def test_saved_run_has_ratios_of_both_serve_modes(section: str, figure: str) -> None:
    """Every figure of the saved run is a ratio to the bare baseline for serve's defaults and --no-log."""
    per = json.loads(RESULTS.read_text(encoding="utf-8"))[section][figure]
    for name in ("serve", "serve_no_log"):
        q = per[name]["ratio_to_bare"]
        assert 0 < q["min"] <= q["median"] <= q["max"], (name, q)
    assert per["bare"]["median"] > 0

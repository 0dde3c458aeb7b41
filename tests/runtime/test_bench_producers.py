"""``bench/producers.py``'s pure parts: the per-event / per-batch fit and the histogram
read from ``/metrics`` (the runs themselves are timing: ``python bench/producers.py``)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench_scripts import bench_module

REPO = Path(__file__).resolve().parents[2]


def bench() -> Any:
    return bench_module("producers")


BENCH = bench()


@given(
    a=st.floats(0.0, 1.0),
    b=st.floats(0.0, 5.0),
    batches=st.lists(st.integers(1, 512), min_size=2, max_size=8, unique=True),
)
def test_fit_recovers_an_exact_line(a: float, b: float, batches: list[int]) -> None:
    """Points on cpu = a + b / batch give back a (per event) and b (per batch)."""
    got = BENCH.fit([(1 / n, a + b / n) for n in batches])
    assert got is not None
    assert got[0] == pytest.approx(a, abs=1e-6) and got[1] == pytest.approx(b, abs=1e-6)


@pytest.mark.parametrize("points", [[], [(0.1, 1.0)], [(0.1, 1.0), (0.1, 2.0)]])
def test_fit_needs_two_different_batch_sizes(points: list[tuple[float, float]]) -> None:
    """Fewer than two points, or one batch size only, fit nothing."""
    assert BENCH.fit(points) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("scoperouter_ingest_batch_size_sum 120.0\nscoperouter_ingest_batch_size_count 4.0\n",
         (120.0, 4.0)),
        ("scoperouter_other_sum 1.0\n", (0.0, 0.0)),
    ],
)  # fmt: skip
def test_histogram_reads_sum_and_count(text: str, expected: tuple[float, float]) -> None:
    """The histogram's _sum and _count lines are read; an absent histogram reads as zero."""
    assert BENCH.histogram(text, "scoperouter_ingest_batch_size") == expected


def test_performance_notes_quote_the_saved_producers_run() -> None:
    """docs/performance.md's per-batch figures are bench/producers.py --summary of the saved run, verbatim."""
    report = json.loads((REPO / "bench" / "results" / "producers.json").read_text("utf-8"))
    squash = lambda t: re.sub(r"\s+", " ", t)  # noqa: E731
    notes = (REPO / "docs" / "performance.md").read_text(encoding="utf-8")
    assert squash(BENCH.summary(report)) in squash(notes)

"""The text report's headline agrees with the table under it: its entity rows are the
measured runs', counted over those runs (not every run), and a measured run that routed no
row is measured work (all of it saved), not "not measurable"."""

from __future__ import annotations

import pytest

from scoperouter.execution_log.analysis import ProcessorReport, Report
from scoperouter.execution_log.legend import headline
from scoperouter.processor_registry.models import ReportSpec


def _report(*procs: tuple[int, int, int, int]) -> Report:
    """Processors of (runs, measured runs, entity rows processed, date-level rows)."""
    prs = [
        ProcessorReport(f"p{i}", 3, "player", runs=r, measured_runs=m,
                        entity_rows_processed=rows, date_level_rows=dl, saved_hours=0.5)
        for i, (r, m, rows, dl) in enumerate(procs)
    ]  # fmt: skip
    runs = sum(p.runs for p in prs)
    return Report(prs, 1, None, None, runs, 1, runs, True, 0, ReportSpec())


@pytest.mark.parametrize(
    ("procs", "says"),
    [
        # every run measured: as the demo's words (docs/report.md's example)
        (((409, 409, 17_444, 138_700),), "routed 17,444 entity rows in 409 runs; the same "
         "runs at date level 138,700: 8.0x less work routed, 0.50 h of processing saved"),
        # rows of 4 measured runs out of 7: it said "in 7 runs"
        (((5, 3, 6, 9), (2, 1, 2, 3)), "routed 8 entity rows in 4 measured runs (of 7); the "
         "same runs at date level 12: 1.5x less work routed"),
        # a measured run that processed none of the date's 10 rows: it said "not measurable"
        (((1, 1, 0, 10),), "routed 0 entity rows in 1 runs; the same runs at date level 10: "
         "none of it routed"),
        (((3, 0, 0, 0),), "work: not measurable (no run with known entity rows)"),
        ((), "work: not measurable (no run with known entity rows)"),
    ],
)  # fmt: skip
def test_headline_counts_the_runs_its_rows_come_from(
    procs: tuple[tuple[int, int, int, int], ...], says: str
) -> None:
    """Rows and runs of the headline are of the same runs; none routed is measured work."""
    assert says in headline(_report(*procs))

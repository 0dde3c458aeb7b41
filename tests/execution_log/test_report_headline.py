"""The text report's headline agrees with the table under it: its entity rows are the
measured runs', counted over those runs (not every run), and a measured run that routed no
row is measured work (all of it saved), not "not measurable". Its routed and date-level
rows are of the same runs: the measured runs whose full-date size is known."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest

from scoperouter.execution_log.analysis import ProcessorReport, Report, build_report
from scoperouter.execution_log.legend import headline
from scoperouter.execution_log.reader import LogData, LogRow
from scoperouter.processor_registry.models import ReportSpec


def _report(*procs: tuple[int, ...]) -> Report:
    """Processors of (runs, measured runs, entity rows processed, date-level rows[, runs
    with a known date-level size, the rows they processed]) -- by default every measured
    run's date-level size is known."""
    prs = []
    for i, (r, m, rows, dl, *known) in enumerate(procs):
        b, brows = known or (m, rows)
        prs.append(ProcessorReport(f"p{i}", 3, "player", runs=r, measured_runs=m,
                                   entity_rows_processed=rows, date_level_rows=dl,
                                   baseline_runs=b, baseline_runs_processed=brows,
                                   saved_hours=0.5))  # fmt: skip
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
        # 2 of 3 measured runs have a known date-level size: it said "routed 12 entity rows
        # in 3 runs; ... 460: 38.3x", the 10 rows of the third against nothing at date level
        (((3, 3, 12, 460, 2, 2),), "routed 2 entity rows in 2 runs with a known date-level "
         "size (of 3 measured); the same runs at date level 460: 230.0x less work routed"),
        (((4, 3, 12, 460, 2, 2),), "routed 2 entity rows in 2 runs with a known date-level "
         "size (of 3 measured, 4 in all); the same runs at date level 460"),
        (((2, 2, 12, 0, 0, 0),), "work: not comparable with date level (no measured run's "
         "full-date size is known)"),
        (((3, 0, 0, 0),), "work: not measurable (no run with known entity rows)"),
        ((), "work: not measurable (no run with known entity rows)"),
    ],
)  # fmt: skip
def test_headline_counts_the_runs_its_rows_come_from(
    procs: tuple[tuple[int, ...], ...], says: str
) -> None:
    """Rows and runs of the headline are of the same runs; none routed is measured work."""
    assert says in headline(_report(*procs))


def _run(i: int, day: date, ids: int, universe: int | None) -> LogRow:
    """A logged entity-scope run decision of player_game_summary (no dispatch rows)."""
    return LogRow(
        f"d{i}", "decision", f"e{i}", None, "player_game_summary", 3, "player", day, "run",
        "entities", "player", tuple(f"p{j}" for j in range(ids)), ids, universe, ids, None,
        f"t{i}", datetime(2025, 11, 19, 12, i, tzinfo=UTC), None, None, None, None, None, (),
        None,
    )  # fmt: skip


def test_headline_compares_the_runs_with_a_known_date_level_size() -> None:
    """A run whose date has no known universe adds to neither side of the comparison."""
    day = date(2025, 11, 19)
    # 2 rows on a date of 450 players; 10 rows of a correction 40 days back, universe unknown
    data = LogData((_run(0, day, 2, 450), _run(1, day - timedelta(days=40), 10, None)), (), (), ())
    report = build_report(data)
    (p,) = report.processors
    assert headline(report).startswith(
        "work: routed 2 entity rows in 1 runs with a known date-level size (of 2 measured); "
        "the same runs at date level 450: 225.0x less work routed"
    )
    assert (p.measured_runs, p.entity_rows_processed) == (2, 12)
    assert (p.baseline_runs, p.baseline_runs_processed, p.date_level_rows) == (1, 2, 450)
    out = json.loads(json.dumps(report.to_json()))["processors"][0]  # --json: the same figures
    assert (out["baseline_runs"], out["baseline_runs_processed"], out["date_level_rows"]) == (
        1, 2, 450,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("span", "says"),
    [
        (
            (datetime(2025, 11, 19, 18, 5, tzinfo=UTC), datetime(2025, 11, 21, 6, 40, tzinfo=UTC)),
            "1 runs (dispatched triggers), 1 day(s): 2025-11-19 18:05 to 2025-11-21 06:40 UTC",
        ),
        ((None, None), "1 runs (dispatched triggers), 1 day(s)"),  # no decision: no window
    ],
)
def test_text_header_gives_the_window_of_decisions_it_covers(
    span: tuple[datetime | None, datetime | None], says: str
) -> None:
    """The text report's first line names its first and last decision times (a pruned log's
    window), as --json's summary.first_decision/last_decision."""
    from scoperouter.commands.report import render_text

    r = _report((1, 1, 4, 10))
    r.first_decision, r.last_decision = span
    assert render_text(r).splitlines()[0].endswith(says)

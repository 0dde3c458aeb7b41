"""Which run a completion is measured against (``runs.attach_completions``): by its trigger
id, else (naming no trigger) the next run of its processor and date without one -- a run whose dispatch failed
(it never reached the processor) last, so the run that went out keeps its measurement."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from scoperouter.execution_log.reader import CompletionRow
from scoperouter.execution_log.runs import Run, attach_completions

DAY = date(2025, 11, 19)


def _run(tid: str, minute: int, status: str | None) -> Run:
    at = datetime(2025, 11, 19, 18, minute, tzinfo=UTC)
    return Run("p", DAY, "entities", at, tid, status, 4, 10, 1)


def _done(tid: str | None, records: int = 4) -> CompletionRow:
    return CompletionRow("p", DAY, tid, records, 1, 2.0, None)


@pytest.mark.parametrize(
    ("statuses", "completions", "measured", "unmatched"),
    [
        # no trigger id: the ok run takes it, not the earlier dead-lettered one
        (("dead_letter", "ok"), (None,), ("t-2",), 0),
        (("failed", "ok", "ok"), (None, None), ("t-2", "t-3"), 0),
        # only failed runs left: the earliest takes it (it may have run before failing)
        (("dead_letter", "dead_letter"), (None,), ("t-1",), 0),
        # named by trigger id: its own run, failed or not
        (("dead_letter", "ok"), ("t-1",), ("t-1",), 0),
        # naming a trigger the log no longer has (pruned): unmatched, never another run's
        (("ok", "ok"), ("t-9",), (), 1),
        (("ok",), ("t-9", None), ("t-1",), 1),
        # more completions than runs: the rest count as unmatched
        (("ok",), (None, None), ("t-1",), 1),
        # before and after: the earliest ok run first
        (("ok", "dead_letter", "ok"), (None,), ("t-1",), 0),
    ],
)
def test_a_completion_naming_no_trigger_goes_to_a_run_that_went_out(
    statuses: tuple[str, ...],
    completions: tuple[str | None, ...],
    measured: tuple[str, ...],
    unmatched: int,
) -> None:
    """Runs of one processor and date, in time order; which ones get a completion."""
    runs = [_run(f"t-{i}", i, s) for i, s in enumerate(statuses, 1)]
    assert attach_completions(runs, [_done(t) for t in completions]) == unmatched
    assert tuple(r.trigger_id for r in runs if r.completion is not None) == measured

"""Adversarial review of the execution log: what ``report`` and the readers answer about
an update stays true after redrives, redeliveries and retention."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from logsupport import DAY, T0

from scoperouter.execution_log import SqliteExecutionLog, read_log
from scoperouter.execution_log.runs import build_runs
from scoperouter.messages.models import Trigger


def _trigger(tid: str = "t-1") -> Trigger:
    return Trigger(
        trigger_id=tid, processor="player_game_summary", game_date=DAY, start_date=DAY,
        end_date=DAY, scope="date", reason="full_date", caused_by=("e1",),
        fired_at=T0 + timedelta(seconds=10),
    )  # fmt: skip


# (status, attempts, seconds after T0) of each outcome, in the order they happened; the
# run's final status. A dead trigger redriven (`outbox redrive`, `deadletters redrive`)
# starts again with a fresh attempt count (state/api.py redrive_dead).
REDRIVES = [
    ([("dead_letter", 3, 20), ("ok", 1, 600)], "ok"),
    ([("dead_letter", 5, 20), ("dead_letter", 2, 600)], "dead_letter"),
    ([("dead_letter", 2, 20), ("ok", 1, 600), ("dead_letter", 4, 30)], "ok"),
    ([("ok", 1, 20)], "ok"),
    ([("dead_letter", 1, 20), ("ok", 3, 600)], "ok"),
]


@pytest.mark.parametrize(("outcomes", "final"), REDRIVES)
def test_final_outcome_is_the_latest_not_the_most_attempted(
    tmp_path: Path, outcomes: list[tuple[str, int, int]], final: str
) -> None:
    """A redriven trigger's run has the status of its latest outcome, not its highest attempt."""
    path = tmp_path / "log.sqlite"
    with SqliteExecutionLog(path) as log:
        for status, attempts, s in outcomes:
            log.record_dispatch(
                _trigger(), status=status, attempts=attempts, latency_ms=1.0,
                dispatched_at=T0 + timedelta(seconds=s),
            )  # fmt: skip
            log.flush()
    runs, from_dispatches = build_runs(read_log(path))
    assert from_dispatches
    assert [(r.trigger_id, r.status) for r in runs] == [("t-1", final)]
    assert runs[0].failed is (final == "dead_letter")

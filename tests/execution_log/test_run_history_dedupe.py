"""The run history counts each run once: a finished row delivered again under the same
``run_id`` (a retried streaming insert, an export read twice) is the same run, counted as a
duplicate row and never as a second run's hours; rows without a ``run_id`` cannot be told
apart and each counts."""

from __future__ import annotations

from typing import Any

import pytest

from scoperouter.execution_log.run_history import map_history

PUBLISHES = {"player_game_summary": "nba_analytics.player_game_summary"}


def row(
    run_id: str | None, status: str = "success", duration: float | None = 60.0
) -> dict[str, Any]:
    """One row as RunHistoryMixin writes it (``running`` first, then the final status)."""
    return {
        "processor_name": "PlayerGameSummaryProcessor",
        "run_id": run_id,
        "status": status,
        "duration_seconds": duration,
        "records_processed": 450,
        "data_date": "2025-11-19",
        "output_table": "player_game_summary",
        "output_dataset": "nba_analytics",
    }


CASES = [
    pytest.param([row("r-1")], ["r-1"], 0, id="one-run"),
    pytest.param([row("r-1"), row("r-1")], ["r-1"], 1, id="final-row-twice"),
    pytest.param([row("r-1")] * 3 + [row("r-2")], ["r-1", "r-2"], 2, id="three-times-and-another"),
    pytest.param(
        [row("r-1", "running", None), row("r-1")], ["r-1"], 0, id="start-marker-then-final"
    ),
    pytest.param([row("r-1"), row("r-2")], ["r-1", "r-2"], 0, id="two-runs"),
    pytest.param([row(None), row(None)], ["row-1", "row-2"], 0, id="no-run-id-each-counts"),
]


@pytest.mark.parametrize(("rows", "runs", "duplicates"), CASES)
def test_a_run_id_counts_once(rows: list[dict[str, Any]], runs: list[str], duplicates: int) -> None:
    """Rows sharing a run_id make one run and one run's hours."""
    h = map_history(rows, PUBLISHES)
    assert [r.run_id for rs in h.runs.values() for r in rs] == runs
    assert sum(r.duration_s for rs in h.runs.values() for r in rs) == 60.0 * len(runs)
    assert h.to_json()["runs"] == len(runs)


@pytest.mark.parametrize(("rows", "runs", "duplicates"), CASES)
def test_repeated_rows_are_counted_as_duplicates(
    rows: list[dict[str, Any]], runs: list[str], duplicates: int
) -> None:
    """The rows a repeated run_id left out are counted (report --json: duplicate_rows), never dropped silently."""
    h = map_history(rows, PUBLISHES)
    assert h.to_json()["duplicate_rows"] == duplicates
    assert h.to_json()["rows"] == len(rows)

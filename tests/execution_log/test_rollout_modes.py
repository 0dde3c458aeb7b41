"""A processor without runs takes the mode the daemon logged for it at its start (review
defect 4): ``serve --shadow`` is not in routes.yaml, so routes.yaml cannot say; a log that
recorded no mode (another writer, BigQuery) says ``unknown``, never ``live``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_rollout_coverage import PGS, ROUTES, boxscore, history, rollout, shadow_log

from scoperouter.execution_log import SqliteExecutionLog
from scoperouter.execution_log.reader import read_log

LIVE_ROUTES = ROUTES.replace("  mode: shadow\n", "  mode: live\n")


@pytest.mark.parametrize(
    ("logged", "mode", "decision", "why"),
    [
        pytest.param({PGS: "shadow"}, "shadow", "no-go", "no routed run", id="logged-shadow"),
        pytest.param({PGS: "live"}, "live", "live", "already live", id="logged-live"),
        pytest.param(None, "unknown", "no-go", "no routed run", id="nothing-logged"),
        pytest.param({"other": "live"}, "unknown", "no-go", "no routed run", id="not-named"),
    ],
)
def test_mode_without_runs_is_the_logged_one(
    logged: dict[str, str] | None,
    mode: str,
    decision: str,
    why: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """No runs: the logged mode, else unknown -- not routes.yaml's (live here)."""
    args = shadow_log(tmp_path, [boxscore(1)], history([1]), routes=LIVE_ROUTES)
    if logged is not None:
        with SqliteExecutionLog(args[1]) as lg:
            lg.record_modes(logged)
    ro = rollout(args, capsys)
    p = {x["processor"]: x for x in ro["processors"]}[PGS]
    assert (p["mode"], p["decision"]) == (mode, decision)
    assert why in p["why"]
    assert PGS in ro["by_mode"][mode]["processors"]


def test_record_modes_keeps_the_last_start(tmp_path: Path) -> None:
    """Each start replaces the modes kept; the reader returns them (None before any)."""
    path = tmp_path / "log.sqlite"
    SqliteExecutionLog(path).close()  # a log, no mode recorded yet
    assert read_log(path).modes is None
    with SqliteExecutionLog(path) as lg:
        lg.record_modes({PGS: "shadow", "x": "shadow"})
    with SqliteExecutionLog(path) as lg:
        lg.record_modes({PGS: "live"})
    got: Any = read_log(path).modes
    assert dict(got) == {PGS: "live"}

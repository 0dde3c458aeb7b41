"""``replay``'s virtual clock runs at the events' times, and its windows fire up to the
registry's longest wait after them: a time it cannot run at (before 0001-01-01 UTC, or so
near 9999-12-31T23:59:59Z that a window would fire past it) is a rejected line
(``invalid_field``), the replay goes on; never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scoperouter.cli import main

REPO = Path(__file__).resolve().parents[2]
CONFIG = str(REPO / "routes.yaml")  # longest window wait: 90 s


def _event(event_id: str, produced_at: str) -> str:
    return json.dumps(
        {
            "event_id": event_id,
            "source": "nba_raw.nbac_injury_report",
            "game_date": "2025-11-19",
            "affected_entities": {"players": ["lebronjames"]},
            "produced_at": produced_at,
        }
    )


def _replay(tmp_path: Path, capsys: pytest.CaptureFixture[str], *lines: str) -> tuple[int, str]:
    src = tmp_path / "events.jsonl"
    src.write_text("".join(line + "\n" for line in lines))
    rc = main(["replay", str(src), "--config", CONFIG, "--as-of", "2025-11-19", "--dry-run"])
    return rc, capsys.readouterr().err


@pytest.mark.parametrize(
    "produced_at",
    [
        "9999-12-31T23:59:59Z",  # its windows would fire in year 10000
        "9999-12-31T23:58:31Z",  # 89 s before the end: a 90 s window would fire past it
        "0001-01-01T00:00:00+05:00",  # 0000-12-31T19:00Z
    ],
)
def test_a_time_the_clock_cannot_run_at_is_a_rejected_line(
    produced_at: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A produced_at out of the clock's range is rejected by line number; the next event is replayed."""
    bad, good = _event("bad", produced_at), _event("good", "2025-11-19T10:00:00Z")
    rc, err = _replay(tmp_path, capsys, bad, good)
    assert rc == 1 and "Traceback" not in err
    first, summary = err.splitlines()
    assert first.startswith("line 1: rejected: invalid_field: produced_at "), first
    assert "outside the replay clock's range" in first and first.endswith("(event bad)")
    assert summary.startswith("replay: 1 events, 1 rejected, "), summary


@pytest.mark.parametrize(
    ("produced_at", "fired_at"),
    [
        ("9999-12-31T23:58:29Z", "9999-12-31T23:59:59Z"),  # the last time: fires at the end
        ("0001-01-01T00:00:00Z", "0001-01-01T00:01:30Z"),  # the first time
    ],
)
def test_the_clock_runs_up_to_its_range_edges(
    produced_at: str, fired_at: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An event at either edge of the range is replayed, its last window firing within it."""
    src = tmp_path / "events.jsonl"
    src.write_text(_event("e", produced_at) + "\n")
    argv = ["replay", str(src), "--config", CONFIG, "--as-of", "2025-11-19", "--dry-run"]
    assert main([*argv, "--json"]) == 0
    fired = [json.loads(line)["fired_at"] for line in capsys.readouterr().out.splitlines()]
    assert max(fired) == fired_at

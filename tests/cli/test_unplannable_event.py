"""An event the planner raises on (a date whose lookahead runs past 9999-12-31) is an error
of that event, as ``serve`` dead-letters it (``planner_error``): ``replay`` rejects its line
by number and goes on (the other events planned, logged and in the outbox, exit 1);
``explain`` prints one line and exits 1. Never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scoperouter.cli import main
from scoperouter.execution_log.reader import read_log

REPO = Path(__file__).resolve().parents[2]
CONFIG = str(REPO / "routes.yaml")
SOURCE = "nba_raw.nbac_injury_report"
AT = "2025-11-19T10:00:00Z"
GOOD = {
    "event_id": "ok",
    "source": SOURCE,
    "game_date": "2025-11-19",
    "affected_entities": {"players": ["lebronjames"]},
    "produced_at": AT,
}
UNPLANNABLE = [
    {
        "event_id": "z",
        "source": SOURCE,
        "game_date": "9999-12-31",
        "affected_entities": {"players": ["lebronjames"]},
        "produced_at": AT,
    },
    {
        "event_id": "z",
        "source": SOURCE,
        "start_date": "9999-12-01",
        "end_date": "9999-12-31",
        "produced_at": AT,
    },
]
IDS = ["game-date-max", "backfill-to-max"]


@pytest.mark.parametrize("bad", UNPLANNABLE, ids=IDS)
def test_replay_rejects_an_unplannable_line_and_goes_on(
    bad: dict[str, object], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """replay rejects each unplannable line (a redelivery too) as planner_error; the good event is logged and in the outbox."""
    src = tmp_path / "events.jsonl"
    src.write_text("".join(json.dumps(e) + "\n" for e in (bad, GOOD, bad)))
    log, box = tmp_path / "log.sqlite", tmp_path / "box.jsonl"
    argv = ["replay", str(src), "--config", CONFIG, "--log", str(log), "--outbox", str(box)]
    assert main(argv) == 1
    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert lines[0].startswith("line 1: rejected: planner_error: OverflowError: "), err
    assert lines[1].startswith("line 3: rejected: planner_error: "), err
    assert lines[2].startswith("replay: 1 events, 2 rejected, 0 duplicates, "), err
    written = [json.loads(line) for line in box.read_text().splitlines()]
    assert written and len(written) == len(out.splitlines())
    assert {c for t in written for c in t["caused_by"]} == {"ok"}
    data = read_log(log)
    assert {e.event.event_id for e in data.events} == {"ok"}
    assert len(data.dispatches) == len(written)


@pytest.mark.parametrize("bad", UNPLANNABLE, ids=IDS)
@pytest.mark.parametrize("flags", [(), ("--cascade",)], ids=["plan", "cascade"])
def test_explain_an_unplannable_event_is_one_line(
    bad: dict[str, object],
    flags: tuple[str, ...],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """explain of an event the planner raises on: one error line naming it, exit 1."""
    f = tmp_path / "event.json"
    f.write_text(json.dumps(bad))
    assert main(["explain", str(f), "--config", CONFIG, *flags]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("error: cannot plan event z: planner_error: OverflowError: "), err
    assert len(err.splitlines()) == 1

"""A replayed stream with no time at all (no ``produced_at``/``timestamp``) runs on a clock
that starts now: routed as of today, its triggers fired from now -- ``fired_at`` on stdout
and in the outbox, ``decided_at``/``dispatched_at`` in the execution log -- never at the
epoch (1970-01-01)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from scoperouter.cli import main
from scoperouter.execution_log.reader import read_log

REPO = Path(__file__).resolve().parents[2]
EVENT = {
    "event_id": "a1",
    "source": "nba_raw.nbac_injury_report",
    "game_date": "2025-11-19",
    "affected_entities": {"players": ["lebronjames"]},
    "changed_fields": ["injury_status"],
}


def test_a_timeless_stream_runs_from_now(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A time-less stream is routed as of today; every time it prints, appends or logs lies between its start and its end (+ the windows)."""
    src = tmp_path / "events.jsonl"
    src.write_text(json.dumps(EVENT) + "\n" + json.dumps({**EVENT, "event_id": "a2"}) + "\n")
    log, box = tmp_path / "log.sqlite", tmp_path / "box.jsonl"
    cfg = str(REPO / "routes.yaml")
    before = datetime.now(UTC).replace(microsecond=0)
    argv = ["replay", str(src), "--config", cfg, "--json", "--log", str(log), "--outbox", str(box)]
    assert main(argv) == 0
    after = datetime.now(UTC) + timedelta(hours=1)  # the longest window waits 90 s
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert out and out == [json.loads(line) for line in box.read_text().splitlines()]
    fired = [datetime.fromisoformat(t["fired_at"]) for t in out]
    data = read_log(log)
    decided = [e.decided_at for e in data.events]
    dispatched = [r.dispatched_at for r in data.dispatches]
    assert len(decided) == 2 and len(dispatched) == len(out)
    assert {e.as_of for e in data.events} <= {before.date(), datetime.now(UTC).date()}  # today
    for at in (*fired, *decided, *dispatched):
        assert at is not None and before <= at <= after, at

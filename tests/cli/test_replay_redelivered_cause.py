"""An event delivered again after its dedup horizon (shorter than the window) into a hot
window is one cause, not two: ``replay`` lists the window's causes and ``caused_by_more``
-- and so its trigger id -- as the state stores do (``serve``), the cap not reached early."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from scoperouter.cli import main
from scoperouter.router.window_state import CAUSED_BY_CAP, trigger_id

ROUTES = """version: 1
entities: {player: {}}
defaults: {window: {quiet: 10m, max_wait: 1h}, max_entities: 100}
server: {dedup_horizon: 30s}
processors:
  p: {phase: 3, granularity: player, inputs: [{source: raw.a}]}
"""
DAY = date(2025, 11, 19)
T0 = datetime(2025, 11, 19, 18, 0, tzinfo=UTC)


def _line(event_id: str, second: int) -> str:
    at = (T0 + timedelta(seconds=second)).isoformat().replace("+00:00", "Z")
    return json.dumps(
        {
            "event_id": event_id,
            "source": "raw.a",
            "game_date": DAY.isoformat(),
            "affected_entities": {"players": ["a"]},
            "produced_at": at,
        }
    )


@pytest.mark.parametrize("again", ["e00001", "e00500", "e00950"])
def test_an_event_delivered_again_into_a_hot_window_is_one_cause(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], again: str
) -> None:
    """``cap`` distinct events (one delivered again past the horizon) into one window: replay's trigger lists all of them, counts none more, and has the id of that uncapped cause list."""
    ids = [f"e{i:05d}" for i in range(1, CAUSED_BY_CAP)]
    lines = [_line(eid, k) for k, eid in enumerate(ids)]
    lines += [_line(again, len(ids)), _line("e00000", len(ids) + 1)]  # the horizon has passed
    src, cfg = tmp_path / "events.jsonl", tmp_path / "routes.yaml"
    src.write_text("\n".join(lines) + "\n")
    cfg.write_text(ROUTES)
    assert main(["replay", str(src), "--config", str(cfg), "--json"]) == 0
    [t] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    every = tuple(sorted({*ids, "e00000"}))
    assert len(every) == CAUSED_BY_CAP
    assert (t["caused_by"], t.get("caused_by_more", 0)) == (list(every), 0)
    assert t["trigger_id"] == trigger_id("p", DAY, "entities", ("a",), every)

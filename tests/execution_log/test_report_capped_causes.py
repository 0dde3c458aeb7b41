"""A date run of a window that more than CAUSED_BY_CAP events joined is not measurable from
its decisions: its trigger's ``caused_by`` names only some of the events, so the report must
not count the needed entities of those alone (it said 1 needed of 201, 99.8% waste)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from scoperouter.cli import main
from scoperouter.router.event_ids import CAUSED_BY_CAP

REPO = Path(__file__).resolve().parents[2]
PGS = "player_game_summary"


def _events(path: Path, repeats: int, others: int) -> None:
    """``repeats`` injury updates of one player, then one of each of ``others`` players."""
    with (REPO / "data" / "relations" / "team_players.csv").open(encoding="utf-8") as f:
        players = [row[2] for row in list(csv.reader(f))[1:]]
    names = [players[0]] * repeats + players[1 : others + 1]
    with path.open("w", encoding="utf-8") as out:
        for i, p in enumerate(names):
            ev = {"event_id": f"e{i:05d}", "source": "nba_raw.nbac_injury_report",
                  "game_date": "2025-11-19", "affected_entities": {"players": [p]},
                  "changed_fields": ["injury_reason"], "produced_at": "2025-11-19T18:00:00Z"}  # fmt: skip
            out.write(json.dumps(ev) + "\n")


@pytest.mark.parametrize(
    ("repeats", "others", "needed", "measured"),
    [
        (CAUSED_BY_CAP, 200, 0, 0),  # capped: not measurable (was 1 of 201 needed)
        (5, 200, 201, 1),  # under the cap: every event's decisions found
    ],
)
def test_capped_window_is_not_measured_from_part_of_its_events(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    repeats: int,
    others: int,
    needed: int,
    measured: int,
) -> None:
    """A date run past the caused_by cap is left out of the waste figures, not undercounted."""
    events, log = tmp_path / "events.jsonl", tmp_path / "log.sqlite"
    _events(events, repeats, others)
    cfg = str(REPO / "routes.yaml")
    args = ["replay", str(events), "--config", cfg, "--as-of", "2025-11-19", "--json"]
    assert main([*args, "--log", str(log), "--outbox", str(tmp_path / "o.jsonl")]) == 0
    capsys.readouterr()
    assert main(["report", "--log", str(log), "--config", cfg, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    pgs = next(p for p in report["processors"] if p["processor"] == PGS)
    assert (pgs["runs"], pgs["date_runs"]) == (1, 1)  # one window, fallen back to the date
    assert (pgs["entity_rows_needed"], pgs["measured_runs"]) == (needed, measured)

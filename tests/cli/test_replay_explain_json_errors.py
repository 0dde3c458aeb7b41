"""With ``--json``, ``replay`` and ``explain`` print their errors on stdout as JSON too, in
the README's shapes ("``--json`` errors"): an unreadable input file is ``invalid_config``
(an ``io`` issue naming the file), a rejected replay line ``invalid_event`` with its
``"line"`` (before the triggers), an event the planner raises on ``invalid_event`` with
reason ``planner_error``. stderr keeps its one line per error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scoperouter.cli import main

REPO = Path(__file__).resolve().parents[2]
CONFIG = str(REPO / "routes.yaml")
GOOD = {
    "event_id": "ok",
    "source": "nba_raw.nbac_injury_report",
    "game_date": "2025-11-19",
    "affected_entities": {"players": ["lebronjames"]},
    "produced_at": "2025-11-19T10:00:00Z",
}


@pytest.mark.parametrize("command", ["replay", "explain"])
def test_an_unreadable_input_is_a_json_error(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A missing input file: one line on stderr, an invalid_config io issue naming it on stdout."""
    missing = str(tmp_path / "nonexist.jsonl")
    assert main([command, missing, "--config", CONFIG, "--json"]) == 1
    out, err = capsys.readouterr()
    assert len(err.splitlines()) == 1 and "cannot read" in err, err
    got = json.loads(out)
    assert got["error"] == "invalid_config"
    (issue,) = got["issues"]
    assert (issue["file"], issue["code"]) == (missing, "io")
    assert issue["message"] == "cannot read: No such file or directory"


@pytest.mark.parametrize(
    ("line", "reason", "event_id"),
    [
        (b"[1, 2]", "not_an_object", None),
        (b'{"message": {"data": "!!!"}}', "invalid_envelope", None),
        (
            json.dumps({**GOOD, "event_id": "d", "game_date": "2025-13-01"}).encode(),
            "invalid_date",
            "d",
        ),
        (
            json.dumps({**GOOD, "event_id": "z", "game_date": "9999-12-31"}).encode(),
            "planner_error",
            "z",
        ),
    ],
    ids=["not-an-object", "bad-envelope", "bad-date", "planner-error"],
)
def test_replay_json_prints_each_rejected_line(
    line: bytes,
    reason: str,
    event_id: str | None,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """replay --json: a rejected line is an invalid_event object with its line number, before the triggers."""
    src = tmp_path / "events.jsonl"
    src.write_bytes(json.dumps(GOOD).encode() + b"\n" + line + b"\n")
    assert main(["replay", str(src), "--config", CONFIG, "--json", "--dry-run"]) == 1
    out, err = capsys.readouterr()
    error, *triggers = [json.loads(x) for x in out.splitlines()]
    assert {k: error[k] for k in ("error", "reason", "event_id", "line")} == {
        "error": "invalid_event",
        "reason": reason,
        "event_id": event_id,
        "line": 2,
    }
    assert error["detail"] and f"line 2: rejected: {reason}: {error['detail']}" in err
    assert triggers and all("processor" in t for t in triggers)


def test_explain_json_planner_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """explain --json of an event the planner raises on prints an invalid_event planner_error object."""
    f = tmp_path / "event.json"
    f.write_text(json.dumps({**GOOD, "event_id": "z", "game_date": "9999-12-31"}))
    assert main(["explain", str(f), "--config", CONFIG, "--json"]) == 1
    got = json.loads(capsys.readouterr().out)
    assert got == {
        "error": "invalid_event",
        "reason": "planner_error",
        "detail": "OverflowError: date value out of range",
        "event_id": "z",
    }


@pytest.mark.parametrize(
    ("flag", "says"),
    [("--outbox", "cannot write outbox"), ("--log", "cannot open execution log")],
)
def test_replay_json_unwritable_output(
    flag: str, says: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An outbox or log replay cannot write: one line on stderr and its invalid_config object last on stdout."""
    src = tmp_path / "events.jsonl"
    src.write_text(json.dumps(GOOD) + "\n")
    (tmp_path / "file").write_text("")
    where = str(tmp_path / "file" / "out")  # under a file: no directory can be made
    others = ["--outbox", str(tmp_path / "box.jsonl")] if flag == "--log" else ["--no-log"]
    assert main(["replay", str(src), "--config", CONFIG, "--json", flag, where, *others]) == 1
    out, err = capsys.readouterr()
    assert err.startswith(f"error: {says} {where}: ") and len(err.splitlines()) == 1, err
    last = json.loads(out.splitlines()[-1])
    assert last["error"] == "invalid_config" and last["issues"][0]["message"].startswith(says)

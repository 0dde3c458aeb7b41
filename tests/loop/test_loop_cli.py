"""``scoperouter trace`` and ``scoperouter deadletters`` on a ledger saved in a state dir."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from closed_loop_support import AS_OF, REL, done, event, registry

from scoperouter.cli import main
from scoperouter.router.completion_ref import CompletionRef
from scoperouter.router.engine import RoutingEngine
from scoperouter.runtime.loop_store import FileLoopState, Requests


@pytest.fixture
def state(tmp_path: Path) -> Path:
    """raw.a -> u1 ok -> p fails twice (run_retries 1: a dead letter); u2 ok."""
    e = RoutingEngine(registry(run_retries=1), loop=True)
    e.receive(event("r1", "raw.a", "x"), REL, AS_OF, 0.0)
    sent = e.tick(10.0)
    sent += e.tick(30.0)
    for f in sent:
        e.complete(done(f.trigger, event_id=f"c-{f.trigger.processor}"), 40.0)
        e.receive(
            event(f"c-{f.trigger.processor}", f"an.{f.trigger.processor}", "x"), REL, AS_OF, 40.0
        )
    (p,) = [f for f in e.tick(50.0) if f.trigger.processor == "p"]
    e.complete(
        CompletionRef(outcome="failed", trigger_id=p.trigger.trigger_id, error="disk full"), 55.0
    )
    (again,) = e.tick(200.0)
    assert again.trigger.trigger_id == p.trigger.trigger_id and again.attempt == 2
    e.complete(
        CompletionRef(outcome="failed", trigger_id=p.trigger.trigger_id, error="disk full"), 210.0
    )
    assert e.loop is not None
    FileLoopState(tmp_path).save(e.loop.snapshot())
    return tmp_path


def test_trace_follows_the_wave(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """trace r1 shows u1, u2, then p with both attempts and its dead letter."""
    assert main(["trace", "r1", "--state-dir", str(state), "--json"]) == 0
    tree = json.loads(capsys.readouterr().out)
    procs = [t["processor"] for t in tree["event"]["triggers"]]
    assert procs == ["u1", "u2"]
    (p,) = tree["event"]["triggers"][0]["events"][0]["triggers"]
    assert p["processor"] == "p" and p["state"] == "dead" and p["attempts"] == 2
    assert [h["what"] for h in p["history"]] == [
        "dispatched",
        "failed",
        "dispatched",
        "failed",
        "dead_letter",
    ]


def test_trace_html_and_unknown_id(
    state: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--html writes a timeline; an id the ledger does not know is an error (exit 1)."""
    out = tmp_path / "t.html"
    assert main(["trace", "r1", "--state-dir", str(state), "--html", str(out)]) == 0
    assert "<table>" in out.read_text(encoding="utf-8")
    assert main(["trace", "nope", "--state-dir", str(state)]) == 1


def test_deadletters_list_show_redrive(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """list names p's trigger with its error; redrive --reason queues a request with it."""
    assert main(["deadletters", "list", "--state-dir", str(state), "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert (row["processor"], row["outcome"], row["error"], row["attempts"]) == (
        "p",
        "failed",
        "disk full",
        2,
    )
    assert (
        main(["deadletters", "show", row["trigger_id"], "--state-dir", str(state), "--json"]) == 0
    )
    assert json.loads(capsys.readouterr().out)["trigger"]["trigger_id"] == row["trigger_id"]
    assert main(["deadletters", "redrive", "--reason", "timed_out", "--state-dir", str(state)]) == 1
    assert (
        main(["deadletters", "redrive", "--reason", "disk", "--state-dir", str(state), "--json"])
        == 0
    )
    (req,) = Requests(state).read()
    assert req["trigger_ids"] == [row["trigger_id"]]


def test_a_request_applies_once_and_its_completion_closes_the_letter(state: Path) -> None:
    """The router applies a redrive request once (same trigger id); its success closes it."""
    snap = FileLoopState(state).load()
    assert snap is not None
    e = RoutingEngine.restore(
        registry(run_retries=1), {"version": 1, "windows": [], "loop": snap}, loop=True
    )
    assert e.loop is not None
    (dead,) = e.loop.ledger.dead_letters()
    req = {"id": "q1", "op": "redrive", "trigger_ids": [dead.trigger_id]}
    (r,) = e.loop.request(req, 300.0)
    assert r.trigger.trigger_id == dead.trigger_id
    assert e.loop.request(req, 301.0) == []
    e.complete(CompletionRef(outcome="success", trigger_id=dead.trigger_id), 310.0)
    assert e.loop.ledger.dead_letters() == ()


def test_trace_shows_the_events_decisions_from_the_log(
    state: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With --log, the root event carries its decisions from the execution log."""
    from datetime import UTC, datetime

    from scoperouter.execution_log import open_log

    reg = registry(run_retries=1)
    ev = event("r1", "raw.a", "x")
    log = open_log(tmp_path / "log.sqlite")
    try:
        decisions = RoutingEngine(reg).plan(ev, REL, AS_OF)
        log.record_decisions(
            ev,
            decisions,
            datetime(2025, 11, 19, tzinfo=UTC),
            registry=reg,
            relations=REL,
            as_of=AS_OF,
        )
    finally:
        log.close()
    argv = ["trace", "r1", "--state-dir", str(state), "--log", str(tmp_path / "log.sqlite")]
    assert main([*argv, "--json"]) == 0
    got = json.loads(capsys.readouterr().out)["event"]["decisions"]
    assert sorted(d["processor"] for d in got if d["action"] == "run") == ["u1", "u2"]
    assert main(argv) == 0
    assert "decisions: run u1, u2; 2 skip" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (b"", 1),  # a new file
        (b'{"id":"r0","op":"redrive","trigger_ids":["t-0"]}\n', 2),  # whole lines
        (b'{"id":"r0","op":"redr', 1),  # a crash's torn last line: skipped, not glued on
    ],
)
def test_a_request_after_a_torn_line_is_read(tmp_path: Path, before: bytes, after: int) -> None:
    """A redrive request appended after a crash's torn last line is still read by the router."""
    requests = Requests(tmp_path)
    requests.path.write_bytes(before)
    requests.append({"id": "r1", "op": "redrive", "trigger_ids": ["t-1"]})
    read = requests.read()
    assert len(read) == after and read[-1]["id"] == "r1"

"""`trace` and `deadletters` never ignore what they are told: an explicit --config or --log
that cannot be read, an --html file that cannot be written, or a redrive naming a trigger
that is not a dead letter is a one-line error with exit 1 (nothing requested); with
--json, stdout stays JSON. An empty redrive filter is a usage error (exit 2, nothing
requested)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from closed_loop_support import AS_OF, REL, event, registry

from scoperouter.cli import main
from scoperouter.router.completion_ref import CompletionRef
from scoperouter.router.engine import RoutingEngine
from scoperouter.runtime.loop_store import FileLoopState, Requests


@pytest.fixture
def state(tmp_path: Path) -> tuple[Path, list[str]]:
    """raw.a -> u1 and u2, both fail with no retries: two dead letters."""
    e = RoutingEngine(registry(run_retries=0), loop=True)
    e.receive(event("r1", "raw.a", "x"), REL, AS_OF, 0.0)
    for f in e.tick(10.0) + e.tick(30.0):
        e.complete(CompletionRef(outcome="failed", trigger_id=f.trigger.trigger_id), 40.0)
    e.tick(100.0)
    assert e.loop is not None
    dead = [x.trigger_id for x in e.loop.ledger.dead_letters()]
    assert len(dead) == 2
    FileLoopState(tmp_path / "st").save(e.loop.snapshot())
    return tmp_path / "st", dead


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--config", "{tmp}/missing.yaml"], "missing.yaml"),
        (["--log", "{tmp}/missing.sqlite"], "missing.sqlite"),
        (["--html", "{tmp}/no/such/dir/t.html"], "t.html"),
    ],
    ids=["missing_config", "missing_log", "unwritable_html"],
)
def test_trace_refuses_what_it_cannot_use(
    state: tuple[Path, list[str]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    needle: str,
) -> None:
    """An explicit --config/--log that is not there, or an --html it cannot write: exit 1."""
    args = [a.replace("{tmp}", str(tmp_path)) for a in extra]
    rc = main(["trace", "r1", "--state-dir", str(state[0]), *args])
    err = capsys.readouterr().err
    assert rc == 1
    assert needle in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err


def test_redrive_with_an_unknown_id_requests_nothing(
    state: tuple[Path, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    """redrive KNOWN BOGUS names BOGUS and queues no request (not KNOWN alone, silently)."""
    st, dead = state
    assert main(["deadletters", "redrive", dead[0], "t-bogus", "--state-dir", str(st)]) == 1
    assert "t-bogus" in capsys.readouterr().err
    assert Requests(st).read() == []


@pytest.mark.parametrize(
    "argv",
    [["redrive", "t-bogus"], ["redrive", "--processor", "nobody"]],
    ids=["unknown_id", "no_match"],
)
def test_redrive_json_stays_json(
    state: tuple[Path, list[str]], capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    """With --json a redrive that matches nothing still prints JSON on stdout (exit 1)."""
    assert main(["deadletters", *argv, "--state-dir", str(state[0]), "--json"]) == 1
    json.loads(capsys.readouterr().out)


@pytest.mark.parametrize(
    "flt",
    [["--processor", ""], ["--reason", ""], ["--reason", " "]],
    ids=["empty_processor", "empty_reason", "blank_reason"],
)
def test_redrive_with_an_empty_filter_is_a_usage_error(
    state: tuple[Path, list[str]], capsys: pytest.CaptureFixture[str], flt: list[str]
) -> None:
    """An empty --processor/--reason (an unset shell variable) is exit 2, never every dead letter."""
    st, _ = state
    with pytest.raises(SystemExit) as exc:
        main(["deadletters", "redrive", *flt, "--state-dir", str(st)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {flt[0]}: must not be empty" in err and "Traceback" not in err
    assert Requests(st).read() == []

"""Operator requests (``loop-requests.jsonl``) a router applies: a line that is no request
(trigger_ids not a list of strings, no string id, an unknown op) is skipped with one warning
naming the file and the line, and the valid requests of the same file are applied; a poll
whose transaction failed reads the file again (its requests are not lost)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from runtime_support import GAME_DAY, load, write_registry

from scoperouter.router.engine import RoutingEngine
from scoperouter.router.journal_replay import replay_journal
from scoperouter.runtime.durable_windows import DurableWindows
from scoperouter.runtime.loop_store import REQUESTS_FILE
from scoperouter.runtime.options import RouterOptions
from scoperouter.runtime.store import Store

GOOD = {"id": "good-req", "op": "redrive", "trigger_ids": ["no-such-trigger"]}


def _windows(tmp_path: Path) -> tuple[DurableWindows, Store]:
    path = write_registry(tmp_path / "cfg", defaults={"run_retries": 1})  # the closed loop
    store = Store(tmp_path / "state" / "state.sqlite3", sync="normal")
    dw = DurableWindows(
        load(path).registry, store, RouterOptions(as_of=GAME_DAY), lambda: 1_764_000_000.0
    )
    dw.restore()
    return dw, store


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        ({"id": "bad", "op": "redrive", "trigger_ids": 5}, "trigger_ids"),
        ({"id": "bad", "op": "redrive", "trigger_ids": None}, "trigger_ids"),
        ({"id": "bad", "op": "redrive", "trigger_ids": [1, 2]}, "trigger_ids"),
        ({"id": "bad", "op": "redrive", "trigger_ids": "t-1"}, "trigger_ids"),
        ({"id": 7, "op": "redrive", "trigger_ids": []}, "id"),
        ({"id": "bad", "op": "explode", "trigger_ids": []}, "op"),
        ([1, 2], "object"),
    ],
    ids=["ids_int", "ids_null", "ids_not_strings", "ids_a_string", "id_int", "op", "a_list"],
)
def test_bad_request_line_is_skipped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, bad: object, why: str
) -> None:
    """A bad line before a good one: the good one is applied, the bad one warned once
    (file and line), the transaction commits and the store stays ready."""
    dw, store = _windows(tmp_path)
    (tmp_path / "state" / REQUESTS_FILE).write_text(json.dumps(bad) + "\n" + json.dumps(GOOD))
    with caplog.at_level(logging.WARNING, logger="scoperouter.runtime"):
        dw.fire_due(lambda: None)
    loop = dw.engine.loop
    assert loop is not None
    assert loop.requests_done == {"good-req"}
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 1, warned
    assert f"{tmp_path / 'state' / REQUESTS_FILE} line 1" in warned[0] and why in warned[0]
    dw.restore()  # from the store: the good request was committed, the bad one not
    assert dw.engine.loop is not None and dw.engine.loop.requests_done == {"good-req"}
    store.close()


def test_requests_read_again_after_a_failed_transaction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The poll whose transaction failed does not mark the file read: the next poll, after
    the engine was rebuilt from the store, applies its requests."""
    dw, store = _windows(tmp_path)
    (tmp_path / "state" / REQUESTS_FILE).write_text(json.dumps(GOOD) + "\n")

    def fail(force_journal: bool = False) -> None:
        raise RuntimeError("the store failed")

    with monkeypatch.context() as m:
        m.setattr(dw, "finish_journal", fail)  # after the poll, in its transaction
        with pytest.raises(RuntimeError):
            dw.fire_due(lambda: None)
    dw.restore()  # what the router does after a failed transaction
    dw.fire_due(lambda: None)
    assert dw.engine.loop is not None and dw.engine.loop.requests_done == {"good-req"}
    store.close()


@pytest.mark.parametrize(
    "req",
    [{"id": "r", "op": "redrive", "trigger_ids": 5}, {"id": "r", "op": "redrive"}],
    ids=["ids_int", "no_ids"],
)
def test_journaled_bad_request_is_ignored_on_replay(tmp_path: Path, req: object) -> None:
    """A journaled request of another shape replays as nothing (no TypeError at restart)."""
    path = write_registry(tmp_path / "cfg", defaults={"run_retries": 1})
    engine = RoutingEngine(load(path).registry, loop=True)
    assert replay_journal(engine, [("request", 1.0, json.dumps(req), None)]) == 1
    assert engine.loop is not None and engine.loop.requests_done == set()

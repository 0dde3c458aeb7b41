"""The ledger attributes a completion to the attempt whose message id it names: a success of a
run that already reported missed ids or a failure is stale and cancels no re-run."""

from __future__ import annotations

import json
from typing import Any

import pytest
from closed_loop_support import AS_OF, REL, event, registry, trig

from scoperouter.router.completion_ref import CompletionRef, ref_to_dict
from scoperouter.router.engine import RoutingEngine
from scoperouter.router.journal_replay import JournalRow, replay_journal
from scoperouter.router.ledger_book import LedgerBook
from scoperouter.router.loop_params import LoopParams


def book(retries: int = 1, timeout: float | None = 100.0) -> LedgerBook:
    return LedgerBook(lambda _p: LoopParams(retries, timeout, None, backoff_base_s=10.0))


def names(how: str, mid: str, **kw: Any) -> CompletionRef:
    """A completion of the run triggered by message ``mid``: by that id alone, or with the
    trigger id too (the SDK)."""
    tid = "t-1" if how == "both" else None
    return CompletionRef(trigger_id=tid, message_id=mid, **kw)


FAILURES: dict[str, dict[str, Any]] = {
    "partial_missed": {"outcome": "partial", "missed": ("b",)},
    "failed": {"outcome": "failed", "error": "boom"},
}
STALE: dict[str, dict[str, Any]] = {
    "success": {"outcome": "success"},
    "no_data": {"outcome": "no_data"},
    "partial": {"outcome": "partial"},
}


@pytest.mark.parametrize("how", ["message_id", "both"])
@pytest.mark.parametrize("failure", sorted(FAILURES))
@pytest.mark.parametrize("late", sorted(STALE))
@pytest.mark.parametrize("rerun_sent", [False, True], ids=["in_backoff", "rerun_running"])
def test_a_stale_success_of_a_failed_attempt_cancels_no_rerun(
    how: str, failure: str, late: str, rerun_sent: bool
) -> None:
    """Attempt 1 reports missed ids or a failure; its own later success is stale: the re-run goes out and only its success closes."""
    b = book()
    b.open(trig(), 0.0)
    b.alias("9001", "t-1", 0.5)
    b.complete(names(how, "9001", event_id="rep-1", **FAILURES[failure]), 1.0)
    if rerun_sent:
        (r,) = b.due(100.0)
        assert r.attempt == 2
        b.alias("9002", "t-1", 100.5)
    b.complete(names(how, "9001", event_id="ev-1", **STALE[late]), 101.0)
    e = b.get("t-1")
    assert e is not None
    assert e.phase == ("dispatched" if rerun_sent else "backoff"), e.phase
    assert e.history[-1][1:] == ("late", 1, STALE[late]["outcome"], "ev-1")
    if not rerun_sent:
        (r,) = b.due(200.0)
        assert r.attempt == 2 and r.trigger.entity_ids == (
            ("b",) if failure == "partial_missed" else ("a", "b")
        )
        b.alias("9002", "t-1", 200.5)
    b.complete(names(how, "9002", event_id="ev-2", outcome="success"), 201.0)
    closed = b.get("t-1")
    assert closed is not None and closed.phase == "succeeded"
    assert closed.history[-1][1:3] == ("success", 2)


@pytest.mark.parametrize("how", ["message_id", "both"])
def test_a_late_success_after_a_timeout_still_closes(how: str) -> None:
    """Attempt 1 timed out (it reported nothing): its late success closes the trigger, re-run or not."""
    b = book()
    b.open(trig(), 0.0)
    b.alias("9001", "t-1", 0.5)
    b.due(100.0)  # timed out: backoff
    (r,) = b.due(120.0)
    assert r.attempt == 2
    b.alias("9002", "t-1", 120.5)
    b.complete(names(how, "9001", event_id="ev-1", outcome="success"), 121.0)
    e = b.get("t-1")
    assert e is not None and e.phase == "succeeded"
    assert e.history[-1][1:3] == ("success", 1)


def test_a_success_of_another_attempt_closes() -> None:
    """Attempt 1 missed ids; attempt 2's success (its own message id) closes, even before attempt 1's stale one."""
    b = book()
    b.open(trig(), 0.0)
    b.alias("9001", "t-1", 0.5)
    b.complete(names("message_id", "9001", outcome="partial", missed=("b",), event_id="r1"), 1.0)
    b.due(100.0)
    b.alias("9002", "t-1", 100.5)
    b.complete(names("message_id", "9001", outcome="success", event_id="ev-1"), 101.0)
    b.complete(names("message_id", "9002", outcome="success", event_id="ev-2"), 102.0)
    e = b.get("t-1")
    assert e is not None and e.phase == "succeeded"


def test_the_trigger_id_names_the_trigger_and_the_message_id_the_attempt() -> None:
    """A message id recorded for another trigger neither redirects the completion nor makes it stale."""
    b = book()
    b.open(trig("t-1"), 0.0)
    b.open(trig("t-2"), 0.0)
    b.alias("9001", "t-1", 0.5)
    b.alias("9002", "t-2", 0.5)
    b.complete(CompletionRef(outcome="failed", message_id="9001", event_id="r1"), 1.0)
    # trigger t-2's success naming t-1's message id: t-2 closes, t-1 keeps its re-run
    b.complete(
        CompletionRef(outcome="success", trigger_id="t-2", message_id="9001", event_id="e2"), 2.0
    )
    one, two = b.get("t-1"), b.get("t-2")
    assert one is not None and one.phase == "backoff"
    assert two is not None and two.phase == "succeeded"


@pytest.mark.parametrize("alias_at", [1.5, 3.0, None], ids=["before", "after", "never"])
def test_a_failure_overtaking_its_publish_id_still_makes_the_success_stale(
    alias_at: float | None,
) -> None:
    """A run's partial report (trigger id and message id) overtakes the record of its message id, or a crash lost the record: its later success is stale all the same."""
    b = book()
    b.open(trig(), 0.0)
    b.complete(names("both", "9001", outcome="partial", missed=("b",), event_id="r1"), 1.0)
    if alias_at == 1.5:
        b.alias("9001", "t-1", alias_at)
    b.complete(names("both", "9001", outcome="success", event_id="ev-1"), 2.0)
    if alias_at == 3.0:
        b.alias("9001", "t-1", alias_at)
    e = b.get("t-1")
    assert e is not None and e.phase == "backoff"


@pytest.mark.parametrize(
    ("failed_as", "stale_as"),
    [("9001", "9001"), ("t-1", "t-1"), ("9001", "9002")],
    ids=["other_trigger", "echoed_trigger_id", "another_message"],
)
@pytest.mark.parametrize("reported", [True, False], ids=["after_a_failure", "after_a_timeout"])
def test_a_message_id_that_names_no_run_of_the_trigger_names_no_attempt(
    failed_as: str, stale_as: str, reported: bool
) -> None:
    """A message id recorded for another trigger, the trigger id echoed (the same for every attempt), or a message never recorded: no attempt -- after a failure the success is stale while the re-run waits, after a timeout it closes."""
    b = book()
    b.open(trig("t-1"), 0.0)
    b.open(trig("t-2"), 0.0)
    if failed_as == "9001":
        b.alias("9001", "t-2" if stale_as == "9001" else "t-1", 0.5)
    if reported:
        b.complete(names("both", failed_as, outcome="partial", missed=("b",), event_id="r1"), 1.0)
    else:
        b.due(100.0)  # attempt 1 timed out: backoff
    b.complete(names("both", stale_as, outcome="success", event_id="ev-1"), 101.0)
    e = b.get("t-1")
    assert e is not None and e.phase == ("backoff" if reported else "succeeded")


def test_a_push_message_id_names_its_attempt() -> None:
    """An HTTP target's push messageId (<trigger_id>-<row>, one row per attempt) names the run too."""
    b = book()
    b.open(trig(), 0.0)
    b.complete(names("both", "t-1-17", outcome="failed", error="boom", event_id="r1"), 1.0)
    b.complete(names("both", "t-1-17", outcome="success", event_id="ev-1"), 2.0)
    e = b.get("t-1")
    assert e is not None and e.phase == "backoff"
    b.due(100.0)
    b.complete(names("both", "t-1-18", outcome="success", event_id="ev-2"), 101.0)
    e = b.get("t-1")
    assert e is not None and e.phase == "succeeded"


@pytest.mark.parametrize("restart_before", ["report", "stale_success"])
def test_attempts_survive_a_snapshot(restart_before: str) -> None:
    """The attempt of each recorded message id and the runs that failed are in the snapshot."""
    b = book()
    b.open(trig(), 0.0)
    b.alias("9001", "t-1", 0.5)
    if restart_before == "report":
        b = LedgerBook.restore(b.params, b.snapshot())
    b.complete(names("message_id", "9001", outcome="failed", event_id="r1"), 1.0)
    b = LedgerBook.restore(b.params, b.snapshot())
    b.complete(names("message_id", "9001", outcome="success", event_id="ev-1"), 2.0)
    e = b.get("t-1")
    assert e is not None and e.phase == "backoff"
    assert b.snapshot()["alias_attempts"] == {"9001": 1}


def test_a_snapshot_without_attempts_still_loads() -> None:
    """A snapshot written before attempts were recorded loads; its message ids name their trigger, unattributed."""
    b = book()
    b.open(trig(), 0.0)
    b.alias("9001", "t-1", 0.5)
    snap = b.snapshot()
    del snap["alias_attempts"]
    for item in snap["entries"]:
        del item["failed_runs"]
    old = LedgerBook.restore(b.params, snap)
    assert old.entries() == b.entries()
    old.complete(names("message_id", "9001", outcome="success", event_id="ev-1"), 1.0)
    e = old.get("t-1")
    assert e is not None and e.phase == "succeeded"
    assert e.history[-1][1:3] == ("success", 1)


def test_attempts_survive_the_journal_replay() -> None:
    """Each message id replays to the attempt it was recorded for; the replayed loop ignores attempt 1's stale success like the live one."""
    reg = registry(run_retries=1, completion_timeout="1h")
    rows: list[JournalRow] = []
    live = RoutingEngine(reg, loop=True)
    live.journal = lambda op, now, ev, d: rows.append(
        (op, now, ev.model_dump_json() if ev else None, d.model_dump_json() if d else None)
    )

    def complete(ref: CompletionRef, now: float) -> None:
        rows.append(("complete", now, json.dumps(ref_to_dict(ref)), None))
        live.complete(ref, now)

    def alias(mid: str, tid: str, now: float) -> None:
        rows.append(("alias", now, mid, tid))
        live.alias(mid, tid, now)

    live.receive(event("e1", "raw.a", "x"), REL, AS_OF, 0.0)
    (t,) = [f.trigger for f in live.tick(10.0) if f.trigger.processor == "u1"]
    alias("9001", t.trigger_id, 10.5)
    complete(CompletionRef(outcome="failed", message_id="9001", event_id="r1"), 11.0)
    (again,) = [f for f in live.tick(100.0) if f.trigger.trigger_id == t.trigger_id]
    assert again.attempt == 2
    alias("9002", t.trigger_id, 100.5)
    replayed = RoutingEngine(reg, loop=True)
    replay_journal(replayed, rows)
    assert live.loop is not None and replayed.loop is not None
    assert replayed.loop.snapshot() == live.loop.snapshot()
    assert live.loop.snapshot()["ledger"]["alias_attempts"] == {"9001": 1, "9002": 2}
    stale = CompletionRef(outcome="success", message_id="9001", event_id="ev-1")
    for engine in (live, replayed):
        engine.complete(stale, 101.0)
        e = engine.loop.ledger.get(t.trigger_id)  # type: ignore[union-attr]
        assert e is not None and (e.phase, e.attempt) == ("dispatched", 2)


@pytest.mark.parametrize("how", ["message_id", "both"])
@pytest.mark.parametrize("failure", sorted(FAILURES))
def test_an_earlier_attempts_failure_does_not_count_against_the_running_one(
    how: str, failure: str
) -> None:
    """Attempt 1 timed out, attempt 2 runs: attempt 1's late failure (naming its attempt) neither re-runs nor dead-letters attempt 2; its success stays stale, attempt 2's closes."""
    b = book(retries=1)
    b.open(trig(), 0.0)
    b.alias("9001", "t-1", 0.5)
    b.due(100.0)  # attempt 1 timed out: its one re-run (run_retries 1) is spent
    (r,) = b.due(120.0)
    assert r.attempt == 2
    b.alias("9002", "t-1", 120.5)
    b.complete(names(how, "9001", event_id="rep-1", **FAILURES[failure]), 121.0)
    e = b.get("t-1")
    assert e is not None and (e.phase, e.attempt, e.retries) == ("dispatched", 2, 1), e.phase
    assert e.history[-1][1:] == ("late", 1, FAILURES[failure]["outcome"], "rep-1")
    b.complete(names(how, "9001", event_id="ev-1", outcome="success"), 122.0)
    e = b.get("t-1")
    assert e is not None and e.phase == "dispatched"  # attempt 1's success: stale
    b.complete(names(how, "9002", event_id="ev-2", outcome="success"), 123.0)
    e = b.get("t-1")
    assert e is not None and (e.phase, e.history[-1][1:3]) == ("succeeded", ("success", 2))


@pytest.mark.parametrize("failure", sorted(FAILURES))
def test_the_running_attempts_own_failure_still_counts(failure: str) -> None:
    """Attempt 2's own failure (its message id) after attempt 1 timed out: a dead letter once run_retries are spent."""
    b = book(retries=1)
    b.open(trig(), 0.0)
    b.alias("9001", "t-1", 0.5)
    b.due(100.0)
    b.due(120.0)
    b.alias("9002", "t-1", 120.5)
    b.complete(names("both", "9002", event_id="rep-2", **FAILURES[failure]), 121.0)
    e = b.get("t-1")
    assert e is not None and e.phase == "dead"

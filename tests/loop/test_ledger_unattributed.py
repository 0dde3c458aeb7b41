"""A success naming no attempt (no message id, the trigger id echoed, or a message id the
dispatcher never recorded) after a run reported missed ids or a failure: stale while the
re-run waits, an extra run (then a dead letter) once it is out -- never a silent close."""

from __future__ import annotations

from typing import Any

import pytest
from closed_loop_support import trig

from scoperouter.router.completion_ref import CompletionRef
from scoperouter.router.ledger import UNATTRIBUTED_ERROR
from scoperouter.router.ledger_book import LedgerBook
from scoperouter.router.loop_params import LoopParams


def book(retries: int = 1, timeout: float | None = 100.0) -> LedgerBook:
    return LedgerBook(lambda _p: LoopParams(retries, timeout, None, backoff_base_s=10.0))


# how a completion names its run: the message id it names (None: none) next to the trigger id
UNNAMED: dict[str, str | None] = {
    "trigger_id_only": None,
    "echoed_trigger_id": "t-1",  # the same on every attempt
    "made_up_message_id": "X-never-recorded",  # hole 2: echoed on every attempt
}
FAILURES: dict[str, dict[str, Any]] = {
    "partial_missed": {"outcome": "partial", "missed": ("b",)},
    "failed": {"outcome": "failed", "error": "boom"},
}
SUCCESSES: dict[str, dict[str, Any]] = {
    "success": {"outcome": "success"},
    "no_data": {"outcome": "no_data"},
    "partial": {"outcome": "partial"},
}


def ref(mid: str | None, eid: str, **kw: Any) -> CompletionRef:
    return CompletionRef(trigger_id="t-1", message_id=mid, event_id=eid, **kw)


@pytest.mark.parametrize("report", ["9001", *sorted(UNNAMED)])
@pytest.mark.parametrize("how", sorted(UNNAMED))
@pytest.mark.parametrize("failure", sorted(FAILURES))
@pytest.mark.parametrize("late", sorted(SUCCESSES))
def test_before_the_rerun_goes_out_a_success_naming_no_attempt_is_stale(
    report: str, how: str, failure: str, late: str
) -> None:
    """Attempt 1 reported missed ids or a failure: a success naming no attempt before the re-run is sent is an earlier run's, stale; the re-run goes out."""
    b = book()
    b.open(trig(), 0.0)
    b.alias("9001", "t-1", 0.5)
    b.complete(ref(UNNAMED.get(report, report), "rep-1", **FAILURES[failure]), 1.0)
    b.complete(ref(UNNAMED[how], "ev-1", **SUCCESSES[late]), 2.0)
    e = b.get("t-1")
    assert e is not None and e.phase == "backoff", e.phase
    assert e.history[-1][1:] == ("late", 1, SUCCESSES[late]["outcome"], "ev-1")
    (r,) = b.due(100.0)
    assert r.attempt == 2
    assert r.trigger.entity_ids == (("b",) if failure == "partial_missed" else ("a", "b"))
    b.alias("9002", "t-1", 100.5)
    b.complete(ref("9002", "ev-2", outcome="success"), 101.0)  # the re-run names its attempt
    closed = b.get("t-1")
    assert closed is not None and closed.phase == "succeeded"
    assert closed.history[-1][1:3] == ("success", 2)


@pytest.mark.parametrize("how", sorted(UNNAMED))
@pytest.mark.parametrize("failure", sorted(FAILURES))
@pytest.mark.parametrize("timeout", [100.0, None], ids=["timeout", "no_timeout"])
def test_after_the_rerun_went_out_a_success_naming_no_attempt_reruns_then_dead_letters(
    how: str, failure: str, timeout: float | None
) -> None:
    """The re-run is out: a success naming no attempt may be the failed run's -- it closes nothing, re-runs the missed ids once more, then is a dead letter saying why (with or without completion_timeout: the trigger is not kept open)."""
    b = book(retries=2, timeout=timeout)
    b.open(trig(), 0.0)
    b.complete(ref(UNNAMED[how], "rep-1", **FAILURES[failure]), 1.0)
    missed = ("b",) if failure == "partial_missed" else ("a", "b")
    now = 1.0
    for attempt in (2, 3):
        now += 100.0
        (r,) = b.due(now)
        assert (r.attempt, r.trigger.entity_ids) == (attempt, missed)
        b.complete(ref(UNNAMED[how], f"ev-{attempt}", outcome="success"), now + 1.0)
        e = b.get("t-1")
        assert e is not None
        assert e.phase == ("backoff" if attempt == 2 else "dead"), (attempt, e.phase)
        assert e.history[-1 if attempt == 2 else -2][1:3] == ("unattributed", attempt)
    dead = b.get("t-1")
    assert dead is not None and dead.error is not None and "names no attempt" in dead.error
    # a dead letter stays dead for the same kind of success (it may still be the failed run's)
    b.complete(ref(UNNAMED[how], "ev-late", outcome="success"), now + 5.0)
    still = b.get("t-1")
    assert still is not None and still.phase == "dead"
    # the operator's redrive starts afresh: the redriven run's success closes
    (again,) = b.redrive(["t-1"], now + 10.0)
    b.complete(ref(UNNAMED[how], "ev-redrive", outcome="success"), now + 11.0)
    e = b.get("t-1")
    assert e is not None and e.phase == "succeeded" and again.attempt == 4


def test_a_second_unattributed_dead_letter_says_why_once() -> None:
    """Dead-lettered by a success naming no attempt, redriven, failed without an error and dead-lettered so again: the error says why once."""
    b = book(retries=1, timeout=None)
    b.open(trig(), 0.0)
    b.complete(ref(None, "rep-1", outcome="failed", error="boom"), 1.0)
    b.due(100.0)
    b.complete(ref(None, "ev-1", outcome="success"), 101.0)
    b.redrive(["t-1"], 200.0)
    b.complete(ref(None, "rep-2", outcome="failed"), 201.0)
    b.due(300.0)
    b.complete(ref(None, "ev-2", outcome="success"), 301.0)
    e = b.get("t-1")
    assert e is not None and e.phase == "dead" and e.attempt == 4
    assert e.error is not None and e.error.count(UNATTRIBUTED_ERROR) == 1, e.error


@pytest.mark.parametrize("how", sorted(UNNAMED))
def test_a_success_of_the_running_attempt_naming_it_closes(how: str) -> None:
    """The re-run out, a success naming its attempt closes, even after an unattributed one re-ran it."""
    b = book(retries=2)
    b.open(trig(), 0.0)
    b.complete(ref(UNNAMED[how], "rep-1", outcome="failed"), 1.0)
    b.due(100.0)
    b.alias("9002", "t-1", 100.5)
    b.complete(ref("9002", "ev-2", outcome="success"), 101.0)
    e = b.get("t-1")
    assert e is not None and (e.phase, e.history[-1][1:3]) == ("succeeded", ("success", 2))


@pytest.mark.parametrize("how", sorted(UNNAMED))
@pytest.mark.parametrize("rerun_sent", [False, True], ids=["in_backoff", "rerun_running"])
def test_after_timeouts_only_a_success_naming_no_attempt_still_closes(
    how: str, rerun_sent: bool
) -> None:
    """No run reported a failure (attempt 1 timed out): a late success naming no attempt closes, as before."""
    b = book()
    b.open(trig(), 0.0)
    b.due(100.0)  # attempt 1 timed out: backoff
    if rerun_sent:
        (r,) = b.due(120.0)
        assert r.attempt == 2
    b.complete(ref(UNNAMED[how], "ev-1", outcome="success"), 121.0)
    e = b.get("t-1")
    assert e is not None and e.phase == "succeeded"


def test_a_made_up_message_id_on_every_attempt_does_not_keep_the_trigger_open() -> None:
    """Hole 2: a processor echoing one unrecorded message id on every attempt, no completion_timeout: after a failure its trigger does not stay open -- it re-runs, then is a dead letter a redrive can close."""
    b = book(retries=1, timeout=None)
    b.open(trig(), 0.0)
    b.complete(ref("X", "rep-1", outcome="failed", error="boom"), 1.0)
    (r,) = b.due(100.0)
    assert r.attempt == 2
    b.complete(ref("X", "ev-2", outcome="success"), 101.0)
    e = b.get("t-1")
    assert e is not None and e.is_open is False and e.phase == "dead"
    b.redrive(["t-1"], 200.0)
    b.complete(ref("X", "ev-3", outcome="success"), 201.0)
    e = b.get("t-1")
    assert e is not None and e.phase == "succeeded"


@pytest.mark.parametrize("when", ["backoff", "rerun_running", "dead"])
def test_the_failure_record_survives_a_snapshot(when: str) -> None:
    """Whether a run reported a failure is in the snapshot (and derived for a snapshot written before it was)."""
    b = book(retries=1)
    b.open(trig(), 0.0)
    b.complete(ref(None, "rep-1", outcome="failed"), 1.0)
    if when != "backoff":
        b.due(100.0)
    if when == "dead":
        b.complete(ref(None, "rep-2", outcome="failed"), 101.0)
    snap = b.snapshot()
    old = {**snap, "entries": [{**i} for i in snap["entries"]]}
    for item in old["entries"]:
        del item["reported_failure"]
    for s in (snap, old):
        r = LedgerBook.restore(b.params, s)
        assert r.entries() == b.entries()
        r.complete(ref(None, "ev-9", outcome="success"), 102.0)
        e = r.get("t-1")
        assert e is not None and e.phase != "succeeded", (when, e.phase)

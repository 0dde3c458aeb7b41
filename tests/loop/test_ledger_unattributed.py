"""A success naming no attempt (no message id, the trigger id echoed, or a message id the
dispatcher never recorded) after a run reported missed ids or a failure: stale while the
re-run waits, an extra run (then a dead letter) once it is out -- never a silent close."""

from __future__ import annotations

from typing import Any

import pytest
from closed_loop_support import trig

from scoperouter.router.completion_ref import CompletionRef
from scoperouter.router.ledger_book import LedgerBook
from scoperouter.router.ledger_table import UNATTRIBUTED_ERROR
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
    """The re-run is out: a success naming no attempt may be a failed run's (two failed: attempts 1 and 2) -- it closes nothing, re-runs the missed ids once more, then is a dead letter saying why (with or without completion_timeout: the trigger is not kept open)."""
    b = book(retries=3, timeout=timeout)
    b.open(trig(), 0.0)
    b.complete(ref(UNNAMED[how], "rep-1", **FAILURES[failure]), 1.0)
    missed = ("b",) if failure == "partial_missed" else ("a", "b")
    (r,) = b.due(100.0)
    assert (r.attempt, r.trigger.entity_ids) == (2, missed)
    b.complete(ref(UNNAMED[how], "rep-2", **FAILURES[failure]), 101.0)
    now = 101.0
    for attempt in (3, 4):
        now += 100.0
        (r,) = b.due(now)
        assert (r.attempt, r.trigger.entity_ids) == (attempt, missed)
        b.complete(ref(UNNAMED[how], f"ev-{attempt}", outcome="success"), now + 1.0)
        e = b.get("t-1")
        assert e is not None
        assert e.phase == ("backoff" if attempt == 3 else "dead"), (attempt, e.phase)
        assert e.history[-1 if attempt == 3 else -2][1:3] == ("unattributed", attempt)
    dead = b.get("t-1")
    assert dead is not None and dead.error is not None and "names no attempt" in dead.error
    # a dead letter stays dead for the same kind of success while it may be a failed run's
    # (a third failure report came late: three failed runs may each send one)
    b.complete(ref(UNNAMED[how], "rep-late", outcome="failed"), now + 4.0)
    b.complete(ref(UNNAMED[how], "ev-late", outcome="success"), now + 5.0)
    still = b.get("t-1")
    assert still is not None and still.phase == "dead"
    # the operator's redrive starts afresh: the redriven run's success closes
    (again,) = b.redrive(["t-1"], now + 10.0)
    b.complete(ref(UNNAMED[how], "ev-redrive", outcome="success"), now + 11.0)
    e = b.get("t-1")
    assert e is not None and e.phase == "succeeded" and again.attempt == 5


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
    """Whether a run reported a failure is in the snapshot (derived for a snapshot written before it was: every attempt counts as a failed run)."""
    b = book(retries=1)
    b.open(trig(), 0.0)
    b.complete(ref(None, "rep-1", outcome="failed"), 1.0)
    if when != "backoff":
        b.due(100.0)
    if when == "dead":
        b.complete(ref(None, "rep-2", outcome="failed"), 101.0)
    snap = b.snapshot()
    old = {**snap, "entries": [{**i} for i in snap["entries"]]}
    for item in old["entries"]:  # the oldest: no record at all (derived from the outcome)
        del item["failures"], item["unattributed"]
    for s in (snap, old):
        r = LedgerBook.restore(b.params, s)
        want = (
            b.entries() if s is snap else tuple(e._replace(failures=e.attempt) for e in b.entries())
        )
        assert r.entries() == want
        r.complete(ref(None, "ev-9", outcome="success"), 102.0)
        e = r.get("t-1")
        assert e is not None and e.phase != "succeeded", (when, e.phase)


# -- once a success cannot be a failed run's, it closes ------------------------------------
# A run sends at most one success (a redelivery has its event id): after F failure reports
# at most F successes naming no attempt can be the failed runs'; the (F+1)-th is a run's
# that reported none -- it processed everything.


def rerun(b: LedgerBook, now: float, attempt: int) -> None:
    """The re-run (attempt ``attempt``) goes out at ``now``."""
    (r,) = b.due(now)
    assert r.attempt == attempt


@pytest.mark.parametrize("how", sorted(UNNAMED))
@pytest.mark.parametrize("failure", sorted(FAILURES))
@pytest.mark.parametrize("retries", [2, 3])
def test_one_failure_then_two_successes_naming_no_attempt_close_after_one_extra_run(
    how: str, failure: str, retries: int
) -> None:
    """A processor naming only its trigger: attempt 1 fails, attempts 2 and 3 succeed -- the second success closes it, after exactly one extra run."""
    b = book(retries=retries, timeout=None)
    b.open(trig(), 0.0)
    b.complete(ref(UNNAMED[how], "rep-1", **FAILURES[failure]), 1.0)
    rerun(b, 100.0, 2)
    b.complete(ref(UNNAMED[how], "ev-2", outcome="success"), 101.0)  # may be attempt 1's
    e = b.get("t-1")
    assert e is not None and e.phase == "backoff", e.phase
    rerun(b, 1000.0, 3)  # the one extra run
    b.complete(ref(UNNAMED[how], "ev-3", outcome="success"), 1001.0)
    e = b.get("t-1")
    assert e is not None and (e.phase, e.attempt) == ("succeeded", 3), (e.phase, e.attempt)
    assert e.history[-1][1:3] == ("success", 3)
    assert b.due(1e9) == [] and b.open_count == 0


@pytest.mark.parametrize("in_backoff", [True, False], ids=["stale_in_backoff", "rerun_out"])
def test_two_failures_need_three_successes_naming_no_attempt(in_backoff: bool) -> None:
    """Two failure reports (F=2): two successes naming no attempt may both be the failed runs'; the third closes."""
    b = book(retries=5, timeout=None)
    b.open(trig(), 0.0)
    b.complete(ref(None, "rep-1", outcome="failed", error="boom"), 1.0)
    rerun(b, 100.0, 2)
    b.complete(ref(None, "rep-2", outcome="partial", missed=("b",)), 101.0)
    now, attempt = 101.0, 2
    for k in (1, 2):
        if not in_backoff:
            now += 1000.0
            attempt += 1
            rerun(b, now, attempt)
        b.complete(ref(None, f"ev-{k}", outcome="success"), now + 1.0)  # maybe a failed run's
        e = b.get("t-1")
        assert e is not None and e.phase == "backoff", (k, e.phase)
    rerun(b, now + 1000.0, attempt + 1)
    b.complete(ref(None, "ev-3", outcome="success"), now + 1001.0)
    e = b.get("t-1")
    assert e is not None and (e.phase, e.attempt) == ("succeeded", attempt + 1)
    assert b.due(1e9) == []


@pytest.mark.parametrize("retries", [1, 2])
@pytest.mark.parametrize("timeout", [100.0, None], ids=["timeout", "no_timeout"])
def test_a_failed_runs_stale_success_and_a_lost_rerun_never_close(
    retries: int, timeout: float | None
) -> None:
    """Attempt 1 fails, its stale success (naming no attempt) comes once the re-run is out, and no re-run ever reports: re-runs, then a dead letter (without completion_timeout: the last re-run stays open) -- never a close."""
    b = book(retries=retries, timeout=timeout)
    b.open(trig(), 0.0)
    b.complete(ref(None, "rep-1", outcome="failed", error="boom"), 1.0)
    rerun(b, 100.0, 2)
    b.complete(ref(None, "ev-1", outcome="success"), 101.0)  # attempt 1's
    for now in range(200, 20000, 100):
        b.due(float(now))  # every re-run is lost: only timeouts
    e = b.get("t-1")
    assert e is not None
    assert e.phase == ("dead" if timeout or retries == 1 else "dispatched"), e.phase
    assert not any(a[1] == "success" for a in e.history)


def test_an_earlier_attempts_failure_counts() -> None:
    """An earlier attempt's failure (earlier_failure, not counted against the running one) still counts: its run's success naming no attempt closes nothing."""
    b = book(retries=2)
    b.open(trig(), 0.0)
    b.alias("9001", "t-1", 0.5)
    b.due(100.0)  # attempt 1 timed out
    rerun(b, 200.0, 2)
    b.complete(ref("9001", "rep-1", outcome="failed", error="boom"), 201.0)  # attempt 1's
    b.complete(ref(None, "ev-1", outcome="success"), 202.0)  # attempt 1's too, maybe
    e = b.get("t-1")
    assert e is not None and e.phase != "succeeded", e.phase
    assert e.failures == 1 and e.unattributed == 1


def test_a_failure_ignored_in_backoff_counts() -> None:
    """Attempt 1 timed out, attempt 2 failed, attempt 1's failure comes in backoff (ignored): two failed runs, so their two successes naming no attempt close nothing."""
    b = book(retries=3)
    b.open(trig(), 0.0)
    b.due(100.0)  # attempt 1 timed out
    rerun(b, 200.0, 2)
    b.complete(ref(None, "rep-2", outcome="failed", error="boom"), 201.0)
    b.complete(ref(None, "rep-1", outcome="failed", error="late"), 202.0)  # ignored, counted
    b.complete(ref(None, "ev-1", outcome="success"), 203.0)
    b.complete(ref(None, "ev-2", outcome="success"), 204.0)
    e = b.get("t-1")
    assert e is not None and e.phase == "backoff", e.phase
    assert (e.failures, e.unattributed) == (2, 2)
    rerun(b, 300.0, 3)
    b.complete(ref(None, "ev-3", outcome="success"), 301.0)
    e = b.get("t-1")
    assert e is not None and e.phase == "succeeded"


def test_a_redrive_starts_the_counts_afresh() -> None:
    """A redrive clears both counts: the redriven run's success closes; successes before it do not carry over."""
    b = book(retries=1, timeout=None)
    b.open(trig(), 0.0)
    b.complete(ref(None, "rep-1", outcome="failed"), 1.0)
    rerun(b, 100.0, 2)
    b.complete(ref(None, "ev-1", outcome="success"), 101.0)  # dead: run_retries 1
    e = b.get("t-1")
    assert e is not None and e.phase == "dead" and (e.failures, e.unattributed) == (1, 1)
    b.redrive(["t-1"], 200.0)
    e = b.get("t-1")
    assert e is not None and (e.failures, e.unattributed) == (0, 0)
    b.complete(ref(None, "rep-3", outcome="failed"), 201.0)
    rerun(b, 300.0, 4)
    b.complete(ref(None, "ev-2", outcome="success"), 301.0)
    e = b.get("t-1")
    assert e is not None and e.phase == "dead"  # one failure, one success: still ambiguous


def test_the_success_that_cannot_be_a_failed_runs_closes_a_dead_letter() -> None:
    """run_retries 1: attempt 2's success (naming no attempt) dead-letters it; a further one cannot be the failed run's and closes the dead letter, like any late success."""
    b = book(retries=1, timeout=None)
    b.open(trig(), 0.0)
    b.complete(ref(None, "rep-1", outcome="failed"), 1.0)
    rerun(b, 100.0, 2)
    b.complete(ref(None, "ev-1", outcome="success"), 101.0)
    e = b.get("t-1")
    assert e is not None and e.phase == "dead"
    b.complete(ref(None, "ev-2", outcome="success"), 102.0)
    e = b.get("t-1")
    assert e is not None and e.phase == "succeeded"


@pytest.mark.parametrize("old", [False, True], ids=["snapshot", "older_snapshot"])
def test_the_counts_survive_a_snapshot(old: bool) -> None:
    """Both counts are in the snapshot; one written before them counts no success and takes every attempt since the (re)drive for a failed run (closing nothing it would not have)."""
    b = book(retries=3, timeout=None)
    b.open(trig(), 0.0)
    b.complete(ref(None, "rep-1", outcome="failed"), 1.0)
    rerun(b, 100.0, 2)
    b.complete(ref(None, "ev-1", outcome="success"), 101.0)
    snap = b.snapshot()
    if old:
        for item in snap["entries"]:
            del item["failures"], item["unattributed"]
            item["reported_failure"] = True
    r = LedgerBook.restore(b.params, snap)
    e = r.get("t-1")
    assert e is not None
    assert (e.failures, e.unattributed) == ((2, 0) if old else (1, 1))
    if not old:
        assert r.entries() == b.entries()
    rerun(r, 1000.0, 3)
    r.complete(ref(None, "ev-3", outcome="success"), 1001.0)
    e = r.get("t-1")
    assert e is not None and e.phase == ("backoff" if old else "succeeded"), e.phase


def test_a_success_without_an_event_id_never_outnumbers_the_failures() -> None:
    """A success naming no attempt and carrying no event id (nor execution id) may be a redelivery: it is not counted and never closes after a failure."""
    b = book(retries=3, timeout=None)
    b.open(trig(), 0.0)
    b.complete(ref(None, "rep-1", outcome="failed"), 1.0)
    rerun(b, 100.0, 2)
    for k in range(3):  # the failed run's success, delivered three times
        b.complete(CompletionRef(trigger_id="t-1", outcome="success"), 101.0 + k)
    e = b.get("t-1")
    assert e is not None and e.phase != "succeeded" and e.unattributed == 0, e.phase

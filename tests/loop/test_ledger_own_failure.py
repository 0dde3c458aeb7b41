"""A run whose change events say success (closing its trigger) and whose own report then
says ``failed`` counts as if that report had come first: the trigger is re-run up to
``run_retries`` times, then a dead letter (at once with ``run_retries: 0``, whatever order
the run's two messages came in). Only the run that closed it
(``Entry.closed_by``) counts: a late failure of an earlier run is still ignored (a later
run processed its ids)."""

from __future__ import annotations

import pytest
from closed_loop_support import trig

from scoperouter.router.completion_ref import CompletionRef
from scoperouter.router.ledger_book import LedgerBook
from scoperouter.router.loop_params import LoopParams


def book(retries: int) -> LedgerBook:
    return LedgerBook(lambda _p: LoopParams(retries, None, None, backoff_base_s=10.0))


@pytest.mark.parametrize("retries", [1, 2])
@pytest.mark.parametrize("how", ["message_id", "both"])
@pytest.mark.parametrize("restart", [False, True])
def test_failed_report_of_the_closing_run_reopens_it(retries: int, how: str, restart: bool) -> None:
    """The closing run's failed report reopens the trigger and re-runs all its ids."""
    b = book(retries)
    b.open(trig(ids=("a", "b")), 0.0)
    b.alias("m1", "t-1", 0.1)
    tid = "t-1" if how == "both" else None
    b.complete(CompletionRef("success", tid, "m1", event_id="ev-1"), 1.0)
    if restart:
        b = LedgerBook.restore(b.params, b.snapshot())
    e, _ = b.complete(CompletionRef("failed", tid, "m1", error="boom", event_id="rep-1"), 2.0)
    assert e is not None and (e.phase, e.error) == ("backoff", "boom")
    (r,) = b.due(1000.0)
    assert (r.trigger.trigger_id, r.trigger.entity_ids, r.attempt) == ("t-1", ("a", "b"), 2)


@pytest.mark.parametrize("retries", [0, 1, 3])
@pytest.mark.parametrize("how", ["message_id", "both"])
def test_success_then_failed_report_on_every_run_ends_as_a_dead_letter(
    retries: int, how: str
) -> None:
    """Every run says success, then failed: a dead letter after run_retries re-runs."""
    b = book(retries)
    b.open(trig(), 0.0)
    now, sent = 0.0, 1
    for n in range(1, 30):
        mid = f"90{n:02d}"
        b.alias(mid, "t-1", now + 0.5)
        tid = None if how == "message_id" else "t-1"
        b.complete(CompletionRef("success", tid, mid, event_id=f"ev-{n}"), now + 1.0)
        b.complete(CompletionRef("failed", tid, mid, error="boom", event_id=f"r-{n}"), now + 2.0)
        now += 10_000.0
        sent += len(b.due(now))
        e = b.get("t-1")
        assert e is not None
        if e.phase == "dead":
            break
    assert e.phase == "dead", (e.phase, e.attempt)
    assert sent == 1 + retries
    assert e.error is not None and "boom" in e.error


@pytest.mark.parametrize("retries", [0, 1, 2])
@pytest.mark.parametrize("success_first", [False, True])
def test_a_runs_failure_counts_the_same_in_either_order(retries: int, success_first: bool) -> None:
    """The closing run's failure after its success ends as the failure alone would."""
    b = book(retries)
    b.open(trig(), 0.0)
    b.alias("m1", "t-1", 0.1)
    fail = CompletionRef("failed", None, "m1", error="boom", event_id="rep-1")
    if success_first:
        b.complete(CompletionRef("success", None, "m1", event_id="ev-1"), 1.0)
    b.complete(fail, 2.0)
    e = b.get("t-1")
    assert e is not None
    assert (e.phase, len(b.due(1000.0))) == (("dead", 0) if retries == 0 else ("backoff", 1))


@pytest.mark.parametrize(
    "failed",
    [
        CompletionRef("failed", "t-1", "9001", error="old", event_id="late-1"),  # earlier run
        CompletionRef("failed", "t-1", error="old", event_id="late-1"),  # names no run
        CompletionRef("failed", "t-1", "t-1", error="old", event_id="late-1"),  # id echoed
    ],
)
def test_failed_report_of_another_run_after_the_close_is_ignored(failed: CompletionRef) -> None:
    """A failure naming any run but the closing one leaves the closed trigger closed."""
    b = book(2)
    b.open(trig(), 0.0)
    b.alias("9001", "t-1", 0.5)
    b.complete(CompletionRef("partial", "t-1", "9001", missed=("b",), event_id="r-1"), 1.0)
    assert len(b.due(100.0)) == 1
    b.alias("9002", "t-1", 100.5)
    b.complete(CompletionRef("success", "t-1", "9002", event_id="ev-2"), 101.0)
    e, _ = b.complete(failed, 102.0)
    assert e is not None and (e.phase, e.closed_by) == ("succeeded", "9002")
    assert b.due(10_000.0) == []

"""A run whose change events say success (closing its trigger) and whose own report then
names missed ids reopens the trigger; a processor that keeps missing an id that way is not
re-run forever: once its re-runs are spent (``run_retries``, at least one), the report of
the attempt that closed the trigger makes it a dead letter. A late report of an earlier
attempt still only reopens it (never a dead letter for ids a later run processed)."""

from __future__ import annotations

import pytest
from closed_loop_support import trig

from scoperouter.router.completion_ref import CompletionRef
from scoperouter.router.ledger_book import LedgerBook
from scoperouter.router.loop_params import LoopParams


def book(retries: int) -> LedgerBook:
    return LedgerBook(lambda _p: LoopParams(retries, None, None, backoff_base_s=10.0))


@pytest.mark.parametrize("retries", [0, 1, 3])
@pytest.mark.parametrize("how", ["message_id", "both", "trigger"])
@pytest.mark.parametrize("ids", [("a", "b"), None], ids=["entities", "date"])
def test_success_then_partial_report_on_every_run_ends_as_a_dead_letter(
    retries: int, how: str, ids: tuple[str, ...] | None
) -> None:
    """Every run's change event says success, then its report misses b: a dead letter after at most max(1, run_retries) re-runs."""
    b = book(retries)
    b.open(trig(ids=ids), 0.0)
    now, sent = 0.0, 1
    for n in range(1, 30):
        mid = f"90{n:02d}"
        b.alias(mid, "t-1", now + 0.5)  # attempt n's publish answered
        tid = None if how == "message_id" else "t-1"
        if how == "trigger":  # a dict trigger: no message id (already bounded: unattributed)
            mid = None
        # the run republishes its change (success), then reports the id it missed
        b.complete(CompletionRef("success", tid, mid, event_id=f"ev-{n}"), now + 1.0)
        b.complete(CompletionRef("partial", tid, mid, missed=("b",), event_id=f"r-{n}"), now + 2.0)
        now += 10_000.0
        sent += len(b.due(now))
        e = b.get("t-1")
        assert e is not None
        if e.phase == "dead":
            break
    assert e.phase == "dead", (e.phase, e.attempt)
    assert sent == 1 + max(1, retries)
    assert e.error is not None and "b" in e.error


@pytest.mark.parametrize("retries", [0, 1])
def test_a_late_report_of_an_earlier_attempt_still_only_reopens(retries: int) -> None:
    """Attempt 1 missed b, attempt 2 closed it; attempt 1's late message naming its own id reopens it (no dead letter)."""
    b = book(retries)
    b.open(trig(), 0.0)
    b.alias("9001", "t-1", 0.5)
    b.complete(CompletionRef("partial", "t-1", "9001", missed=("b",), event_id="r-1"), 1.0)
    assert len(b.due(100.0)) == 1  # the re-run of b
    b.alias("9002", "t-1", 100.5)
    b.complete(CompletionRef("success", "t-1", "9002", event_id="ev-2"), 101.0)
    closed = b.get("t-1")
    assert closed is not None and (closed.phase, closed.closed_by) == ("succeeded", "9002")
    b = LedgerBook.restore(b.params, b.snapshot())  # the closing run is in the snapshot
    assert b.get("t-1") == closed
    b.complete(CompletionRef("partial", "t-1", "9001", missed=("b",), event_id="ev-1"), 102.0)
    e = b.get("t-1")
    assert e is not None and e.phase == "backoff" and not b.dead_letters()

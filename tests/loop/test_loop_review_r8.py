"""Review r8: the trigger ledger against redelivered reports and runs that keep missing ids."""

from __future__ import annotations

from closed_loop_support import D

from scoperouter.messages.models import Trigger
from scoperouter.router.completion_ref import CompletionRef
from scoperouter.router.ledger_book import LedgerBook
from scoperouter.router.loop_params import LoopParams


def trig(tid: str = "t-1") -> Trigger:
    return Trigger(
        trigger_id=tid,
        processor="p",
        game_date=D,
        start_date=D,
        end_date=D,
        scope="entities",
        entity_type="player",
        entity_ids=("a", "b"),
        reason="entity_scope",
    )


def book(retries: int, timeout: float | None = None) -> LedgerBook:
    return LedgerBook(lambda _p: LoopParams(retries, timeout, None, backoff_base_s=10.0))


def test_redelivered_failed_report_does_not_fail_the_next_attempt() -> None:
    """Attempt 1 reports ``failed`` (execution x-1); the re-dispatch goes out; Pub/Sub
    redelivers the same report (at-least-once; a bare report is not deduplicated by the
    ingest). That report is about attempt 1: attempt 2 is still running, not a dead letter."""
    b = book(retries=1)
    b.open(trig(), 0.0)
    report = CompletionRef(outcome="failed", trigger_id="t-1", error="boom", event_id="x-1")
    b.complete(report, 1.0)
    (r,) = b.due(11.0)
    assert r.attempt == 2
    b.complete(report, 12.0)  # the same message again
    e = b.get("t-1")
    assert e is not None
    assert (e.phase, e.attempt, b.dead_letters()) == ("dispatched", 2, ())


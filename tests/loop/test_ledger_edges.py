"""The trigger ledger against redelivered reports, runs that keep missing ids, and the
message ids a processor copies as trigger_message_id (an HTTP target's push messageId, a
Pub/Sub target's recorded publish ids)."""

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
    """A redelivered failed report of attempt 1 does not fail the re-dispatched attempt 2."""
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


def test_runs_that_keep_missing_ids_end_as_a_dead_letter() -> None:
    """Runs that keep missing ids are re-run up to run_retries, then dead-lettered."""
    b = book(retries=1)
    b.open(trig(), 0.0)
    now = 0.0
    for n in range(10):
        now += 1.0
        b.complete(
            CompletionRef(outcome="partial", trigger_id="t-1", missed=("b",), event_id=f"x-{n}"),
            now,
        )
        now += 1000.0
        b.due(now)
    e = b.get("t-1")
    assert e is not None
    assert e.phase == "dead", (e.phase, e.attempt)
    assert e.attempt <= 2


def test_completion_naming_the_push_message_id_closes_its_trigger() -> None:
    """A completion naming the push messageId <trigger_id>-<row> closes its trigger."""
    b = book(retries=1, timeout=600.0)
    b.open(trig("t-0123456789abcdef01234567"), 0.0)
    entry, _ = b.complete(
        CompletionRef(outcome="success", message_id="t-0123456789abcdef01234567-17"), 5.0
    )
    assert entry is not None and entry.phase == "succeeded"


def test_pubsub_message_ids_survive_a_snapshot_and_go_with_their_entry() -> None:
    """Every attempt's Pub/Sub message id names its trigger across a snapshot; forgetting the entry forgets them."""
    b = book(retries=1)
    b.open(trig("t-1"), 0.0)
    b.alias("9001", "t-1")  # attempt 1's publish
    b.alias("9002", "t-1")  # a re-dispatch is published again, with an id of its own
    b = LedgerBook.restore(b.params, b.snapshot())
    for mid in ("9001", "9002"):
        found = b.find(CompletionRef(outcome="success", message_id=mid))
        assert found is not None and found.trigger_id == "t-1"
    b.complete(CompletionRef(outcome="success", message_id="9002"), 5.0)
    assert b.forget_closed(before=1.0) == 1
    assert b.snapshot()["aliases"] == {}
    assert b.find(CompletionRef(outcome="success", message_id="9001")) is None

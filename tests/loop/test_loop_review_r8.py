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


def test_runs_that_keep_missing_ids_end_as_a_dead_letter() -> None:
    """A processor whose every run reports ``partial`` missing the same id (say, a player
    its source does not have) is re-run within ``run_retries`` (at least once, as a
    timeout), then dead-lettered -- not re-dispatched every 15 minutes forever, its
    trigger open (and its downstream barriers busy) for good."""
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
    """An HTTP target receives the Pub/Sub push envelope with ``messageId`` =
    ``<trigger_id>-<outbox row>`` (runtime/dispatcher.py); production's processors copy
    that id into ``trigger_message_id`` (docs/ledger.md, rule 2). Nothing records it as an
    alias, so the completion must still find its trigger -- not be unknown while the
    trigger times out and is re-run."""
    b = book(retries=1, timeout=600.0)
    b.open(trig("t-0123456789abcdef01234567"), 0.0)
    entry, _ = b.complete(
        CompletionRef(outcome="success", message_id="t-0123456789abcdef01234567-17"), 5.0
    )
    assert entry is not None and entry.phase == "succeeded"

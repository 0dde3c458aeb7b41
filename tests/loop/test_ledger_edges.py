"""The trigger ledger against redelivered reports, runs that keep missing ids, and the
message ids a processor copies as trigger_message_id (an HTTP target's push messageId, a
Pub/Sub target's recorded publish ids)."""

from __future__ import annotations

import pytest
from closed_loop_support import D, trig

from scoperouter.router.completion_ref import CompletionRef
from scoperouter.router.ledger_book import LedgerBook
from scoperouter.router.ledger_parked import ORPHAN_MAX, ORPHAN_TTL_S
from scoperouter.router.loop_params import LoopParams


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
    b.alias("9001", "t-1", 1.0)  # attempt 1's publish
    b.alias("9002", "t-1", 1.0)  # a re-dispatch is published again, with an id of its own
    b = LedgerBook.restore(b.params, b.snapshot())
    for mid in ("9001", "9002"):
        found = b.find(CompletionRef(outcome="success", message_id=mid))
        assert found is not None and found.trigger_id == "t-1"
    b.complete(CompletionRef(outcome="success", message_id="9002"), 5.0)
    assert b.forget_closed(before=6.0) == 1  # closed at 5.0
    assert b.snapshot()["aliases"] == {}
    assert b.find(CompletionRef(outcome="success", message_id="9001")) is None


def test_completion_overtaking_its_publish_id_closes_the_trigger_when_the_id_arrives() -> None:
    """A completion naming a Pub/Sub message id not recorded yet closes its trigger once the id is."""
    b = book(retries=1, timeout=600.0)
    b.open(trig("t-1"), 0.0)
    entry, _ = b.complete(CompletionRef(outcome="success", message_id="9001", event_id="c-1"), 1.0)
    assert entry is None  # the router has not heard back from its publish yet
    live = b.get("t-1")
    assert live is not None and live.phase == "dispatched"
    b.alias("9001", "t-1", 1.5)
    closed = b.get("t-1")
    assert closed is not None and closed.phase == "succeeded"
    assert b.busy("p", D) is False


def test_a_parked_completion_survives_a_snapshot() -> None:
    """A completion waiting for its message id is in the snapshot: a restart in between keeps it."""
    b = book(retries=1)
    b.open(trig("t-1"), 0.0)
    b.complete(CompletionRef(outcome="failed", message_id="9001", error="boom"), 1.0)
    b = LedgerBook.restore(b.params, b.snapshot())
    b.alias("9001", "t-1", 2.0)
    e = b.get("t-1")
    assert e is not None and e.phase == "backoff" and e.error == "boom"


@pytest.mark.parametrize(
    ("waited", "closes"),
    [(ORPHAN_TTL_S - 1.0, True), (ORPHAN_TTL_S + 1.0, False)],
)
def test_parked_completions_expire(waited: float, closes: bool) -> None:
    """A completion whose message id is never recorded is dropped after ORPHAN_TTL_S."""
    b = book(retries=1)
    b.open(trig("t-1"), 0.0)
    b.complete(CompletionRef(outcome="success", message_id="9001"), 1.0)
    b.alias("9001", "t-1", 1.0 + waited)
    e = b.get("t-1")
    assert e is not None and (e.phase == "succeeded") is closes


def test_parked_completions_are_bounded() -> None:
    """At most ORPHAN_MAX completions wait for their message ids; the oldest go first."""
    b = book(retries=1)
    b.open(trig("t-1"), 0.0)
    b.open(trig("t-2"), 0.0)
    b.complete(CompletionRef(outcome="success", message_id="first"), 1.0)
    for i in range(ORPHAN_MAX):
        b.complete(CompletionRef(outcome="success", message_id=f"other-{i}"), 1.0)
    b.complete(CompletionRef(outcome="success", message_id="last"), 1.0)
    assert b.parked_count == ORPHAN_MAX
    b.alias("first", "t-1", 2.0)
    b.alias("last", "t-2", 2.0)
    first, last = b.get("t-1"), b.get("t-2")
    assert first is not None and first.phase == "dispatched"
    assert last is not None and last.phase == "succeeded"


@pytest.mark.parametrize("alias_first", [True, False])
def test_parked_completions_apply_as_if_the_message_id_had_been_recorded(
    alias_first: bool,
) -> None:
    """A run's success, its partial report and the success redelivered, all before the alias: b is re-run as with the alias first."""
    b = book(retries=1)
    b.open(trig(), 0.0)
    if alias_first:
        b.alias("9001", "t-1", 0.5)
    success = CompletionRef(outcome="success", message_id="9001", event_id="ce-1")
    report = CompletionRef(outcome="partial", message_id="9001", missed=("b",), event_id="r-1")
    for n, ref in enumerate((success, report, success)):  # at-least-once: ce-1 again
        b.complete(ref, 1.0 + n)
    b.alias("9001", "t-1", 5.0)
    e = b.get("t-1")
    assert e is not None
    assert (e.phase, e.trigger.entity_ids) == ("backoff", ("b",))


DAY = 86400.0


@pytest.mark.parametrize(
    ("redriven_at", "snapshot_after", "kept"),
    [
        (10.0, 10.0, True),  # opened and closed seconds before the snapshot
        (2 * DAY, 10.0, True),  # opened two days ago, redriven and closed just now
        (10.0, DAY + 10.0, False),  # closed over a day before the snapshot: forgotten
    ],
)
def test_forget_closed_counts_from_the_close_so_a_late_partial_report_still_reopens(
    redriven_at: float, snapshot_after: float, kept: bool
) -> None:
    """A succeeded entry is forgotten a day after it closed, not after it opened: its run's late partial report still re-runs the missed ids."""
    b = book(retries=0)
    b.open(trig(), 0.0)
    b.complete(CompletionRef(outcome="failed", trigger_id="t-1", event_id="f-1"), 1.0)
    assert b.dead_letters()  # run_retries 0: a dead letter at once
    b.redrive(["t-1"], redriven_at)  # the operator redrives it (maybe the next day)
    now = redriven_at + 5.0
    b.complete(CompletionRef(outcome="success", trigger_id="t-1", event_id="ce-2"), now)
    now += snapshot_after
    assert b.forget_closed(before=now - DAY) == (0 if kept else 1)  # a snapshot (DurableWindows)
    report = CompletionRef(outcome="partial", trigger_id="t-1", missed=("b",), event_id="r-2")
    e, _ = b.complete(report, now + 1.0)  # the same run's report, after its change events
    if kept:
        assert e is not None and (e.phase, e.trigger.entity_ids) == ("backoff", ("b",))
    else:
        assert e is None

"""'The oldest open trigger' of a processor and date (what a completion naming only those
closes) is the order the entries were (re)opened in, and a snapshot keeps it: a restart
(every one compacts the journal into a snapshot) closes what the live run would have."""

from __future__ import annotations

from typing import Any

import pytest
from closed_loop_support import D, trig

from scoperouter.router.completion_ref import CompletionRef
from scoperouter.router.ledger_book import LedgerBook
from scoperouter.router.loop_params import LoopParams


def book(retries: int = 1, timeout: float | None = 600.0) -> LedgerBook:
    return LedgerBook(lambda _p: LoopParams(retries, timeout, None, backoff_base_s=10.0))


def by_key(eid: str) -> CompletionRef:
    """A success naming only its processor and date."""
    return CompletionRef(outcome="success", processor="p", day=D, event_id=eid)


def _reopen_t1(b: LedgerBook) -> None:
    """t-1 closed, then reopened by a later report of missed ids (it joins the open set last)."""
    b.complete(CompletionRef(outcome="success", trigger_id="t-1", event_id="ok-1"), 2.0)
    b.complete(
        CompletionRef(outcome="partial", trigger_id="t-1", missed=("a",), event_id="miss-1"), 3.0
    )


def _redrive_t1(b: LedgerBook) -> None:
    """t-1 dead-lettered, then redriven (it joins the open set last)."""
    b.complete(CompletionRef(outcome="failed", trigger_id="t-1", event_id="f-1"), 2.0)
    b.redrive(["t-1"], 3.0)


@pytest.mark.parametrize(
    ("ids", "between", "retries", "closes"),
    [
        (("t-zzz", "t-aaa"), None, 1, ["t-zzz", "t-aaa"]),
        (("t-aaa", "t-zzz"), None, 1, ["t-aaa", "t-zzz"]),
        (("t-1", "t-2"), _reopen_t1, 1, ["t-2", "t-1"]),
        (("t-1", "t-2"), _redrive_t1, 0, ["t-2", "t-1"]),
    ],
)
@pytest.mark.parametrize("restart", [False, True])
def test_processor_date_completions_close_in_opening_order(
    ids: tuple[str, str], between: Any, retries: int, closes: list[str], restart: bool
) -> None:
    """Completions naming processor + date close triggers in (re)opening order, restart or not."""
    b = book(retries=retries)
    b.open(trig(ids[0], ("a",)), 0.0)
    b.open(trig(ids[1], ("b",)), 1.0)
    if between is not None:
        between(b)
    if restart:
        b = LedgerBook.restore(b.params, b.snapshot())
    closed = []
    for n in range(2):
        e, _ = b.complete(by_key(f"run-{n}"), 10.0 + n)
        assert e is not None
        closed.append(e.trigger_id)
    assert closed == closes


def test_restore_keeps_the_snapshot_and_the_next_sequence() -> None:
    """A restored book snapshots the same, and an entry opened after it is the youngest."""
    b = book()
    for n, tid in enumerate(("t-c", "t-a", "t-b")):
        b.open(trig(tid, (tid,)), float(n))
    b.complete(CompletionRef(outcome="success", trigger_id="t-b", event_id="x"), 5.0)
    b.forget_closed(100.0)  # the highest sequence goes with its entry
    r = LedgerBook.restore(b.params, b.snapshot())
    assert r.snapshot() == b.snapshot()
    for x in (b, r):
        x.open(trig("t-0", ("z",)), 6.0)
    assert r.snapshot() == b.snapshot()
    closed = [r.complete(by_key(f"run-{n}"), 10.0 + n)[0].trigger_id for n in range(3)]  # type: ignore[union-attr]
    assert closed == ["t-c", "t-a", "t-0"]


def test_snapshot_without_sequence_restores_by_first_dispatch_then_id() -> None:
    """A snapshot written before the sequence was kept orders by opened_at, then trigger id."""
    b = book()
    b.open(trig("t-zzz", ("a",)), 0.0)
    b.open(trig("t-bbb", ("b",)), 1.0)
    b.open(trig("t-aaa", ("c",)), 1.0)
    snap = b.snapshot()
    snap.pop("opened_seq", None)
    for item in snap["entries"]:
        item.pop("opened_seq", None)
    r = LedgerBook.restore(b.params, snap)
    closed = [r.complete(by_key(f"run-{n}"), 10.0 + n)[0].trigger_id for n in range(3)]  # type: ignore[union-attr]
    assert closed == ["t-zzz", "t-aaa", "t-bbb"]

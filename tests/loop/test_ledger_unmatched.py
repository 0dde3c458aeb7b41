"""Why a completion matched no trigger (``LedgerBook.last_unmatched``, which the daemon
counts in ``scoperouter_completions_unmatched_total`` and logs): it names a trigger the
ledger does not hold (forgotten a day after it closed, or never sent) -- a report of missed
ids of such a trigger re-runs nothing, its body is gone -- or it names only a processor and
a date whose open triggers all fired after it was produced."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from closed_loop_support import D, trig

from scoperouter.router.completion_ref import CompletionRef
from scoperouter.router.ledger_book import LedgerBook
from scoperouter.router.loop_params import LoopParams

DAY = 86400.0


def book() -> LedgerBook:
    return LedgerBook(lambda _p: LoopParams(2, None, None, backoff_base_s=10.0))


def _forgotten(b: LedgerBook) -> None:
    """t-1 succeeded at 5 and was forgotten a day later (a compaction)."""
    b.open(trig("t-1", ("a", "b")), 0.0)
    b.complete(CompletionRef(outcome="success", trigger_id="t-1", event_id="ok"), 5.0)
    assert b.forget_closed(5.0 + DAY) == 1


def _newer_open(b: LedgerBook) -> None:
    """t-2 fired at DAY (after the reports below were produced)."""
    b.open(trig("t-2", ("b",)), DAY)


def _nothing(b: LedgerBook) -> None:
    """No trigger at all."""


def named(outcome: str, missed: tuple[str, ...] = ()) -> CompletionRef:
    return CompletionRef(outcome=outcome, trigger_id="t-1", missed=missed, event_id="r-1")  # type: ignore[arg-type]


def by_key(produced: float | None) -> CompletionRef:
    return CompletionRef(
        outcome="success", processor="p", day=D, event_id="r-1", produced_at=produced
    )


@pytest.mark.parametrize(
    ("setup", "ref", "why"),
    [
        (_forgotten, named("partial", ("b",)), "unknown_trigger"),  # missed ids: not re-run
        (_forgotten, named("failed"), "unknown_trigger"),
        (_nothing, named("success"), "unknown_trigger"),  # never sent
        (_newer_open, by_key(10.0), "fired_after"),
        (_newer_open, by_key(None), None),  # no time: it closes t-2, as before
        (_newer_open, by_key(DAY), None),
        (_nothing, by_key(10.0), None),  # no open trigger at all: as before, not counted
        (_nothing, CompletionRef(outcome="success", message_id="m-1", event_id="r-1"), None),
    ],
)
def test_why_a_completion_matched_nothing(
    setup: Callable[[LedgerBook], None], ref: CompletionRef, why: str | None
) -> None:
    """Each completion matching nothing says why; a parked or a matched one says nothing."""
    b = book()
    setup(b)
    b.complete(ref, 2 * DAY)
    assert b.last_unmatched == why
    b.complete(ref, 2 * DAY + 1.0)  # its redelivery was taken: not counted again
    assert b.last_unmatched is None

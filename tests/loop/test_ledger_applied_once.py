"""A completion's event id is applied once by the ledger: a redelivery (Pub/Sub is
at-least-once) changes nothing, also when it names only the processor and the date (no
trigger id: production's unified message) and the trigger it closed is no longer open."""

from __future__ import annotations

import pytest
from closed_loop_support import D, trig

from scoperouter.router.completion_ref import CompletionRef
from scoperouter.router.ledger_applied import APPLIED_MAX, APPLIED_TTL_S
from scoperouter.router.ledger_book import LedgerBook
from scoperouter.router.loop_params import LoopParams


def book(retries: int = 1, timeout: float | None = 600.0) -> LedgerBook:
    return LedgerBook(lambda _p: LoopParams(retries, timeout, None, backoff_base_s=10.0))


def by_key(outcome: str, eid: str | None) -> CompletionRef:
    """A report naming only its processor and date (no trigger id, no message id)."""
    return CompletionRef(outcome=outcome, processor="p", day=D, event_id=eid)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("outcome", "restart", "first"),
    [
        ("success", False, "succeeded"),
        ("success", True, "succeeded"),
        ("no_data", False, "succeeded"),
        ("failed", False, "backoff"),
        ("failed", True, "backoff"),
    ],
)
def test_redelivered_processor_date_report_changes_nothing(
    outcome: str, restart: bool, first: str
) -> None:
    """One report delivered twice moves one trigger (a snapshot between them too)."""
    b = book()
    b.open(trig("t-1", ("a",)), 0.0)
    b.open(trig("t-2", ("b",)), 1.0)
    b.complete(by_key(outcome, "run-1"), 10.0)
    if restart:
        b = LedgerBook.restore(b.params, b.snapshot())
    entry, _ = b.complete(by_key(outcome, "run-1"), 10.5)  # the same message again
    phases = {t: b.get(t).phase for t in ("t-1", "t-2")}  # type: ignore[union-attr]
    assert phases == {"t-1": first, "t-2": "dispatched"}
    assert entry is not None and entry.trigger_id == "t-1"  # the entry it was applied to


def test_distinct_reports_still_close_one_trigger_each() -> None:
    """Two runs' reports (two event ids) close the two oldest open triggers."""
    b = book()
    b.open(trig("t-1", ("a",)), 0.0)
    b.open(trig("t-2", ("b",)), 1.0)
    b.complete(by_key("success", "run-1"), 10.0)
    b.complete(by_key("success", "run-2"), 11.0)
    assert [b.get(t).phase for t in ("t-1", "t-2")] == ["succeeded", "succeeded"]  # type: ignore[union-attr]


def test_report_without_event_id_is_not_remembered() -> None:
    """A report without an event id cannot be told from a redelivery: each one applies."""
    b = book()
    b.open(trig("t-1", ("a",)), 0.0)
    b.open(trig("t-2", ("b",)), 1.0)
    b.complete(by_key("success", None), 10.0)
    b.complete(by_key("success", None), 11.0)
    assert [b.get(t).phase for t in ("t-1", "t-2")] == ["succeeded", "succeeded"]  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("later", "count", "applies_again"),
    [
        (APPLIED_TTL_S - 1.0, 1, False),
        (APPLIED_TTL_S + 1.0, 1, True),
        (1.0, APPLIED_MAX + 1, True),
        (1.0, APPLIED_MAX, False),
    ],
)
def test_applied_event_ids_are_bounded(later: float, count: int, applies_again: bool) -> None:
    """Ids are kept for APPLIED_TTL_S, at most APPLIED_MAX of them (oldest dropped first)."""
    b = book()
    b.open(trig("t-1", ("a",)), 0.0)
    b.complete(by_key("success", "run-0"), 1.0)
    for n in range(1, count):
        b.complete(by_key("success", f"other-{n}"), 1.0)  # match nothing: no open trigger
    b.open(trig("t-2", ("b",)), 1.0 + later)
    b.complete(by_key("success", "run-0"), 1.0 + later)
    assert (b.get("t-2").phase == "succeeded") is applies_again  # type: ignore[union-attr]

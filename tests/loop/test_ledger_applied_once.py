"""A completion's event id is applied once by the ledger: a redelivery (Pub/Sub is
at-least-once) changes nothing, also when it names only the processor and the date (no
trigger id: production's unified message) and the trigger it closed is no longer open."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import date

import pytest
from closed_loop_support import D, trig

from scoperouter.router import ledger_applied
from scoperouter.router.completion_ref import CompletionRef
from scoperouter.router.ledger_applied import APPLIED_MAX, APPLIED_TTL_S, AppliedCompletions
from scoperouter.router.ledger_book import LedgerBook
from scoperouter.router.loop_params import LoopParams

D2 = date(2025, 11, 18)
CAP = 50  # APPLIED_MAX in the book-level tests (20,000 late reports on one entry are slow)


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


def on_t1(eid: str) -> CompletionRef:
    """A late success naming t-1 by its id: applied to t-1 (kept as late)."""
    return CompletionRef(outcome="success", trigger_id="t-1", event_id=eid)


def other_day(eid: str) -> CompletionRef:
    """A bare report naming a processor and a date with no open trigger: matches nothing."""
    return CompletionRef(outcome="success", processor="p", day=D2, event_id=eid)


@pytest.mark.parametrize(
    ("later", "count", "filler", "applies_again"),
    [
        (APPLIED_TTL_S - 1.0, 1, on_t1, False),
        (APPLIED_TTL_S + 1.0, 1, on_t1, True),
        (1.0, CAP + 1, on_t1, True),  # applied ones evict the oldest applied one
        (1.0, CAP, on_t1, False),
        (1.0, CAP + 5, other_day, False),  # ones matching nothing never evict it
    ],
)
def test_applied_event_ids_are_bounded(
    monkeypatch: pytest.MonkeyPatch,
    later: float,
    count: int,
    filler: Callable[[str], CompletionRef],
    applies_again: bool,
) -> None:
    """Ids are kept for APPLIED_TTL_S, at most APPLIED_MAX applied ones (oldest dropped first)."""
    monkeypatch.setattr(ledger_applied, "APPLIED_MAX", CAP)
    b = book()
    b.open(trig("t-1", ("a",)), 0.0)
    b.complete(by_key("success", "run-0"), 1.0)
    for n in range(1, count):
        b.complete(filler(f"other-{n}"), 1.0)
    b.open(trig("t-2", ("b",)), 1.0 + later)
    b.complete(by_key("success", "run-0"), 1.0 + later)
    assert (b.get("t-2").phase == "succeeded") is applies_again  # type: ignore[union-attr]


@pytest.mark.parametrize(("routed", "kept"), [(True, ["other-1"]), (False, ["other-1"])])
def test_completion_matching_nothing_is_remembered(routed: bool, kept: list[str]) -> None:
    """Routed or bare: the seen ids dedupe a routed one only within dedup_horizon, maybe < a day."""
    b = book()
    b.complete(dataclasses.replace(other_day("other-1"), routed=routed), 1.0)
    assert [row[0] for row in b.snapshot()["applied"]] == kept


@pytest.mark.parametrize(
    ("trigger_id", "n", "evicted"),
    [
        ("t-1", APPLIED_MAX + 3, {"applied": 3, "unmatched": 0}),
        (None, APPLIED_MAX + 2, {"applied": 0, "unmatched": 2}),
        ("t-1", APPLIED_MAX, {"applied": 0, "unmatched": 0}),
    ],
)
def test_evictions_are_counted(trigger_id: str | None, n: int, evicted: dict[str, int]) -> None:
    """An id dropped for room before its day is up is counted, per memory (expiry is not)."""
    m = AppliedCompletions()
    for i in range(n):
        m.add(f"e-{i}", trigger_id, 1.0)
    m.add("late", "t-1", 1.0 + APPLIED_TTL_S + 10.0)  # every other id expires: no eviction
    assert m.evicted == evicted


def test_both_memories_survive_a_snapshot(monkeypatch: pytest.MonkeyPatch) -> None:
    """A restore keeps applied ids and ids matching nothing, each in its own memory."""
    monkeypatch.setattr(ledger_applied, "APPLIED_MAX", CAP)
    b = book()
    b.open(trig("t-1", ("a",)), 0.0)
    b.complete(by_key("success", "run-0"), 1.0)
    b.complete(other_day("other-1"), 2.0)
    r = LedgerBook.restore(b.params, b.snapshot())
    assert r.snapshot()["applied"] == b.snapshot()["applied"]
    for n in range(CAP + 1):  # ones matching nothing do not evict run-0
        r.complete(other_day(f"more-{n}"), 3.0)
    assert "run-0" in [row[0] for row in r.snapshot()["applied"]]

"""A completion that carries its production time (``produced_at``, else ``timestamp``)
cannot be the report of a trigger (re)opened after it was produced: it never closes or
moves such an entry (``superseded``), and a report naming only the processor and the date
goes to the oldest open trigger it could belong to -- none: it matches nothing. The slack
is ``CLOCK_SLACK_S`` (a processor's clock may run behind); a completion without a time
matches as before (docs/ledger.md)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from closed_loop_support import D, trig

from scoperouter.router.completion_ref import (
    CompletionRef,
    completion_ref,
    ref_from_dict,
    ref_to_dict,
)
from scoperouter.router.ledger_book import LedgerBook
from scoperouter.router.loop_params import LoopParams
from scoperouter.router.window_state import CLOCK_SLACK_S

T_OPEN = 1_000.0  # when t-2 fires


def book(retries: int = 1, timeout: float | None = 600.0) -> LedgerBook:
    return LedgerBook(lambda _p: LoopParams(retries, timeout, None, backoff_base_s=10.0))


def by_key(eid: str, produced: float | None, outcome: str = "success") -> CompletionRef:
    """A report naming only its processor and date, produced at ``produced``."""
    return CompletionRef(
        outcome=outcome,  # type: ignore[arg-type]
        processor="p",
        day=D,
        event_id=eid,
        produced_at=produced,
    )


def _t1_closed_t2_open() -> LedgerBook:
    """t-1 fired at 0 and closed at 10 (run-1); t-2 fires at T_OPEN."""
    b = book()
    b.open(trig("t-1", ("a",)), 0.0)
    b.complete(by_key("run-1", 5.0), 10.0)
    b.open(trig("t-2", ("b",)), T_OPEN)
    return b


@pytest.mark.parametrize(
    ("produced", "t2"),
    [
        (5.0, "dispatched"),  # t-1's report again (redelivered past every dedupe)
        (T_OPEN - CLOCK_SLACK_S - 1.0, "dispatched"),
        (T_OPEN - CLOCK_SLACK_S, "succeeded"),  # a processor clock behind by the slack
        (T_OPEN + 5.0, "succeeded"),
        (None, "succeeded"),  # no time: as before, the oldest open trigger
    ],
)
def test_processor_date_report_skips_triggers_opened_after_it(
    produced: float | None, t2: str
) -> None:
    """A processor+date report produced before t-2 fired (past the slack) leaves it open."""
    b = _t1_closed_t2_open()
    entry, _ = b.complete(by_key("run-x", produced), T_OPEN + 10.0)
    assert b.get("t-2").phase == t2  # type: ignore[union-attr]
    assert (entry is None) is (t2 == "dispatched")


def test_processor_date_report_finds_an_older_trigger_behind_newer_ones() -> None:
    """Among the open triggers of the key, the oldest one the report could belong to closes."""
    b = book(retries=0)
    b.open(trig("t-1", ("a",)), 0.0)
    b.complete(CompletionRef(outcome="failed", trigger_id="t-1", event_id="f-1"), 2.0)
    b.open(trig("t-2", ("b",)), T_OPEN)
    b.redrive(["t-1"], 1100.0)  # t-1 (fired at 0) rejoins the open set last
    b.complete(by_key("run-late", 50.0), 1300.0)
    assert b.get("t-1").phase == "succeeded"  # type: ignore[union-attr]
    assert b.get("t-2").phase == "dispatched"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("outcome", "missed"),
    [("success", ()), ("failed", ()), ("partial", ("a",)), ("no_data", ())],
)
def test_report_of_an_earlier_firing_is_superseded(outcome: str, missed: tuple[str, ...]) -> None:
    """A report naming t-1, produced before t-1 fired again, neither closes nor fails it."""
    b = book()
    b.open(trig("t-1", ("a",)), 0.0)
    b.complete(CompletionRef(outcome="success", trigger_id="t-1", event_id="ok-1"), 10.0)
    b.open(trig("t-1", ("a",)), T_OPEN)  # the same content fires again: attempt 2
    ref = CompletionRef(
        outcome=outcome,  # type: ignore[arg-type]
        trigger_id="t-1",
        missed=missed,
        event_id="old-run",
        produced_at=8.0,
    )
    e, _ = b.complete(ref, T_OPEN + 5.0)
    assert e is not None and e.phase == "dispatched" and e.failures == 0
    assert (e.history[-1].what, e.history[-1].event_id) == ("late", "old-run")
    assert b.last_unmatched == "superseded"  # counted and logged by the daemon (review6)


def test_late_success_of_a_timed_out_attempt_still_closes() -> None:
    """A re-dispatch keeps the firing time: an earlier attempt's late success closes it."""
    b = book(timeout=600.0)
    b.open(trig("t-1", ("a",)), 0.0)
    b.due(600.0)  # timed out: backoff
    b.due(700.0)  # attempt 2 goes out
    assert b.get("t-1").attempt == 2  # type: ignore[union-attr]
    ref = CompletionRef(outcome="success", trigger_id="t-1", event_id="run-1", produced_at=500.0)
    e, _ = b.complete(ref, 710.0)
    assert e is not None and e.phase == "succeeded"


_Z = datetime(2025, 11, 19, 18, 5, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"produced_at": "2025-11-19T18:05:00Z"}, _Z),
        ({"produced_at": "2025-11-19T18:05:00"}, _Z),  # naive: UTC
        ({"timestamp": "2025-11-19T19:05:00+01:00"}, _Z),
        ({"produced_at": _Z}, _Z),  # epoch seconds
        ({"timestamp": int(_Z)}, _Z),
        ({"produced_at": "2025-11-19T18:05:00Z", "timestamp": 1.0}, _Z),  # produced_at first
        ({"produced_at": None, "timestamp": _Z}, _Z),  # a top-level null is absent
        ({"produced_at": "yesterday"}, None),  # unreadable: no time, never a rejection
        ({"produced_at": True}, None),
        ({"produced_at": float("nan")}, None),
        ({}, None),
    ],
)
def test_completion_reads_its_production_time(fields: dict[str, Any], expected: Any) -> None:
    """``produced_at``, else ``timestamp``: ISO 8601 (naive is UTC) or epoch seconds."""
    ref = completion_ref({"trigger_id": "t-1", "status": "success", **fields})
    assert ref is not None and ref.produced_at == expected


def test_production_time_survives_the_journal_form() -> None:
    """ref_to_dict / ref_from_dict keep the time (and leave it out when there is none)."""
    ref = CompletionRef(outcome="success", trigger_id="t-1", produced_at=_Z)
    assert ref_from_dict(ref_to_dict(ref)) == ref
    assert "produced_at" not in ref_to_dict(CompletionRef(outcome="success", trigger_id="t-1"))

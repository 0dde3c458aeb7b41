"""Row values built on the hot path equal their reference definitions (times, ids)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from scoperouter.execution_log import memos
from scoperouter.execution_log.memos import day_iso
from scoperouter.execution_log.row_values import (
    _sha20,
    decision_id,
    dispatch_id,
    iso,
    skips_json,
)


@pytest.mark.parametrize(
    "ts",
    [
        datetime(2025, 11, 19, 10, 0, 0, 123456, tzinfo=UTC),
        datetime(2025, 11, 19, 10, 0, 0, tzinfo=UTC),  # no microseconds: still 6 digits
        datetime(2025, 11, 19, 10, 0, 0, 1),  # naive: taken as UTC
        datetime(2025, 11, 19, 5, 0, 0, 999999, tzinfo=timezone(timedelta(hours=-5))),
    ],
)
def test_iso_is_utc_with_microseconds(ts: datetime) -> None:
    """iso() is the UTC time with 6 fractional digits and +00:00, whatever the input's zone."""
    want = (ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)).isoformat(
        timespec="microseconds"
    )
    assert iso(ts) == want and want.endswith("+00:00")


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("d-e1|p|2025-11-19", decision_id("e1", "p", date(2025, 11, 19))),
        ("d-e1|p|", decision_id("e1", "p", None)),
        (
            "x-t-1|ok|3|2025-11-19T15:00:00.000000+00:00",
            dispatch_id("t-1", "ok", 3, "2025-11-19T15:00:00.000000+00:00"),
        ),
    ],
)
def test_hot_path_ids_equal_the_reference_ids(text: str, want: str) -> None:
    """The ids the row builders hash inline are decision_id()/dispatch_id()."""
    assert _sha20(text) == want


@pytest.mark.parametrize(
    ("skips", "want"),
    [({"not_an_input": 11, "irrelevant_fields": 2}, '{"irrelevant_fields":2,"not_an_input":11}'),
     ({"b": 1}, '{"b":1}')],
)  # fmt: skip
def test_skips_json_is_sorted_compact_and_memoised(skips: dict[str, int], want: str) -> None:
    """The skips column is sorted compact JSON, the same text on a repeat."""
    assert skips_json(skips) == want == skips_json(dict(skips))


@pytest.mark.parametrize(
    "d",
    [
        date(2025, 11, 19),
        date(1, 1, 1),
        datetime(2025, 11, 19, 10, 0, tzinfo=UTC),  # a datetime: its own isoformat
        datetime(2025, 11, 19, 5, 0, tzinfo=timezone(timedelta(hours=-5))),
    ],
)
def test_day_iso_is_isoformat_cold_warm_and_after_clearing(d: date) -> None:
    """day_iso(d) is d.isoformat() on the first call, the memoised one, and once the full memo is cleared."""
    want = d.isoformat()
    memos._day_iso.clear()
    assert day_iso(d) == want and day_iso(d) == want
    for i in range(memos.MEMO_SIZE - len(memos._day_iso)):
        memos._day_iso[date(2, 1, 1) + timedelta(days=i)] = "x"
    assert day_iso(d) == want and day_iso(date(2, 1, 1)) == "x"  # hits (or d not memoised)
    assert day_iso(date(3000, 1, 1)) == "3000-01-01"  # a miss with the memo full: cleared
    assert memos._day_iso == {date(3000, 1, 1): "3000-01-01"}
    assert day_iso(d) == want

"""The failing store's log lines count honestly: each line that follows the first one says
how many failures so far and how many were NOT logged since the previous line -- the
failure the line itself reports is logged, so it is not among them. Before, the count
included it (with a log interval of 0, where every failure is logged, each line claimed
one failure "not logged"). The log interval is measured on a virtual clock."""

from __future__ import annotations

import logging
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scoperouter.runtime import store_health
from scoperouter.runtime.options import RouterOptions
from scoperouter.runtime.store_health import StoreHealth

CASES = [
    # (log interval, when each failure happens, (failures so far, not logged) of each line
    # after the first)
    ("every failure logged", 0.0, [0, 0, 0, 0], [(2, 0), (3, 0), (4, 0)]),
    ("two left out, then a line", 30.0, [0, 1, 2, 31], [(4, 2)]),
    ("left out across two lines", 30.0, [0, 10, 30, 40, 50, 61], [(3, 1), (6, 2)]),
    ("interval never reached", 3600.0, [0, 1, 2, 3, 4], []),
]


@pytest.mark.parametrize(("case", "interval", "times", "lines"), CASES, ids=[c[0] for c in CASES])
def test_store_failure_lines_count_the_failures_left_out(
    case: str,
    interval: float,
    times: list[float],
    lines: list[tuple[int, int]],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """'N not logged' counts the failures that got no line of their own, never the one reported."""
    now = [0.0]
    monkeypatch.setattr(store_health.time, "monotonic", lambda: now[0])
    health = StoreHealth(RouterOptions(store_log_interval_s=interval), random.Random(1))
    caplog.set_level(logging.ERROR, logger="scoperouter.runtime")
    for t in times:
        now[0] = 1000.0 + t
        try:
            raise OSError("disk full")
        except OSError:
            health.failed("ingest transaction failed")
    records = [r for r in caplog.records if r.name == "scoperouter.runtime"]
    assert len(records) == 1 + len(lines), case
    assert [tuple(r.args) for r in records[1:]] == [
        ("ingest transaction failed", *counts) for counts in lines
    ], case


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 40), st.floats(0.001, 10.0), st.floats(0.001, 100.0), st.integers(0, 9))
def test_retry_delay_grows_by_the_failures_counted_and_is_capped(
    failures: int, base: float, cap: float, seed: int
) -> None:
    """retry_delay(n) is 0 for none, else U(0.5, 1) x min(cap, base x 2^(n-1)); backoff() is it for the store's own count."""
    o = RouterOptions(store_backoff_base_s=base, store_backoff_cap_s=cap)
    health = StoreHealth(o, random.Random(seed))
    delay = health.retry_delay(failures)
    raw = min(cap, base * 2 ** min(failures - 1, 30)) if failures else 0.0
    assert 0.5 * raw <= delay <= raw
    assert health.backoff() == 0.0  # healthy: no wait, whatever a caller counted
    failing = StoreHealth(o, random.Random(seed))  # the same draws as ``health``'s first
    failing.failures, failing.ok = failures, failures == 0
    assert failing.backoff() == delay

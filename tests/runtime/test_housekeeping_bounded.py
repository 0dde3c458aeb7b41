"""Housekeeping deletes a bounded number of rows per statement and pass (the state store's
write lock is the ingest's: a backlog past a horizon must not hold it for one long DELETE),
tells when it left rows for the next pass, and the router then runs the next pass after a
short pause instead of a whole ``housekeeping_interval``. Counted, not timed."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from scoperouter.runtime import housekeeping
from scoperouter.runtime.metrics import Metrics
from scoperouter.runtime.options import RouterOptions
from scoperouter.runtime.router import Router
from scoperouter.runtime.store import Store
from scoperouter.state.model import PRUNE_LIMIT, Pruned

NOW, DAY = 7_000_000.0, 86400.0
OPTIONS = RouterOptions()  # dedup 1 day; done triggers and event dead letters: a week


def _backlog(s: Store, n: int) -> None:
    """``n`` seen ids, done triggers and rejected-event dead letters past their horizons,
    and one of each (and a pending trigger) within them."""
    with s.transaction():
        for k in range(n + 1):
            age = 30 * DAY if k < n else 60.0
            s.mark_seen(f"e{k}", NOW - age)
            s.mark_done(s.insert_trigger(f"t{k}", "p", "{}", NOW - age), 1, NOW - age)
            s.dead_letter("event", f"ev{k}", "not_json", None, b"x", NOW - age)
        s.insert_trigger("pending", "p", "{}", NOW - 60 * DAY)


def _deleted_per_statement(s: Store) -> Callable[[], list[int]]:
    """Rows each DELETE statement on the store's connection changed, in order (SQLite's
    change counter read as the next statement starts)."""
    db: sqlite3.Connection = s._db
    log: list[tuple[str, int]] = []
    db.set_trace_callback(lambda sql: log.append((sql, db.total_changes)))

    def counts() -> list[int]:
        db.set_trace_callback(None)
        ends = [c for _sql, c in log[1:]] + [db.total_changes]
        return [e - c for (sql, c), e in zip(log, ends, strict=True) if sql.startswith("DELETE")]

    return counts


@pytest.mark.parametrize("limit", [1, 7, 40])
def test_each_pass_deletes_at_most_the_limit_per_statement(tmp_path: Path, limit: int) -> None:
    """Passes of at most ``limit`` rows per DELETE until one says nothing is left; then
    everything past its horizon is gone and nothing within it."""
    n = 20
    s = Store(tmp_path / "state.sqlite3", sync="normal")
    _backlog(s, n)
    per_statement: list[int] = []
    seen: list[int] = []
    more = True
    while more:
        counts = _deleted_per_statement(s)
        pruned = housekeeping.prune(s, OPTIONS, NOW, limit)
        got, more = pruned.seen, pruned.more
        per_statement += counts()
        seen.append(got)
        assert len(seen) <= n // limit + 2
    assert max(per_statement) <= limit
    assert sum(per_statement) == 3 * n and sum(seen) == n
    assert s.trigger_counts() == {"done": 1, "pending": 1}
    assert [d.ref for d in s.dead_letters()] == [f"ev{n}"]
    assert s.is_seen(f"e{n}") and not s.is_seen("e0")
    s.close()


def test_the_default_pass_is_bounded(tmp_path: Path) -> None:
    """A backlog larger than PRUNE_LIMIT past the dedup horizon: the first pass deletes
    PRUNE_LIMIT seen ids in one statement and says more are left; the next the rest."""
    s = Store(tmp_path / "state.sqlite3", sync="normal")
    with s.transaction():
        for k in range(PRUNE_LIMIT + 3):
            s.mark_seen(f"e{k}", NOW - 2 * DAY)
    counts = _deleted_per_statement(s)
    first = housekeeping.prune(s, OPTIONS, NOW)
    assert (first.seen, first.more) == (PRUNE_LIMIT, True)
    assert max(counts()) == PRUNE_LIMIT
    second = housekeeping.prune(s, OPTIONS, NOW)
    assert (second.seen, second.more) == (3, False)
    assert s.seen_count() == 0
    s.close()


async def test_router_runs_the_next_pass_at_once_while_rows_are_left() -> None:
    """A pass that left rows is followed by the next after the short catch-up pause, not
    after housekeeping_interval (an hour here); the interval applies again once done."""
    results = iter([Pruned(seen=5, more=True), Pruned(seen=5, more=True), Pruned(seen=2)])
    calls: list[int] = []
    done = asyncio.Event()

    def prune() -> Pruned:
        calls.append(1)
        fake.options.housekeeping_interval_s = 3600.0  # after the first pass: an hour
        got = next(results, None)
        if got is None:
            raise AssertionError("a pass ran before the interval after the backlog was gone")
        if not got.more:
            done.set()
        return got

    async def in_state(fn: Callable[..., Any], *args: Any) -> Any:
        return fn(*args)

    fake = SimpleNamespace(
        options=SimpleNamespace(housekeeping_interval_s=0.0, dead_letter_retention_s=7 * DAY),
        metrics=Metrics(),
        _in_state=in_state,
        _prune=prune,
        _copy_letters=lambda: None,
        letter_copies=None,
        health=SimpleNamespace(failed=lambda why: pytest.fail(why)),
    )
    task = asyncio.create_task(Router._housekeeping(fake))  # type: ignore[arg-type]
    await asyncio.wait_for(done.wait(), timeout=30)
    await asyncio.sleep(housekeeping.CATCH_UP_PAUSE_S * 4)  # no pass: the interval is an hour
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(calls) == 3


@pytest.mark.parametrize(
    ("seen", "letters", "levels"),
    [(0, 0, []), (5, 0, ["INFO"]), (0, 2, ["WARNING"]), (5, 2, ["INFO", "WARNING"])],
)
def test_a_pass_says_what_it_pruned(
    seen: int, letters: int, levels: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    """Pruned dead letters of rejected events are counted and logged at WARNING, never silently."""
    metrics = Metrics()
    with caplog.at_level(logging.INFO, logger="scoperouter.runtime"):
        housekeeping.said(Pruned(seen=seen, dead_letters=letters), 7 * DAY, metrics)
    assert [r.levelname for r in caplog.records] == levels
    assert metrics.dead_letters_pruned._value.get() == letters

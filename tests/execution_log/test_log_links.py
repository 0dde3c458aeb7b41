"""Trigger links set in memory on decision rows not yet written (issue 16) end exactly as
the per-link UPDATE after the rows are written: the same decision rows carry the same
trigger ids whether the log flushes after every call, never, or in between."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest
from logsupport import DAY, T0, game_day_events

from scoperouter.execution_log import SqliteExecutionLog
from scoperouter.execution_log.sqlite_links import link_buffered
from scoperouter.messages.models import Trigger
from scoperouter.processor_registry.compiled import CompiledRegistry
from scoperouter.processor_registry.relations import InMemoryRelations
from scoperouter.router.planner import plan


def _trigger(tid: str, processor: str, caused_by: tuple[str, ...], days: int = 0) -> Trigger:
    return Trigger(
        trigger_id=tid, processor=processor, game_date=DAY, start_date=DAY - timedelta(days=days),
        end_date=DAY, scope="date", reason="date_scope", caused_by=caused_by,
        fired_at=T0 + timedelta(seconds=10),
    )  # fmt: skip


def _links(path: Path) -> list[tuple[str, str | None]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(
            "SELECT decision_id, trigger_id FROM pipeline_execution_log "
            "WHERE kind = 'decision' ORDER BY decision_id"
        ).fetchall()
    finally:
        conn.close()


def _record(
    path: Path, registry: CompiledRegistry, relations: InMemoryRelations, flush_after: set[int]
) -> list[tuple[str, str | None]]:
    """The game day's events, a redelivery of one, and dispatches naming events of this and
    earlier flushes (two triggers of one processor and date: the first links); ``flush_after``:
    the steps after which the log flushes."""
    events = [e for e, _at in game_day_events()]
    steps: list[tuple[str, object]] = [("event", e) for e in events[:10]]
    steps += [
        ("dispatch", _trigger("t-a", "player_game_summary", ("e-000", "e-001"))),
        ("dispatch", _trigger("t-b", "player_game_summary", ("e-001",))),  # e-001 taken
    ]
    steps += [("event", e) for e in events[10:]]
    steps += [
        ("dispatch", _trigger("t-c", "team_defense_game_summary", ("e-003", "e-015"), days=2)),
        ("dispatch", _trigger("t-d", "player_game_summary", ("e-012", "e-013", "e-999"), days=1)),
        ("event", events[3]),  # a redelivered event: its rows are not written again
        ("dispatch", _trigger("t-e", "upcoming_team_game_context", ("e-003",))),
    ]
    with SqliteExecutionLog(path, batch_size=10**6, flush_interval_s=3600.0) as log:
        for i, (kind, x) in enumerate(steps):
            if kind == "event":
                assert not isinstance(x, Trigger)
                log.record_decisions(x, plan(registry, relations, x, DAY), T0,  # type: ignore[arg-type]
                                     registry=registry, relations=relations)  # fmt: skip
            else:
                assert isinstance(x, Trigger)
                log.record_dispatch(x, status="ok", attempts=1, latency_ms=1.0, dispatched_at=T0)
            if i in flush_after:
                log.flush()
    return _links(path)


@pytest.mark.parametrize(
    "flush_after",
    [
        {11},  # t-a and t-b linked in memory (first link wins), the rest in the next flush
        set(),  # one flush at close: the redelivered event makes every link an UPDATE
        {9},  # decisions of the first ten events written before their dispatches
        {10, 12, 31},  # a dispatch flushed alone; the redelivery with a dispatch
        set(range(40)),  # after every step: every link is an UPDATE of written rows
    ],
)
def test_links_equal_whenever_the_log_flushes(
    tmp_path: Path, registry: CompiledRegistry, relations: InMemoryRelations, flush_after: set[int]
) -> None:
    """Decision rows end with the same trigger ids whatever the flush points."""
    want = _record(tmp_path / "every.sqlite", registry, relations, set(range(40)))
    got = _record(tmp_path / "some.sqlite", registry, relations, flush_after)
    assert got == want
    assert {t for _d, t in want} >= {"t-a", "t-d", None}  # linked and unlinked rows


def test_link_buffered_returns_links_of_events_not_buffered() -> None:
    """Links to events outside the buffer come back in order for the UPDATE; none is applied."""
    links = [
        ("t-1", "p", "2025-11-19", "2025-11-19", ["e1", "e2"]),
        ("t-2", "p", "2025-11-18", "2025-11-19", ["e3"]),
    ]
    assert link_buffered([], links, set()) == [
        ("t-1", "e1", "p", "2025-11-19", "2025-11-19"),
        ("t-1", "e2", "p", "2025-11-19", "2025-11-19"),
        ("t-2", "e3", "p", "2025-11-18", "2025-11-19"),
    ]

"""The SQLite log's retention prune is bounded: passes of PRUNE_LIMIT rows a table, each
its own transaction, the next one after CATCH_UP_PAUSE_S, until nothing is past the cutoff."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from logsupport import DAY, T0

from scoperouter.execution_log import SqliteExecutionLog, read_log
from scoperouter.execution_log import sqlite as sqlite_log
from scoperouter.execution_log.api import (
    COMPLETIONS_TABLE,
    EVENTS_TABLE,
    LOG_TABLE,
    TRIGGER_REPORTS_TABLE,
)
from scoperouter.execution_log.reader import LogData
from scoperouter.execution_log.rows import (
    COMPLETION_COLUMNS,
    TRIGGER_REPORT_COLUMNS,
    completion_row,
    trigger_report_row,
)
from scoperouter.messages.models import Event, Trigger
from scoperouter.processor_registry.compiled import CompiledRegistry
from scoperouter.processor_registry.relations import InMemoryRelations
from scoperouter.router.planner import plan
from scoperouter.runtime.housekeeping import CATCH_UP_PAUSE_S
from scoperouter.state.model import PRUNE_LIMIT

TABLES = (LOG_TABLE, EVENTS_TABLE, COMPLETIONS_TABLE, TRIGGER_REPORTS_TABLE)
RETENTION_S = 3600.0


def counts(path: Path) -> dict[str, int]:
    conn = sqlite3.connect(path)
    try:
        return {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in TABLES}
    finally:
        conn.close()


def fill(
    log: SqliteExecutionLog,
    registry: CompiledRegistry,
    relations: InMemoryRelations,
    old: int,
    new: int,
) -> float:
    """``old`` events (and completions, and trigger reports) decided over the hour before the cutoff, ``new`` in
    the hour after, and a folded dispatch of the first event fired after the cutoff; the
    ``now`` whose cutoff that is."""
    cutoff = T0 + timedelta(hours=1)
    step = timedelta(hours=1) / max(old, new)
    base = Event.model_validate(
        {"event_id": "x", "source": "nba_raw.nbac_injury_report", "game_date": DAY,
         "affected_entities": {"players": ["t01p03"]}, "changed_fields": ["injury_status"]}
    )  # fmt: skip
    times = [cutoff - step * (old - i) for i in range(old)] + [
        cutoff + step * i for i in range(new)
    ]
    for i, at in enumerate(times):
        e = base.model_copy(update={"event_id": f"e{i}"})
        log.record_decisions(
            e, plan(registry, relations, e, DAY), at, registry=registry, relations=relations
        )
        if i == 0:  # folded into e0's decision row: its outcome is newer than the cutoff
            fired = cutoff + timedelta(minutes=5)
            t = Trigger(
                trigger_id="t-0", processor="player_game_summary", game_date=DAY,
                start_date=DAY, end_date=DAY, scope="entities", entity_type="player",
                entity_ids=("t01p03",), reason="entity_scope", caused_by=("e0",),
                fired_at=fired,
            )  # fmt: skip
            log.record_dispatch(t, status="ok", attempts=1, latency_ms=1.0, dispatched_at=fired)
    comps = [
        completion_row(
            "player_game_summary",
            DAY,
            trigger_id=f"c{i}",
            records_processed=1,
            entities_changed=1,
            duration_s=0.1,
            reported_at=at,
        )
        for i, at in enumerate(times)
    ]
    reports = [
        trigger_report_row(f"c{i}", "no_data", event_id=f"e{i}", reported_at=at)
        for i, at in enumerate(times)
    ]
    conn = sqlite3.connect(log.path)  # in time order, as the log appends them
    with conn:
        marks = ", ".join("?" * len(COMPLETION_COLUMNS))
        conn.executemany(f"INSERT INTO {COMPLETIONS_TABLE} VALUES ({marks})", comps)
        marks = ", ".join("?" * len(TRIGGER_REPORT_COLUMNS))
        conn.executemany(f"INSERT INTO {TRIGGER_REPORTS_TABLE} VALUES ({marks})", reports)
    conn.close()
    log.flush()
    return (cutoff + timedelta(seconds=RETENTION_S)).timestamp()


def kept(before: LogData, now: float) -> tuple[object, ...]:
    """What an unbounded prune at ``now`` keeps, from the rows read before it."""
    cut = now - RETENTION_S
    return (
        [d for d in before.decisions if d.decided_at.timestamp() >= cut],
        before.dispatches,  # all newer than the cutoff (the folded one included)
        [c for c in before.completions if c.reported_at and c.reported_at.timestamp() >= cut],
        [e for e in before.events if e.decided_at.timestamp() >= cut],
    )


@pytest.mark.parametrize(
    ("limit", "old", "new"),
    [
        (PRUNE_LIMIT, PRUNE_LIMIT + 700, 50),  # the default: more than one pass a table
        (40, 130, 30),  # a small limit: four passes
        (40, 40, 10),  # exactly the limit: one pass that may leave nothing
        (40, 0, 20),  # nothing past the cutoff
    ],
)
def test_prune_deletes_in_bounded_passes_and_keeps_what_retention_keeps(
    tmp_path: Path,
    registry: CompiledRegistry,
    relations: InMemoryRelations,
    limit: int,
    old: int,
    new: int,
) -> None:
    """Each prune() deletes at most the limit a table; repeated, it ends where one
    unbounded prune would (the folded outcome newer than the cutoff kept)."""
    path = tmp_path / "l.sqlite"
    kw = {} if limit == PRUNE_LIMIT else {"prune_limit": limit}
    with SqliteExecutionLog(path, retention_s=RETENTION_S, prune_interval_s=1e9, **kw) as log:
        now = fill(log, registry, relations, old, new)
        before, left = read_log(path), counts(path)
        per_pass: list[dict[str, int]] = []
        for _ in range(50):
            n = log.prune(now=now)
            after = counts(path)
            per_pass.append({t: left[t] - after[t] for t in TABLES})
            assert all(0 <= d <= limit for d in per_pass[-1].values()), per_pass
            assert n == sum(per_pass[-1].values())
            left = after
            if n == 0:
                break
        assert not log.prune_more  # the pass that deleted nothing says nothing is left
    assert sum(p[EVENTS_TABLE] for p in per_pass) == old
    assert sum(p[COMPLETIONS_TABLE] for p in per_pass) == old
    assert sum(p[TRIGGER_REPORTS_TABLE] for p in per_pass) == old
    assert len(per_pass) > old // limit  # as many passes as the limit makes it take
    got = read_log(path)
    assert (got.decisions, got.dispatches, got.completions, got.events) == tuple(
        tuple(x) for x in kept(before, now)
    )


def test_writes_and_flushes_run_the_next_pass_after_the_catch_up_pause(
    tmp_path: Path,
    registry: CompiledRegistry,
    relations: InMemoryRelations,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A pass that stops at its limit is followed, at the log's next write or flush at least
    CATCH_UP_PAUSE_S later, by the next one (not a full prune_interval_s later)."""
    clock = SimpleNamespace(mono=1000.0)
    path = tmp_path / "l.sqlite"
    with SqliteExecutionLog(
        path, retention_s=RETENTION_S, prune_interval_s=1e9, prune_limit=40, flush_interval_s=1e9
    ) as log:
        now = fill(log, registry, relations, 130, 10)
        start = counts(path)
        fake = SimpleNamespace(monotonic=lambda: clock.mono, time=lambda: now)
        monkeypatch.setattr(sqlite_log, "time", fake)

        writes = [0]

        def write() -> None:
            writes[0] += 1
            log.record_completion(
                "x", DAY, trigger_id=None, records_processed=1, entities_changed=1,
                duration_s=0.1,
            )  # fmt: skip

        log.prune()
        assert log.prune_more
        left = counts(path)
        clock.mono += CATCH_UP_PAUSE_S / 2  # too early: neither a write nor a flush prunes
        write()
        log.flush()  # writes the completion (reported now: newer than the cutoff)
        assert counts(path) == {**left, COMPLETIONS_TABLE: left[COMPLETIONS_TABLE] + 1}
        left, passes = counts(path), 1
        while log.prune_more and passes < 100:
            clock.mono += CATCH_UP_PAUSE_S * 1.1  # (not just the pause: float rounding)
            write() if passes % 2 else log.flush()  # a write is buffered: no flush is due
            now_left = counts(path)
            gone = [left[t] - now_left[t] for t in (LOG_TABLE, EVENTS_TABLE)]
            assert all(0 <= g <= 40 for g in gone) and any(gone), gone
            left, passes = now_left, passes + 1
        assert not log.prune_more
        assert passes > 130 // 40  # the events alone take four passes
        assert left[EVENTS_TABLE] == 10
        clock.mono += CATCH_UP_PAUSE_S * 1.1  # caught up: the next pass is prune_interval_s away
        log.flush()
        assert counts(path)[LOG_TABLE] == left[LOG_TABLE]
    left = counts(path)
    assert left[COMPLETIONS_TABLE] == 10 + writes[0]  # the old ones gone, the written kept
    assert left[TRIGGER_REPORTS_TABLE] == 10
    assert log.pruned == sum(start.values()) + writes[0] - sum(left.values())


@pytest.mark.parametrize(
    ("fold", "fired_h", "kept_tids"),
    [
        (True, 0, ["t2"]),  # folded outcome older than the cutoff: t1's completion goes with it
        (False, 0, ["t2"]),  # its own dispatch row, the same
        (True, 2, ["t1", "t2"]),  # fired after the cutoff: its dispatch row and completion stay
        (False, 2, ["t1", "t2"]),
    ],
)
def test_prune_removes_the_completion_and_report_of_a_trigger_whose_dispatch_it_removes(
    tmp_path: Path,
    registry: CompiledRegistry,
    relations: InMemoryRelations,
    fold: bool,
    fired_h: int,
    kept_tids: list[str],
) -> None:
    """A completion reported after the cutoff whose trigger's dispatch rows are pruned goes
    in the same pass (with its trigger report): never left to be given to another run."""
    path = tmp_path / "l.sqlite"
    base = Event.model_validate(
        {"event_id": "x", "source": "nba_raw.nbac_injury_report", "game_date": DAY,
         "affected_entities": {"players": ["t01p03"]}, "changed_fields": ["injury_status"]}
    )  # fmt: skip
    with SqliteExecutionLog(path, retention_s=RETENTION_S, prune_interval_s=1e9) as log:
        for ev, tid, h in (("e1", "t1", fired_h), ("e2", "t2", 3)):
            e = base.model_copy(update={"event_id": ev})
            at = T0 + timedelta(hours=0 if tid == "t1" else h)  # t1 decided before the cutoff
            log.record_decisions(e, plan(registry, relations, e, DAY), at, registry=registry,
                                 relations=relations)  # fmt: skip
            if not fold:
                log.flush()
            fired = T0 + timedelta(hours=h)
            t = Trigger(
                trigger_id=tid, processor="player_game_summary", game_date=DAY,
                start_date=DAY, end_date=DAY, scope="entities", entity_type="player",
                entity_ids=("t01p03",), reason="entity_scope", caused_by=(ev,), fired_at=fired,
            )  # fmt: skip
            log.record_dispatch(t, status="ok", attempts=1, latency_ms=1.0, dispatched_at=fired)
            log.flush()
            done = fired + timedelta(hours=2)  # reported after the cutoff (T0 + 1h)
            with sqlite3.connect(path) as conn:
                conn.execute(
                    f"INSERT INTO {COMPLETIONS_TABLE} VALUES "
                    f"({', '.join('?' * len(COMPLETION_COLUMNS))})",
                    completion_row(
                        "player_game_summary",
                        DAY,
                        trigger_id=tid,
                        records_processed=7,
                        entities_changed=1,
                        duration_s=60.0,
                        reported_at=done,
                    ),
                )
                conn.execute(
                    f"INSERT INTO {TRIGGER_REPORTS_TABLE} VALUES (?, ?, ?, ?)",
                    trigger_report_row(tid, "success", event_id=ev, reported_at=done),
                )
            conn.close()
        log.prune(now=(T0 + timedelta(hours=1)).timestamp() + RETENTION_S)
    data = read_log(path)
    assert sorted(c.trigger_id or "" for c in data.completions) == kept_tids
    with sqlite3.connect(path) as conn:
        reports = sorted(
            r[0] for r in conn.execute(f"SELECT trigger_id FROM {TRIGGER_REPORTS_TABLE}")
        )
    conn.close()
    assert reports == kept_tids
    assert sorted(x.trigger_id or "" for x in data.dispatches) == kept_tids

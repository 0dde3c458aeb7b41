"""The SQLite execution log: rows per decision and dispatch, trigger links, batching."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from logsupport import DAY, T0

from scoperouter.execution_log import (
    DEFAULT_LOG_PATH,
    NullExecutionLog,
    SqliteExecutionLog,
    open_log,
    read_log,
)
from scoperouter.execution_log.api import ExecutionLog
from scoperouter.execution_log.reader import stored_log_rows
from scoperouter.execution_log.row_values import compact_event_json, event_from_row_json
from scoperouter.messages.models import Event, Trigger
from scoperouter.processor_registry.compiled import CompiledRegistry
from scoperouter.processor_registry.relations import InMemoryRelations
from scoperouter.router.planner import plan

SPEC_COLUMNS = [
    "decision_id",
    "event_id",
    "correlation_id",
    "processor",
    "phase",
    "game_date",
    "action",
    "scope",
    "entity_type",
    "entities_requested",
    "entities_universe",
    "reason",
    "trigger_id",
    "decided_at",
    "dispatched_at",
    "dispatch_status",
    "attempts",
    "latency_ms",
]


def rows(path: Path, sql: str, *args: Any) -> list[dict[str, Any]]:
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(sql, args)]
    finally:
        conn.close()


def unfolded(path: Path) -> list[dict[str, Any]]:
    """The log rows as a writer that never folds stores them."""
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in stored_log_rows(conn)]
    finally:
        conn.close()


def ev(event_id: str, source: str, **kw: Any) -> Event:
    return Event.model_validate({"event_id": event_id, "source": source, "game_date": DAY, **kw})


def test_default_path_is_in_the_state_dir() -> None:
    """DEFAULT_LOG_PATH is ./.scoperouter/execution_log.sqlite (the agreed default)."""
    assert Path(".scoperouter") / "execution_log.sqlite" == DEFAULT_LOG_PATH


def test_writers_satisfy_the_protocol(tmp_path: Path) -> None:
    """SQLite and Null writers implement the ExecutionLog protocol."""
    with SqliteExecutionLog(tmp_path / "l.sqlite") as log:
        assert isinstance(log, ExecutionLog)
    assert isinstance(NullExecutionLog(), ExecutionLog)


def test_table_has_the_spec_columns(tmp_path: Path) -> None:
    """pipeline_execution_log has every SPEC section 5 column; the file uses WAL."""
    path = tmp_path / "l.sqlite"
    open_log(path).close()
    cols = [r["name"] for r in rows(path, "PRAGMA table_info(pipeline_execution_log)")]
    assert cols[: len(SPEC_COLUMNS)] == SPEC_COLUMNS
    assert rows(path, "PRAGMA journal_mode")[0]["journal_mode"] == "wal"


@pytest.mark.parametrize(
    ("event", "processor", "want"),
    [
        # entity scope: requested = ids, universe from relation data
        (
            ev(
                "e1",
                "nba_raw.nbac_injury_report",
                affected_entities={"players": ["t01p03"]},
                changed_fields=["injury_status"],
            ),
            "player_game_summary",
            [
                {
                    "action": "run",
                    "scope": "entities",
                    "entities_requested": 1,
                    "entities_universe": 450,
                    "entity_type": "player",
                    "reason": "entity_scope",
                    "game_date": "2025-11-19",
                }
            ],
        ),
        # date scope of an entity-granular processor: requested = universe
        (
            ev("e2", "nba_raw.nbac_schedule"),
            "upcoming_team_game_context",
            [
                {
                    "action": "run",
                    "scope": "date",
                    "entities_requested": 30,
                    "entities_universe": 30,
                    "entity_type": "team",
                    "reason": "no_entities_in_event",
                    "game_date": "2025-11-19",
                }
            ],
        ),
        # a skip: no row of its own (counted on the event row, see below)
        (ev("e3", "nba_raw.bdl_standings"), "league_rankings", []),
        # date granularity: no entity universe
        (
            ev(
                "e4", "nba_analytics.player_game_summary", affected_entities={"players": ["t01p03"]}
            ),
            "league_rankings",
            [
                {
                    "action": "run",
                    "scope": "date",
                    "entities_requested": None,
                    "entities_universe": None,
                    "entity_type": None,
                    "reason": "date_granularity",
                    "game_date": "2025-11-19",
                }
            ],
        ),
    ],
)
def test_decision_rows(
    tmp_path: Path,
    registry: CompiledRegistry,
    relations: InMemoryRelations,
    event: Event,
    processor: str,
    want: list[dict[str, Any]],
) -> None:
    """Each decision becomes one row per date with requested/universe counts from relation data."""
    path = tmp_path / "l.sqlite"
    with SqliteExecutionLog(path) as log:
        ids = log.record_decisions(
            event, plan(registry, relations, event, DAY), T0, registry=registry, relations=relations
        )
    assert len(ids) == len(set(ids))
    got = rows(
        path,
        "SELECT * FROM pipeline_execution_log WHERE processor = ? ORDER BY game_date",
        processor,
    )
    keys = list(want[0]) if want else []
    assert [{k: r[k] for k in keys} for r in got] == want
    assert all(r["event_id"] == event.event_id and r["kind"] == "decision" for r in got)
    assert not got or got[0]["phase"] == registry.processors[processor].phase


@pytest.mark.parametrize(
    ("event", "want"),
    [
        (ev("e1", "nba_raw.bdl_standings"), "not_an_input"),
        (ev("e2", "nba_raw.no_such_table"), "unknown_source"),
        (
            ev(
                "e3",
                "nba_raw.nbac_gamebook_player_stats",
                affected_entities={"players": ["t01p03"]},
                changed_fields=["minutes"],
            ),
            "irrelevant_fields",
        ),
    ],
)
def test_aggregated_skips_are_counted_on_the_event_row(
    tmp_path: Path,
    registry: CompiledRegistry,
    relations: InMemoryRelations,
    event: Event,
    want: str,
) -> None:
    """Skips get no rows; the event row counts them per reason."""
    decisions = plan(registry, relations, event, DAY)
    skips = Counter(d.reason for d in decisions if d.action == "skip")
    path = tmp_path / "l.sqlite"
    with SqliteExecutionLog(path) as log:
        ids = log.record_decisions(event, decisions, T0, registry=registry, relations=relations)
    assert skips[want] > 0 and len(ids) == len(decisions) - sum(skips.values())
    assert (
        rows(path, "SELECT COUNT(*) AS n FROM pipeline_execution_log WHERE action = 'skip'")[0]["n"]
        == 0
    )
    (e,) = rows(path, "SELECT skips FROM pipeline_execution_events")
    assert json.loads(e["skips"]) == dict(skips)
    assert read_log(path).decision_count == len(decisions)


def test_fallback_keeps_the_mapped_count(
    tmp_path: Path, registry: CompiledRegistry, relations: InMemoryRelations
) -> None:
    """A fallback_threshold date run records how many entities the event really reached."""
    players = [f"t{t:02d}p{j:02d}" for t in range(12) for j in range(15)]
    event = ev(
        "e1",
        "nba_raw.nbac_gamebook_player_stats",
        affected_entities={"players": players},
        changed_fields=["points"],
    )
    path = tmp_path / "l.sqlite"
    with SqliteExecutionLog(path) as log:
        log.record_decisions(
            event, plan(registry, relations, event, DAY), T0, registry=registry, relations=relations
        )
    (r,) = rows(
        path, "SELECT * FROM pipeline_execution_log WHERE processor = 'player_game_summary'"
    )
    assert (r["scope"], r["reason"], r["entities_requested"], r["entities_mapped"]) == (
        "date",
        "fallback_threshold",
        450,
        len(players),
    )


def test_lookback_dates_are_rows(
    tmp_path: Path, registry: CompiledRegistry, relations: InMemoryRelations
) -> None:
    """A decision with several dates (lookback) is one row per date, all with the same ids."""
    event = ev(
        "e1",
        "nba_analytics.player_game_summary",
        game_date=DAY - timedelta(days=2),
        affected_entities={"players": ["t01p03"]},
    )
    decisions = plan(registry, relations, event, DAY)
    (d,) = [d for d in decisions if d.processor == "player_shot_zone_analysis"]
    path = tmp_path / "l.sqlite"
    with SqliteExecutionLog(path) as log:
        log.record_decisions(event, decisions, T0, registry=registry, relations=relations)
    got = rows(
        path,
        "SELECT game_date, entity_ids FROM pipeline_execution_log "
        "WHERE processor = 'player_shot_zone_analysis' ORDER BY game_date",
    )
    assert [r["game_date"] for r in got] == [x.isoformat() for x in d.dates]
    assert len(got) > 1 and {r["entity_ids"] for r in got} == {'["t01p03"]'}


def _trigger(tid: str, caused_by: tuple[str, ...], scope: str = "entities") -> Trigger:
    return Trigger(
        trigger_id=tid,
        processor="player_game_summary",
        game_date=DAY,
        start_date=DAY,
        end_date=DAY,
        scope=scope,  # type: ignore[arg-type]
        entity_type="player" if scope == "entities" else None,
        entity_ids=("t01p03",) if scope == "entities" else None,
        reason="entity_scope",
        caused_by=caused_by,
        fired_at=T0 + timedelta(seconds=10),
    )


def test_dispatch_links_decisions_to_the_trigger(
    tmp_path: Path, registry: CompiledRegistry, relations: InMemoryRelations
) -> None:
    """A dispatch row per outcome; the caused_by decisions of that processor get trigger_id."""
    e1 = ev(
        "e1",
        "nba_raw.nbac_injury_report",
        affected_entities={"players": ["t01p03"]},
        changed_fields=["injury_status"],
    )
    e2 = ev(
        "e2",
        "nba_raw.nbac_injury_report",
        affected_entities={"players": ["t02p01"]},
        changed_fields=["injury_status"],
    )
    path = tmp_path / "l.sqlite"
    with SqliteExecutionLog(path) as log:
        for e in (e1, e2):
            log.record_decisions(
                e, plan(registry, relations, e, DAY), T0, registry=registry, relations=relations
            )
        t = _trigger("t-1", ("e1",))
        log.record_dispatch(
            t, status="retry", attempts=1, latency_ms=5.0, dispatched_at=T0, error="503"
        )
        log.record_dispatch(t, status="ok", attempts=2, latency_ms=7.5, dispatched_at=T0)
    linked = rows(
        path,
        "SELECT event_id, processor FROM pipeline_execution_log "
        "WHERE kind = 'decision' AND trigger_id = 't-1'",
    )
    assert linked == [{"event_id": "e1", "processor": "player_game_summary"}]
    cols = (
        "dispatch_status",
        "attempts",
        "latency_ms",
        "error",
        "entities_universe",
        "phase",
        "caused_by",
    )
    disp = sorted(
        ({c: r[c] for c in cols} for r in unfolded(path) if r["kind"] == "dispatch"),
        key=lambda r: r["attempts"],
    )
    # the first outcome is folded into its decision row, the second has a row of its own
    assert rows(
        path, "SELECT count(*) AS n FROM pipeline_execution_log WHERE fired_at IS NOT NULL"
    ) == [{"n": 1}]
    assert disp == [
        {
            "dispatch_status": "retry",
            "attempts": 1,
            "latency_ms": 5.0,
            "error": "503",
            "entities_universe": 450,
            "phase": 3,
            "caused_by": '["e1"]',
        },
        {
            "dispatch_status": "ok",
            "attempts": 2,
            "latency_ms": 7.5,
            "error": None,
            "entities_universe": 450,
            "phase": 3,
            "caused_by": '["e1"]',
        },
    ]


def test_dispatch_after_restart_fills_universe_from_decisions(
    tmp_path: Path, registry: CompiledRegistry, relations: InMemoryRelations
) -> None:
    """A dispatch logged by a new writer (daemon restart) still gets universe, phase and requested
    (from the run decision row of its processor and date)."""
    e = ev(
        "e1",
        "nba_raw.nbac_injury_report",
        affected_entities={"players": ["t01p03"]},
        changed_fields=["injury_status"],
    )
    path = tmp_path / "l.sqlite"
    with SqliteExecutionLog(path) as log:
        log.record_decisions(
            e, plan(registry, relations, e, DAY), T0, registry=registry, relations=relations
        )
    with SqliteExecutionLog(path) as log2:
        log2.record_dispatch(
            _trigger("t-9", ("e1",), scope="date"),
            status="ok",
            attempts=1,
            latency_ms=1.0,
            dispatched_at=T0,
        )
    (r,) = rows(
        path,
        "SELECT entities_universe, entities_requested, phase, granularity "
        "FROM pipeline_execution_log WHERE kind = 'dispatch'",
    )
    assert r == {
        "entities_universe": 450,
        "entities_requested": 450,
        "phase": 3,
        "granularity": "player",
    }


def test_redelivered_event_is_not_duplicated(
    tmp_path: Path, registry: CompiledRegistry, relations: InMemoryRelations
) -> None:
    """Decision ids are deterministic: recording the same event twice keeps one set of rows."""
    e = ev("e1", "nba_raw.nbac_schedule")
    path = tmp_path / "l.sqlite"
    with SqliteExecutionLog(path) as log:
        a = log.record_decisions(
            e, plan(registry, relations, e, DAY), T0, registry=registry, relations=relations
        )
        b = log.record_decisions(
            e,
            plan(registry, relations, e, DAY),
            T0 + timedelta(seconds=1),
            registry=registry,
            relations=relations,
        )
    assert a == b
    assert rows(path, "SELECT count(*) AS n FROM pipeline_execution_log")[0]["n"] == len(a)
    assert rows(path, "SELECT count(*) AS n FROM pipeline_execution_events")[0]["n"] == 1


def test_null_log_ids_match_sqlite_ids(
    tmp_path: Path, registry: CompiledRegistry, relations: InMemoryRelations
) -> None:
    """NullExecutionLog returns the same decision ids as a real log and writes nothing."""
    e = ev("e1", "nba_raw.nbac_injury_report", affected_entities={"players": ["t01p03"]})
    ds = plan(registry, relations, e, DAY)
    with SqliteExecutionLog(tmp_path / "l.sqlite") as log:
        want = log.record_decisions(e, ds, T0, registry=registry, relations=relations)
    assert (
        NullExecutionLog().record_decisions(e, ds, T0, registry=registry, relations=relations)
        == want
    )


@pytest.mark.parametrize(
    ("batch_size", "interval", "visible_before_flush"),
    [
        (10_000, 3600.0, False),  # buffered until flush()
        (1, 3600.0, True),  # batch full: written at once
        (10_000, 0.0, True),  # interval elapsed: written at once
    ],
)
def test_batching(
    tmp_path: Path,
    registry: CompiledRegistry,
    relations: InMemoryRelations,
    batch_size: int,
    interval: float,
    visible_before_flush: bool,
) -> None:
    """Rows are written when the batch fills, the interval passes, or on flush()."""
    path = tmp_path / "l.sqlite"
    log = SqliteExecutionLog(path, batch_size=batch_size, flush_interval_s=interval)
    e = ev("e1", "nba_raw.nbac_schedule")
    n = len(
        log.record_decisions(
            e, plan(registry, relations, e, DAY), T0, registry=registry, relations=relations
        )
    )
    before = rows(path, "SELECT count(*) AS n FROM pipeline_execution_log")[0]["n"]
    assert (before == n) is visible_before_flush
    log.flush()
    assert rows(path, "SELECT count(*) AS n FROM pipeline_execution_log")[0]["n"] == n
    log.close()
    log.close()  # idempotent


def test_completion_rows(tmp_path: Path) -> None:
    """record_completion stores what the processor reported."""
    path = tmp_path / "l.sqlite"
    with SqliteExecutionLog(path) as log:
        log.record_completion(
            "player_game_summary",
            DAY,
            trigger_id="t-1",
            records_processed=3,
            entities_changed=2,
            duration_s=0.25,
        )
        log.record_completion(
            "league_rankings",
            date(2025, 11, 18),
            trigger_id=None,
            records_processed=450,
            entities_changed=None,
            duration_s=30.0,
        )
    got = rows(
        path,
        "SELECT processor, game_date, trigger_id, records_processed, entities_changed, duration_s "
        "FROM pipeline_execution_completions ORDER BY processor",
    )
    assert got == [
        {
            "processor": "league_rankings",
            "game_date": "2025-11-18",
            "trigger_id": None,
            "records_processed": 450,
            "entities_changed": None,
            "duration_s": 30.0,
        },
        {
            "processor": "player_game_summary",
            "game_date": "2025-11-19",
            "trigger_id": "t-1",
            "records_processed": 3,
            "entities_changed": 2,
            "duration_s": 0.25,
        },
    ]


def test_naive_times_are_utc(
    tmp_path: Path, registry: CompiledRegistry, relations: InMemoryRelations
) -> None:
    """A naive decided_at is stored as UTC; aware times are converted to UTC."""
    path = tmp_path / "l.sqlite"
    e1, e2 = ev("e1", "nba_raw.nbac_schedule"), ev("e2", "nba_raw.bdl_standings")
    aware = datetime(2025, 11, 19, 10, 0, tzinfo=UTC).astimezone(timezone(timedelta(hours=-5)))
    with SqliteExecutionLog(path) as log:
        log.record_decisions(
            e1,
            plan(registry, relations, e1, DAY),
            datetime(2025, 11, 19, 10, 0),
            registry=registry,
            relations=relations,
        )
        log.record_decisions(
            e2, plan(registry, relations, e2, DAY), aware, registry=registry, relations=relations
        )
    got = {
        r["event_id"]: r["decided_at"]
        for r in rows(path, "SELECT event_id, decided_at FROM pipeline_execution_events")
    }
    assert got == {
        "e1": "2025-11-19T10:00:00.000000+00:00",
        "e2": "2025-11-19T10:00:00.000000+00:00",
    }


def test_completion_reported_twice_is_one_row(tmp_path: Path) -> None:
    """A completion with a trigger id is stored once per (trigger, processor, date)."""
    path = tmp_path / "l.sqlite"
    for _ in range(2):
        with SqliteExecutionLog(path) as log:
            log.record_completion(
                "player_game_summary",
                DAY,
                trigger_id="t-1",
                records_processed=3,
                entities_changed=2,
                duration_s=0.25,
            )
            log.record_completion(
                "player_game_summary",
                DAY,
                trigger_id=None,
                records_processed=3,
                entities_changed=2,
                duration_s=0.25,
            )
    got = rows(path, "SELECT trigger_id FROM pipeline_execution_completions ORDER BY trigger_id")
    assert [r["trigger_id"] for r in got] == [None, None, "t-1"]


@pytest.mark.parametrize(("retention_s", "kept"), [(50.0, 50), (1000.0, 100), (0.5, 0)])
def test_retention_prunes_older_rows(
    tmp_path: Path,
    registry: CompiledRegistry,
    relations: InMemoryRelations,
    retention_s: float,
    kept: int,
) -> None:
    """prune() deletes the events, decision and dispatch rows decided before now - retention."""
    path = tmp_path / "l.sqlite"
    with SqliteExecutionLog(path, retention_s=retention_s, prune_interval_s=1e9) as log:
        for i in range(100):
            e = ev(
                f"e{i}",
                "nba_raw.nbac_injury_report",
                affected_entities={"players": ["t01p03"]},
                changed_fields=["injury_status"],
            )
            log.record_decisions(
                e,
                plan(registry, relations, e, DAY),
                T0 + timedelta(seconds=i),
                registry=registry,
                relations=relations,
            )
        log.flush()
        per_event = rows(path, "SELECT COUNT(*) AS n FROM pipeline_execution_log")[0]["n"] // 100
        log.prune(now=(T0 + timedelta(seconds=100)).timestamp())
    assert rows(path, "SELECT COUNT(*) AS n FROM pipeline_execution_events")[0]["n"] == kept
    assert (
        rows(path, "SELECT COUNT(*) AS n FROM pipeline_execution_log")[0]["n"] == kept * per_event
    )
    left = rows(path, "SELECT MIN(decided_at) AS t FROM pipeline_execution_events")[0]["t"]
    assert left is None or left >= (T0 + timedelta(seconds=100 - retention_s)).isoformat()


@pytest.mark.parametrize(
    ("event_id", "source", "extra"),
    [
        ("e1", "nba_raw.nbac_schedule", {}),
        ('q"uo\\te', "s/ü", {"correlation_id": "c-ü"}),
        (
            "ünïcode-☃",
            "nba_raw.x",
            {"affected_entities": {"players": ["a"]}, "priority": "critical"},
        ),
    ],
)
def test_event_json_without_its_columns_round_trips(
    event_id: str, source: str, extra: dict[str, Any]
) -> None:
    """The stored event JSON leaves out event_id and source (columns) and reads back equal."""
    e = Event.model_validate({"event_id": event_id, "source": source, "game_date": DAY, **extra})
    for full in (e.model_dump_json(), e.model_dump_json(exclude_defaults=True)):
        stored = compact_event_json(e, full)
        assert len(stored) < len(full) and '"event_id"' not in stored
        assert Event.model_validate_json(event_from_row_json(stored, event_id, source)) == e
        assert event_from_row_json(full, event_id, source) == full  # old rows: unchanged

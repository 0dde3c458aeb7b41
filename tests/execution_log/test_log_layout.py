"""The SQLite log's layout: new logs keep ``decision_id`` unique without a unique index over
every row (a redelivered event's rows once, dispatch rows through a partial index); logs
created with the ``decision_id`` primary key are written and read the same way."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from logsupport import DAY, T0

from scoperouter.execution_log import SqliteExecutionLog, read_log
from scoperouter.execution_log.api import COMPLETIONS_TABLE, EVENTS_TABLE, LOG_TABLE
from scoperouter.execution_log.rows import COMPLETION_COLUMNS, EVENT_COLUMNS, LOG_COLUMNS
from scoperouter.execution_log.sqlite_schema import _coltype
from scoperouter.messages.models import Event, Trigger
from scoperouter.processor_registry.compiled import CompiledRegistry
from scoperouter.processor_registry.relations import InMemoryRelations
from scoperouter.router.planner import plan

# the table as logs created before this layout have it (decision_id the primary key)
OLD_DDL = (
    f"CREATE TABLE {LOG_TABLE} ("
    + ", ".join(
        f"{c} {_coltype(c)}" + (" PRIMARY KEY" if c == "decision_id" else "") for c in LOG_COLUMNS
    )
    + f"); CREATE TABLE {EVENTS_TABLE} ("
    + ", ".join(f"{c} TEXT" + (" PRIMARY KEY" if c == "event_id" else "") for c in EVENT_COLUMNS)
    + ");"
)


OLD_EVENT_INDEX = f"CREATE INDEX ix_log_event_id ON {LOG_TABLE} (event_id);"

# a log created by the first issue-16 layout: no primary key, dispatch ids unique by id alone
ISSUE16_DDL = (
    f"CREATE TABLE {LOG_TABLE} ("
    + ", ".join(f"{c} {_coltype(c)}" for c in LOG_COLUMNS)
    + f"); CREATE INDEX ix_log_event_id ON {LOG_TABLE} (event_id) WHERE kind = 'decision';"
    + f"CREATE UNIQUE INDEX ix_log_dispatch_id ON {LOG_TABLE} (decision_id) WHERE kind = 'dispatch';"
)
# a log created before ix_log_unlinked: every decision row's event id indexed
ISSUE16B_DDL = (
    f"CREATE TABLE {LOG_TABLE} ("
    + ", ".join(f"{c} {_coltype(c)}" for c in LOG_COLUMNS)
    + f"); CREATE INDEX ix_log_event_id ON {LOG_TABLE} (event_id) WHERE kind = 'decision';"
    + f"CREATE UNIQUE INDEX ix_log_dispatch_at ON {LOG_TABLE} (ifnull(decided_at, ''), decision_id)"
    + " WHERE kind = 'dispatch';"
)
LAYOUTS = {
    "new": "",
    "old": OLD_DDL + OLD_EVENT_INDEX,
    "issue16": ISSUE16_DDL,
    "issue16b": ISSUE16B_DDL,
}


def _create(path: Path, layout: str) -> None:
    """An empty log file as ``layout`` created it ('new': none yet)."""
    if LAYOUTS[layout]:
        with sqlite3.connect(path) as c:
            c.executescript(LAYOUTS[layout])


def _event(i: int) -> Event:
    return Event.model_validate(
        {"event_id": f"e{i}", "source": "nba_raw.nbac_injury_report", "game_date": DAY,
         "affected_entities": {"players": [f"t0{i}p03"]}, "changed_fields": ["injury_status"]}
    )  # fmt: skip


def _trigger(i: int, fired: bool = True) -> Trigger:
    return Trigger(
        trigger_id=f"t-{i}", processor="player_game_summary", game_date=DAY, start_date=DAY,
        end_date=DAY, scope="entities", entity_type="player", entity_ids=(f"t0{i}p03",),
        reason="entity_scope", caused_by=(f"e{i}",),
        fired_at=T0 + timedelta(seconds=10) if fired else None,
    )  # fmt: skip


def _play(
    path: Path,
    script: str,
    registry: CompiledRegistry,
    relations: InMemoryRelations,
    dispatch: Callable[[SqliteExecutionLog, str], None],
) -> set[str]:
    """Run ``script`` on the log at ``path``: ``||`` opens a new writer, ``|`` flushes,
    ``eN`` records event N's decisions, any other step is ``dispatch(log, step)``; the
    ids of the events recorded."""
    seen: set[str] = set()
    for part in script.split("||"):
        with SqliteExecutionLog(path) as log:
            for step in part.split():
                if step == "|":
                    log.flush()
                elif step[0] == "e":
                    e = _event(int(step[1:]))
                    seen.add(e.event_id)
                    log.record_decisions(
                        e, plan(registry, relations, e, DAY), T0,
                        registry=registry, relations=relations,
                    )  # fmt: skip
                else:
                    dispatch(log, step)
    return seen


def _count(path: Path, sql: str) -> int:
    with sqlite3.connect(path) as c:
        return int(c.execute(sql).fetchone()[0])


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize(
    "script",
    [
        "e1 e2 d1 d2 | e1 d1",  # a redelivery and a repeated outcome in the next flush
        "e1 e1 d1 d1 e2 d2",  # ... in the same flush
        "e1 d1 || e1 e2 d1 d2",  # ... after the log was closed and opened again
        "e1 e2 e3 d3 | d1 d2",  # no repeats: decisions flushed before their dispatches
        "e1 e2 n1 n2 | n1 || n2",  # repeated outcomes of triggers without a fired_at
    ],
)
def test_repeats_are_logged_once_in_either_layout(
    tmp_path: Path,
    registry: CompiledRegistry,
    relations: InMemoryRelations,
    layout: str,
    script: str,
) -> None:
    """A redelivered event's rows and a repeated dispatch outcome are stored once; each event's decision is linked to its trigger."""
    path = tmp_path / "l.sqlite"
    _create(path, layout)

    def dispatch(log: SqliteExecutionLog, step: str) -> None:
        log.record_dispatch(
            _trigger(int(step[1:]), fired=step[0] == "d"),
            status="ok",
            attempts=1,
            latency_ms=1.0,
            dispatched_at=T0,
        )

    seen = _play(path, script, registry, relations, dispatch)
    n = len(seen)
    assert _count(path, f"SELECT count(*) FROM {EVENTS_TABLE}") == n
    # each outcome once: a row of its own or folded into its decision row (fired_at set)
    assert (
        _count(
            path,
            f"SELECT count(*) FROM {LOG_TABLE} WHERE kind = 'dispatch' OR fired_at IS NOT NULL",
        )
        == n
    )
    data = read_log(path)
    assert len(data.dispatches) == n
    ids = [d.decision_id for d in data.decisions]
    assert len(ids) == len(set(ids)) and {d.event_id for d in data.decisions} == seen
    runs = [d for d in data.decisions if d.processor == "player_game_summary"]
    assert sorted(d.trigger_id or "" for d in runs) == sorted("t-" + e[1:] for e in seen)


NEW_INDEXES = {("ix_log_unlinked", 1), ("ix_log_dispatch_at", 1), ("ix_log_folded", 1)}


@pytest.mark.parametrize(("layout", "indexes"), [
    ("new", NEW_INDEXES),
    ("old", NEW_INDEXES | {("sqlite_autoindex_pipeline_execution_log_1", 0)}),  # migrated
    ("issue16", NEW_INDEXES),  # migrated
    ("issue16b", NEW_INDEXES),  # migrated
])  # fmt: skip
def test_a_new_log_has_no_unique_index_over_every_row(
    tmp_path: Path, layout: str, indexes: set[str]
) -> None:
    """Logs index unlinked run decisions' event ids and dispatch rows by fired_at and id (partial indexes; older event and id-only indexes are replaced); an old log keeps its primary key."""
    path = tmp_path / "l.sqlite"
    _create(path, layout)
    SqliteExecutionLog(path).close()
    with sqlite3.connect(path) as c:
        got = {(r[1], r[4]) for r in c.execute(f"PRAGMA index_list({LOG_TABLE})")}
    assert got == indexes


@pytest.mark.parametrize("events", [1, 3, 4, 5, 9])
def test_rows_are_inserted_in_chunks_without_losing_one(
    tmp_path: Path,
    registry: CompiledRegistry,
    relations: InMemoryRelations,
    monkeypatch: pytest.MonkeyPatch,
    events: int,
) -> None:
    """Multi-row inserts of 4 rows (the rest one by one): every event, decision and dispatch row is stored once."""
    import scoperouter.execution_log.sqlite_write as sqlite_write

    monkeypatch.setattr(sqlite_write, "ROWS_PER_INSERT", 4)
    path = tmp_path / "l.sqlite"
    want = 0
    with SqliteExecutionLog(path) as log:
        for i in range(events):
            e = _event(i)
            want += len(
                log.record_decisions(
                    e, plan(registry, relations, e, DAY), T0, registry=registry, relations=relations
                )
            )
            log.record_dispatch(
                _trigger(i), status="ok", attempts=1, latency_ms=1.0, dispatched_at=T0
            )
    data = read_log(path)
    assert (len(data.events), len(data.decisions), len(data.dispatches)) == (events, want, events)
    assert sorted(
        d.trigger_id or "" for d in data.decisions if d.processor == "player_game_summary"
    ) == sorted(f"t-{i}" for i in range(events))


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize(
    "script",
    [
        "e1 || r1 o1",  # after a restart: two outcomes of one trigger in one flush
        "e1 || r1 | o1",  # ... in two flushes (the second after the link)
        "e1 || r1 || o1",  # ... by two more writers
        "e1 | r1 o1",  # the same writer: complete rows, nothing to fill
        "e1 r1 || o1",  # the first outcome folded, the second filled from the folded row
    ],
)
def test_outcomes_logged_after_a_restart_are_filled_and_linked(
    tmp_path: Path,
    registry: CompiledRegistry,
    relations: InMemoryRelations,
    layout: str,
    script: str,
) -> None:
    """Every outcome of a trigger logged without its decisions gets their phase, granularity and universe; the decision is linked once, to that trigger."""
    path = tmp_path / "l.sqlite"
    _create(path, layout)
    outcomes = {"r": ("retry", 1), "o": ("ok", 2)}

    def dispatch(log: SqliteExecutionLog, step: str) -> None:
        status, attempts = outcomes[step[0]]
        log.record_dispatch(
            _trigger(int(step[1:])), status=status, attempts=attempts,
            latency_ms=1.0, dispatched_at=T0 + timedelta(seconds=attempts),
        )  # fmt: skip

    _play(path, script, registry, relations, dispatch)
    data = read_log(path)
    (run,) = [d for d in data.decisions if d.processor == "player_game_summary"]
    assert run.trigger_id == "t-1"
    got = [
        (d.dispatch_status, d.phase, d.granularity, d.entities_universe) for d in data.dispatches
    ]
    want = (run.phase, run.granularity, run.entities_universe)
    assert None not in want
    assert sorted(got) == sorted([("ok", *want), ("retry", *want)])


@pytest.mark.parametrize(
    ("layout", "keyed_by_id"),
    [("new", False), ("old", True), ("issue16", False), ("issue16b", False)],
)
def test_events_are_unique_by_date_and_id_not_by_a_random_key_over_the_whole_log(
    tmp_path: Path, layout: str, keyed_by_id: bool
) -> None:
    """New events tables keep an event once through a unique index on (date, id), whose inserts stay in the dates being written; a log created with the event_id primary key keeps it and gets no second index."""
    path = tmp_path / "l.sqlite"
    _create(path, layout)
    SqliteExecutionLog(path).close()
    with sqlite3.connect(path) as c:
        pk = [r[1] for r in c.execute(f"PRAGMA table_info({EVENTS_TABLE})") if r[5]]
        indexes = {r[1]: r[2] for r in c.execute(f"PRAGMA index_list({EVENTS_TABLE})")}
    if keyed_by_id:
        assert pk == ["event_id"] and "ix_events_once" not in indexes
    else:
        assert pk == [] and indexes == {"ix_events_once": 1}


def _range_event(i: int) -> Event:
    return Event.model_validate(
        {"event_id": f"r{i}", "source": "nba_raw.nbac_injury_report",
         "start_date": DAY, "end_date": DAY}
    )  # fmt: skip


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("reopen", [False, True])
def test_a_redelivered_event_of_a_date_range_is_logged_once(
    tmp_path: Path,
    registry: CompiledRegistry,
    relations: InMemoryRelations,
    layout: str,
    reopen: bool,
) -> None:
    """An event of a date range (no game_date) delivered twice, in one writer or after a reopen, has one event row and one set of decisions."""
    e = _range_event(1)
    ds = plan(registry, relations, e, DAY)

    def deliver(path: Path, times: int) -> tuple[int, int]:
        _create(path, layout)
        log = SqliteExecutionLog(path)
        for _ in range(times):
            log.record_decisions(e, ds, T0, registry=registry, relations=relations)
            log.flush()
            if reopen:
                log.close()
                log = SqliteExecutionLog(path)
        log.close()
        data = read_log(path)
        return len(data.events), len(data.decisions)

    once = deliver(tmp_path / "once.sqlite", 1)
    assert once[0] == 1 and once[1] > 0
    assert deliver(tmp_path / "twice.sqlite", 2) == once


# the completions table as logs created before stop 45 have it (completion_id the key)
OLD_COMPLETIONS_DDL = (
    f"CREATE TABLE {COMPLETIONS_TABLE} ("
    + ", ".join(
        f"{c} {_coltype(c)}" + (" PRIMARY KEY" if c == "completion_id" else "")
        for c in COMPLETION_COLUMNS
    )
    + ");"
)


@pytest.mark.parametrize("old", [False, True])
@pytest.mark.parametrize("reopen", [False, True])
def test_a_re_reported_completion_is_stored_once_in_either_layout(
    tmp_path: Path, old: bool, reopen: bool
) -> None:
    """A run reported twice (same trigger, processor, date) is one completion row, whether the completions table is keyed by (date, id) as new logs are or by the completion_id key of older logs, which it keeps."""
    path = tmp_path / "l.sqlite"
    if old:
        with sqlite3.connect(path) as c:
            c.executescript(OLD_COMPLETIONS_DDL)
    log = SqliteExecutionLog(path)
    for _ in range(2):
        log.record_completion(
            "player_game_summary", DAY, trigger_id="t-1",
            records_processed=3, entities_changed=2, duration_s=0.25,
        )  # fmt: skip
        log.flush()
        if reopen:
            log.close()
            log = SqliteExecutionLog(path)
    log.close()
    with sqlite3.connect(path) as c:
        (n,) = c.execute(f"SELECT count(*) FROM {COMPLETIONS_TABLE}").fetchone()
        pk = [r[1] for r in c.execute(f"PRAGMA table_info({COMPLETIONS_TABLE})") if r[5]]
        unique = {r[1] for r in c.execute(f"PRAGMA index_list({COMPLETIONS_TABLE})") if r[2]}
    assert n == 1
    if old:
        assert pk == ["completion_id"] and "ix_completions_once" not in unique
    else:
        assert pk == [] and unique == {"ix_completions_once"}


# a log created before the trigger reports table: its three tables as they are today
BEFORE_TRIGGER_REPORTS_DDL = (
    f"CREATE TABLE {LOG_TABLE} ({', '.join(f'{c} {_coltype(c)}' for c in LOG_COLUMNS)});"
    f"CREATE TABLE {EVENTS_TABLE} ({', '.join(f'{c} TEXT' for c in EVENT_COLUMNS)});"
    f"CREATE TABLE {COMPLETIONS_TABLE} ("
    + ", ".join(f"{c} {_coltype(c)}" for c in COMPLETION_COLUMNS)
    + ");"
)


@pytest.mark.parametrize(
    ("opened", "reported", "expected"),
    [
        pytest.param(False, None, {"bf-old": "success", "bf-new": None}, id="read-as-it-is"),
        pytest.param(True, None, {"bf-old": "success", "bf-new": None}, id="opened"),
        pytest.param(True, "no_data", {"bf-old": "success", "bf-new": "no_data"}, id="reported"),
        pytest.param(True, "failed", {"bf-old": "success", "bf-new": "failed"}, id="failed"),
    ],
)
def test_a_log_from_before_trigger_reports_answers_the_backfills_lookup(
    tmp_path: Path, opened: bool, reported: str | None, expected: dict[str, str | None]
) -> None:
    """An old log's completion row with a trigger id is still that run's success; opened by this version the log gains the trigger reports table, and a reported status is found."""
    from scoperouter.backfill.daemon_executor import log_completions
    from scoperouter.execution_log.api import TRIGGER_REPORTS_TABLE
    from scoperouter.execution_log.rows import completion_row

    path = tmp_path / "l.sqlite"
    row = completion_row("player_game_summary", DAY, trigger_id="bf-old", records_processed=3,
                         entities_changed=None, duration_s=0.0)  # fmt: skip
    with sqlite3.connect(path) as c:
        c.executescript(BEFORE_TRIGGER_REPORTS_DDL)
        c.execute(f"INSERT INTO {COMPLETIONS_TABLE} VALUES ({', '.join('?' * len(row))})", row)
    if opened:
        with SqliteExecutionLog(path) as log:
            if reported is not None:
                log.record_trigger_report("bf-new", reported, event_id="e-1")
    lookup = log_completions(path)
    assert {tid: lookup(tid) for tid in expected} == expected
    with sqlite3.connect(path) as c:
        have = {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert (TRIGGER_REPORTS_TABLE in have) is opened

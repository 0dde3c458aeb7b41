"""SQLite only: durability setting, schema versioning, ``open_state_store`` locations."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from scoperouter.state import open_state_store
from scoperouter.state.sqlite import SqliteStateStore


@pytest.mark.parametrize(("sync", "pragma"), [("full", 2), ("normal", 1)])
def test_synchronous_setting_is_applied(tmp_path: Path, sync: str, pragma: int) -> None:
    """The configured ``synchronous`` mode is the connection's (FULL=2, NORMAL=1)."""
    s = open_state_store(tmp_path / "s.db", sync=sync)
    assert isinstance(s, SqliteStateStore)
    assert s.pragma("synchronous") == pragma and s.pragma("journal_mode") == "wal"
    s.close()


@pytest.mark.parametrize("location", ["s.db", "sqlite:///{tmp}/s.db"])
def test_locations_open_sqlite(tmp_path: Path, location: str) -> None:
    """A path or a sqlite:/// URL opens the embedded store at that file."""
    s = open_state_store(location.format(tmp=tmp_path) if "{" in location else tmp_path / location)
    assert s.kind == "sqlite" and not s.shared and (tmp_path / "s.db").exists()
    s.close()


def test_newer_sqlite_schema_is_refused(tmp_path: Path) -> None:
    """A database at a newer schema version is refused, not written."""
    SqliteStateStore(tmp_path / "s.db").close()
    db = sqlite3.connect(tmp_path / "s.db")
    db.execute("PRAGMA user_version = 99")
    db.close()
    with pytest.raises(RuntimeError, match="schema version 99"):
        SqliteStateStore(tmp_path / "s.db")


def test_bad_sync_mode_is_rejected(tmp_path: Path) -> None:
    """Only full and normal are durability modes."""
    with pytest.raises(ValueError, match="sync"):
        open_state_store(tmp_path / "s.db", sync="off")


def test_wal_is_checkpointed_off_the_commit_path(tmp_path: Path) -> None:
    """Commits never checkpoint (auto-checkpoint off); the checkpointer thread copies
    committed rows into the database file itself."""
    import time

    from state_support import batch, contrib

    s = SqliteStateStore(tmp_path / "s.db", checkpoint_interval_s=0.02)
    assert s.pragma("wal_autocheckpoint") == 0
    s.ingest(batch(contrib("e1")), 1.0)
    runs = s._checkpointer.runs
    deadline = time.monotonic() + 30
    while s._checkpointer.runs < runs + 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    main_file_only = sqlite3.connect(f"file:{tmp_path / 's.db'}?immutable=1", uri=True)
    rows = main_file_only.execute(
        "SELECT event_id FROM sr_seen UNION ALL SELECT event_id FROM sr_seen_recent"
    ).fetchall()
    main_file_only.close()
    s.close()
    assert rows == [("e1",)]


def test_wal_stays_bounded_when_the_checkpointer_thread_falls_behind(tmp_path: Path) -> None:
    """Past four times the WAL limit the writer copies the rest after a commit, so the WAL
    starts over and is cut back: its file stays bounded although the thread's last pass
    ended long ago (stuck)."""
    import time

    from state_support import DAY, batch, contrib

    limit = 64 * 1024
    s = SqliteStateStore(tmp_path / "s.db", checkpoint_interval_s=3600, wal_limit_bytes=limit)
    s._checkpointer._passed = time.monotonic() - 3 * 3600  # a pass stuck for hours
    assert s.pragma("journal_size_limit") == limit
    for i in range(400):
        s.ingest(batch(contrib(f"e{i}", day=DAY - timedelta(days=i))), float(i))
    wal = (tmp_path / "s.db-wal").stat().st_size
    tail_runs = s._checkpointer.tail_runs
    s.close()
    assert tail_runs > 0 and wal < 5 * limit


def test_a_pass_that_leaves_a_tail_still_starts_the_wal_over(tmp_path: Path) -> None:
    """A checkpoint pass during which the writer committed leaves a tail, and SQLite starts
    the WAL over only once nothing is left: past the limit the writer copies that tail
    after its next commit, so the WAL starts over (and is cut back to the limit)."""
    from state_support import DAY, batch, contrib

    limit = 256 * 1024
    path = tmp_path / "s.db"
    wal = tmp_path / "s.db-wal"
    s = SqliteStateStore(path, checkpoint_interval_s=3600, wal_limit_bytes=limit)
    cp = s._checkpointer
    side = sqlite3.connect(path, isolation_level=None)  # the thread's connection
    reader = sqlite3.connect(path, isolation_level=None)
    day = iter(range(10_000))

    def ingest() -> None:
        k = next(day)
        s.ingest(batch(contrib(f"e{k}", day=DAY - timedelta(days=k))), float(k))

    while wal.stat().st_size <= limit:
        ingest()
    reader.execute("BEGIN")  # pins the pass's end before the next commit: the race
    reader.execute("SELECT count(*) FROM sr_seen").fetchone()
    ingest()
    cp.run_pass(side)
    reader.execute("COMMIT")
    ingest()  # copies the tail after its commit (the pass asked for it)
    ingest()  # starts the WAL over: the file is cut back to the limit
    size, tail_runs = wal.stat().st_size, cp.tail_runs
    side.close()
    reader.close()
    s.close()
    assert size <= limit and tail_runs == 1


def test_a_pass_past_a_quarter_of_the_limit_starts_the_wal_over(tmp_path: Path) -> None:
    """A pass finding more than a quarter of the limit in the WAL asks for the tail: the
    WAL starts over at its beginning, so the next commits write over it and its file
    stops growing (a commit that grows the file costs more)."""
    from state_support import DAY, batch, contrib

    limit = 1024 * 1024
    path = tmp_path / "s.db"
    wal = tmp_path / "s.db-wal"
    s = SqliteStateStore(path, checkpoint_interval_s=3600, wal_limit_bytes=limit)
    cp = s._checkpointer
    side = sqlite3.connect(path, isolation_level=None)
    day = iter(range(10_000))

    def ingest() -> None:
        k = next(day)
        s.ingest(batch(contrib(f"e{k}", day=DAY - timedelta(days=k))), float(k))

    while wal.stat().st_size <= limit // 4 + 64 * 1024:
        ingest()
    grown = wal.stat().st_size
    cp.run_pass(side)
    for _ in range(8):
        ingest()
    size, tail_runs = wal.stat().st_size, cp.tail_runs
    side.close()
    s.close()
    assert tail_runs == 1 and size == grown


@pytest.mark.parametrize(
    ("commits", "wait", "expected"),
    [
        (0, 0.4, 0.8),  # an idle WAL: back towards the interval
        (0, 0.8, 1.0),  # at most the interval
        (60, 1.0, 0.5),  # past the quarter of the limit: twice as often
        (60, 0.06, 0.05),  # never below MIN_INTERVAL_S
    ],
)
def test_passes_come_sooner_while_the_wal_fills_fast(
    tmp_path: Path, commits: int, wait: float, expected: float
) -> None:
    """The wait before the next pass halves when a pass finds more than a quarter of the
    limit in the WAL, and doubles back (up to the interval) when it finds little."""
    from state_support import DAY, batch, contrib

    path = tmp_path / "s.db"
    s = SqliteStateStore(path, checkpoint_interval_s=3600, wal_limit_bytes=1024 * 1024)
    cp = s._checkpointer
    # this test runs the passes: the thread's own loop stops first (had it not yet read its
    # wait, it would wait this test's short one and run a pass of its own in between)
    cp.stop()
    cp.interval_s = 1.0
    cp._wait = wait
    # never behind: no tail copy after a commit (on a loaded machine the 60 commits can take
    # longer than the wait, and the writer's copy would then empty the WAL this pass reads)
    cp._passed = float("inf")
    for k in range(commits):
        s.ingest(batch(contrib(f"e{k}", day=DAY - timedelta(days=k))), float(k))
    side = sqlite3.connect(path, isolation_level=None)
    cp.run_pass(side)
    side.close()
    s.close()
    assert cp._wait == pytest.approx(expected)


@pytest.mark.parametrize("version", [1, 2])
def test_an_older_database_is_migrated_and_keeps_its_rows(tmp_path: Path, version: int) -> None:
    """A database written by an older schema opens at the latest version: its outbox rows
    stay claimable and the unused index on the trigger id is gone (migration 3)."""
    from scoperouter.state.sqlite_schema import MIGRATIONS

    path = tmp_path / "s.db"
    db = sqlite3.connect(path, isolation_level=None)
    for script in MIGRATIONS[:version]:
        db.executescript(script)
    db.execute(
        "INSERT INTO sr_outbox(trigger_id, processor, body, status, created_at, available_at) "
        "VALUES ('t-1', 'p', ?, 'pending', 1.0, 1.0)",
        (b'{"trigger_id":"t-1"}',),
    )
    db.execute(f"PRAGMA user_version = {version}")
    db.close()
    s = SqliteStateStore(path)
    indexes = {r[0] for r in s._db.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    rows = s.outbox_rows()
    latest = s.pragma("user_version")
    s.close()
    assert latest == len(MIGRATIONS) and "sr_outbox_trigger" not in indexes
    assert [(r.trigger_id, r.status) for r in rows] == [("t-1", "pending")]


@pytest.mark.parametrize(("stuck_s", "copied"), [(0.0, False), (3 * 3600.0, True)])
def test_the_writer_stats_the_wal_only_when_the_thread_is_behind(
    tmp_path: Path, stuck_s: float, copied: bool
) -> None:
    """A WAL past four times its limit is copied by the writer only when the thread's last
    pass is overdue; while the thread keeps up, a commit does not look at the WAL file."""
    import time

    from state_support import DAY, batch, contrib

    limit = 16 * 1024
    s = SqliteStateStore(tmp_path / "s.db", checkpoint_interval_s=3600, wal_limit_bytes=limit)
    s._checkpointer._passed = time.monotonic() - stuck_s
    for i in range(40):
        s.ingest(batch(contrib(f"e{i}", day=DAY - timedelta(days=i))), float(i))
    tail_runs = s._checkpointer.tail_runs
    s.close()
    assert (tail_runs > 0) is copied


@pytest.mark.parametrize("fails_at", ["fold", "fired_triggers"])
def test_a_failing_ingest_leaves_nothing_and_the_next_one_commits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fails_at: str
) -> None:
    """An exception inside the ingest transaction rolls it back (no seen id, no window,
    no outbox row) and leaves the connection ready for the next transaction."""
    from state_support import batch, contrib

    import scoperouter.state.sqlite as sqlite_mod

    s = SqliteStateStore(tmp_path / "s.db")

    def boom(*_: object) -> None:
        raise RuntimeError("boom")

    with monkeypatch.context() as m:
        m.setattr(sqlite_mod, fails_at, boom)
        with pytest.raises(RuntimeError, match="boom"):
            s.ingest(batch(contrib("e1", critical=True)), 1.0)
    left = (s.seen_at("e1"), s.open_window_count(), len(s.outbox_rows()), s._db.in_transaction)
    s.ingest(batch(contrib("e2")), 2.0)
    after = s.seen_at("e2")
    s.close()
    assert left == (None, 0, 0, False) and after == 2.0

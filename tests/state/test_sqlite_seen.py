"""SQLite only: seen ids staged in sr_seen_recent and folded into sr_seen (state/sqlite_seen.py)
behave as one table of id -> first seen time, across folds, prunes, failed transactions,
reopening and a crash; the staged copy in memory stays equal to its table and under the bound."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from state_support import batch, contrib

import scoperouter.state.sqlite as sqlite_mod
from scoperouter.state.model import Admission, IngestBatch, Retention
from scoperouter.state.sqlite import SqliteStateStore
from scoperouter.state.sqlite_schema import MIGRATIONS

POOL = [f"e{i:02d}" for i in range(24)]
KEEP_ALL = 1e12  # a retention horizon that prunes nothing of another kind


def seen_only(*ids: str) -> IngestBatch:
    """A batch of admissions with no contributions (only their ids are remembered)."""
    return IngestBatch(admissions=tuple(Admission(i) for i in ids))


def open_store(path: Path, fold_at: int) -> SqliteStateStore:
    return SqliteStateStore(path, sync="normal", checkpoint_interval_s=3600, seen_fold_at=fold_at)


def tables(path: Path) -> tuple[dict[str, float], dict[str, float]]:
    """(sr_seen, sr_seen_recent) as committed, read on a connection of their own."""
    db = sqlite3.connect(path)
    try:
        big = dict(db.execute("SELECT event_id, seen_at FROM sr_seen").fetchall())
        recent = dict(db.execute("SELECT event_id, seen_at FROM sr_seen_recent").fetchall())
    finally:
        db.close()
    return big, recent


def crash_copy(path: Path, to: Path) -> Path:
    """The files a SIGKILL would leave (database and WAL, no checkpoint at close)."""
    to.mkdir()
    for suffix in ("", "-wal"):
        src = Path(f"{path}{suffix}")
        if src.exists():
            shutil.copyfile(src, to / (path.name + suffix))
    return to / path.name


def prune_keeping(seen_s: float) -> Retention:
    return Retention(
        seen_s=seen_s,
        done_s=KEEP_ALL,
        dead_s=None,
        completions_s=KEEP_ALL,
        letters_s=KEEP_ALL,
    )


OPS = st.one_of(
    st.tuples(st.just("ingest"), st.lists(st.sampled_from(POOL), min_size=1, max_size=9)),
    st.tuples(st.just("failed"), st.lists(st.sampled_from(POOL), min_size=1, max_size=5)),
    st.tuples(st.just("prune"), st.integers(0, 12)),
    st.tuples(st.just("reopen"), st.just(0)),
    st.tuples(st.just("crash"), st.just(0)),
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(fold_at=st.integers(1, 7), ops=st.lists(OPS, max_size=30))
def test_seen_ids_match_a_dict_of_first_times(
    tmp_path_factory: pytest.TempPathFactory, fold_at: int, ops: list[tuple[str, object]]
) -> None:
    """Batches, failed batches, prunes, reopen and crash act on a dict of first times."""
    base = tmp_path_factory.mktemp("seen")
    path = base / "s.db"
    s = open_store(path, fold_at)
    oracle: dict[str, float] = {}
    now = 0.0
    try:
        for step, (op, arg) in enumerate(ops):
            now += 1.0
            if op == "ingest":
                ids = list(arg)  # type: ignore[call-overload]
                res = s.ingest(seen_only(*ids), now)
                want_new: list[str] = []
                for e in ids:
                    if e not in oracle:
                        oracle[e] = now
                        want_new.append(e)
                assert list(res.accepted) == want_new
                assert len(res.accepted) + len(res.duplicates) == len(ids)
            elif op == "failed":
                with (
                    mock.patch.object(sqlite_mod, "fold", side_effect=RuntimeError("boom")),
                    pytest.raises(RuntimeError, match="boom"),
                ):
                    s.ingest(seen_only(*arg), now)  # type: ignore[misc]
            elif op == "prune":
                horizon = now - float(arg)  # type: ignore[arg-type]
                gone = [e for e, at in oracle.items() if at < horizon]
                assert s.prune(prune_keeping(float(arg)), now).seen == len(gone)  # type: ignore[arg-type]
                for e in gone:
                    del oracle[e]
            elif op == "reopen":
                s.close()
                s = open_store(path, fold_at)
            else:
                old, path = s, crash_copy(path, base / f"crash{step}")
                s = open_store(path, fold_at)
                old.close()
            assert {e: s.seen_at(e) for e in POOL} == {e: oracle.get(e) for e in POOL}
            big, recent = tables(path)
            assert big.keys().isdisjoint(recent) and {**big, **recent} == oracle
            assert s._recent.ids == recent and len(recent) < fold_at
    finally:
        s.close()


@pytest.mark.parametrize(
    ("fold_at", "between"),
    [
        (2, "none"),  # e1 and e2 fold together: e1 is in sr_seen
        (3, "none"),  # e1 and e2 still staged
        (2, "reopen"),
        (3, "reopen"),
        (3, "crash"),
        (2, "crash"),
    ],
)
def test_a_reseen_id_is_a_duplicate_across_a_fold_and_a_restart(
    tmp_path: Path, fold_at: int, between: str
) -> None:
    """An id seen before a fold or a restart is a duplicate with its first time."""
    path = tmp_path / "s.db"
    s = open_store(path, fold_at)
    s.ingest(batch(contrib("e1")), 1.0)
    s.ingest(seen_only("e2"), 2.0)
    if between == "reopen":
        s.close()
        s = open_store(path, fold_at)
    elif between == "crash":
        old, path = s, crash_copy(path, tmp_path / "after")
        s = open_store(path, fold_at)
        old.close()
    windows = s.open_window_count()
    res = s.ingest(batch(contrib("e1", ("b",)), contrib("e3")), 3.0)
    got = (res.accepted, res.duplicates, s.seen_at("e1"), s.open_window_count())
    s.close()
    assert got == (("e3",), ("e1",), 1.0, windows)


def v4_database(path: Path, seen: dict[str, float]) -> None:
    """A state file as scoperouter wrote it at schema version 4, holding ``seen``."""
    db = sqlite3.connect(path, isolation_level=None)
    for script in MIGRATIONS[:4]:
        for stmt in script.split(";"):
            if stmt.strip():
                db.execute(stmt)
    db.executemany("INSERT INTO sr_seen VALUES (?, ?)", seen.items())
    db.execute("PRAGMA user_version = 4")
    db.close()


def test_a_version_4_database_keeps_its_seen_ids(tmp_path: Path) -> None:
    """Migration 5 keeps v4's seen ids (duplicates, same times) and stages new ones."""
    path = tmp_path / "s.db"
    v4_database(path, {"old1": 5.0, "old2": 6.0})
    s = open_store(path, 4096)
    res = s.ingest(seen_only("old2", "new1"), 10.0)
    version = s.pragma("user_version")
    got = (res.accepted, res.duplicates, s.seen_at("old1"), s.seen_at("new1"))
    s.close()
    assert version == len(MIGRATIONS) == 9
    assert got == (("new1",), ("old2",), 5.0, 10.0)
    assert tables(path) == ({"old1": 5.0, "old2": 6.0}, {"new1": 10.0})


def test_migration_6_drops_the_outbox_index_no_statement_used(tmp_path: Path) -> None:
    """Migration 6 drops sr_outbox_finished; the done-row prune plans the same without it."""
    path = tmp_path / "s.db"
    v4_database(path, {})
    db = sqlite3.connect(path)
    prune = "EXPLAIN QUERY PLAN DELETE FROM sr_outbox WHERE status = 'done' AND finished_at < 1"
    before = [row[-1] for row in db.execute(prune)]
    db.close()
    open_store(path, 4096).close()
    db = sqlite3.connect(path)
    after = [row[-1] for row in db.execute(prune)]
    names = {n for (n,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    db.close()
    assert before == after == ["SCAN sr_outbox"]
    assert "sr_outbox_finished" not in names and "sr_outbox_available" in names


@pytest.mark.parametrize(("staged", "fold_at", "left"), [(5, 3, 0), (5, 6, 5), (2, 2, 0)])
def test_a_store_opened_with_fold_at_staged_ids_folds_them(
    tmp_path: Path, staged: int, fold_at: int, left: int
) -> None:
    """Opened with fold_at staged ids or more, the store folds them; they stay seen."""
    path = tmp_path / "s.db"
    s = open_store(path, 100)
    s.ingest(seen_only(*(f"e{i}" for i in range(staged))), 1.0)
    s.close()
    s = open_store(path, fold_at)
    in_memory = len(s._recent.ids)
    res = s.ingest(seen_only("e0"), 2.0)
    s.close()
    big, recent = tables(path)
    assert in_memory == len(recent) == left and len(big) == staged - left
    assert res.duplicates == ("e0",)


@pytest.mark.parametrize("fold_at", [1, 4096])
def test_legacy_import_is_refused_when_only_staged_ids_exist(tmp_path: Path, fold_at: int) -> None:
    """A store whose only rows are seen ids (staged or folded) is not empty: no import."""
    from scoperouter.state.legacy import LegacyState

    s = open_store(tmp_path / "s.db", fold_at)
    s.ingest(seen_only("e1"), 1.0)
    done = s.import_legacy(LegacyState((("x", 1.0),), (), (), ()), 2.0)
    got = (done, s.seen_at("x"))
    s.close()
    assert got == (False, None)


def test_fold_at_below_one_is_rejected(tmp_path: Path) -> None:
    """A fold bound below one id is a configuration error."""
    with pytest.raises(ValueError, match="fold_at"):
        open_store(tmp_path / "s.db", 0)

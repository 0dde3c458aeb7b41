"""The SQLite store's multi-row statements (state/sqlite_bulk.py) do what the one-row
statements do, row by row in order: same results, same rows left in the tables."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scoperouter.state.model import Attempted, Dead, Done, Mark, Released, RetryLater
from scoperouter.state.shared_sql import SQLITE
from scoperouter.state.sqlite_bulk import (
    MAX_ROWS,
    apply_marks,
    chunks,
    insert_outbox,
)
from scoperouter.state.sqlite_schema import migrate
from scoperouter.state.sqlite_seen import known_seen, stage, stage_unseen

OWNER = "me"


def fresh(rows: int) -> sqlite3.Connection:
    """A migrated in-memory store with ``rows`` outbox rows: leased to OWNER, then every
    third pending, every fifth done."""
    db = sqlite3.connect(":memory:", isolation_level=None)
    migrate(db)
    for i in range(1, rows + 1):
        status = "done" if i % 5 == 0 else "pending" if i % 3 == 0 else "leased"
        db.execute(
            "INSERT INTO sr_outbox(trigger_id, processor, body, status, created_at, "
            "available_at, lease_owner) VALUES (?, 'p', ?, ?, 1.0, 1.0, ?)",
            (f"t-{i}", f'{{"trigger_id":"t-{i}"}}'.encode(), status, OWNER),
        )
    return db


def table(db: sqlite3.Connection, name: str) -> list[Any]:
    return db.execute(f"SELECT * FROM {name} ORDER BY 1").fetchall()


@pytest.mark.parametrize(
    ("n", "sizes"),
    [
        (0, []),
        (1, [1]),
        (3, [3]),
        (20, [20]),
        (64, [64]),
        (65, [64, 1]),
        (150, [64, 64, 22]),
    ],
)
def test_rows_go_in_one_statement_per_max_rows(n: int, sizes: list[int]) -> None:
    """A batch goes in full chunks of MAX_ROWS rows, the rest in one statement."""
    assert chunks(n) == sizes and sum(sizes) == n and max(sizes, default=1) <= MAX_ROWS


MARKS = st.lists(
    st.one_of(
        st.builds(Done, st.integers(1, 40), st.integers(1, 3), st.floats(2, 3)),
        st.builds(Attempted, st.integers(1, 40), st.integers(1, 3), st.just("boom")),
        st.builds(RetryLater, st.integers(1, 40), st.integers(1, 3), st.just(9.0), st.just("e")),
        st.builds(Released, st.integers(1, 40)),
        st.builds(
            Dead, st.integers(1, 40), st.integers(1, 3), st.just(4.0), st.just("r"), st.just("e")
        ),
    ),
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(marks=MARKS, done_run=st.integers(0, 80))
def test_marks_in_bulk_equal_marks_one_by_one(marks: list[Mark], done_run: int) -> None:
    """Any sequence of marks (runs of Done, repeated rows, other kinds between) gives the
    same per-mark results and the same outbox and dead letters as Sql.mark one by one."""
    marks = [Done(i, 1, 5.0) for i in range(1, done_run + 1)] + marks
    one, bulk = fresh(80), fresh(80)
    want = [SQLITE.mark(one, m, OWNER) for m in marks]
    got = apply_marks(bulk, marks, OWNER)
    assert got == want
    assert table(bulk, "sr_outbox") == table(one, "sr_outbox")
    assert table(bulk, "sr_dead_letters") == table(one, "sr_dead_letters")


@settings(max_examples=150, deadline=None)
@given(
    ids=st.lists(st.integers(1, 90), unique=True, max_size=140),
    attempts=st.integers(1, 3),
    at=st.floats(2, 3),
)
def test_done_marks_alike_in_bulk_equal_marks_one_by_one(
    ids: list[int], attempts: int, at: float
) -> None:
    """Done marks of one attempts and time (a DoneMany's: one UPDATE by id, backed out by
    the status CHECK when a row is done or dead) over rows in any state or missing give
    the same per-mark results and outbox as one by one; the transaction stays open."""
    marks = [Done(i, attempts, at) for i in ids]
    one, bulk = fresh(80), fresh(80)
    want = [SQLITE.mark(one, m, OWNER) for m in marks]
    bulk.execute("BEGIN IMMEDIATE")
    got = apply_marks(bulk, marks, OWNER)
    assert bulk.in_transaction
    bulk.execute("COMMIT")
    assert got == want
    assert table(bulk, "sr_outbox") == table(one, "sr_outbox")


@settings(max_examples=150, deadline=None)
@given(
    marks=st.lists(
        st.builds(Done, st.integers(1, 90), st.sampled_from([1, 2]), st.sampled_from([5.0, 6.0])),
        unique_by=lambda m: m.item_id,
        max_size=140,
    )
)
def test_done_marks_in_few_groups_equal_marks_one_by_one(marks: list[Done]) -> None:
    """Done marks of a few (attempts, time) pairs (DoneManys: one UPDATE per pair and
    chunk) give the same per-mark results and outbox as one by one, in mark order."""
    one, bulk = fresh(80), fresh(80)
    want = [SQLITE.mark(one, m, OWNER) for m in marks]
    assert apply_marks(bulk, marks, OWNER) == want
    assert table(bulk, "sr_outbox") == table(one, "sr_outbox")


@pytest.mark.parametrize(
    ("ids", "want"),
    [
        ([1, 2, 3, 4], [True] * 4),  # leased and pending: one statement changes all
        ([1, 2, 81, 4], [True, True, False, True]),  # one missing: the others change
        ([81, 82], [False, False]),  # none there
        ([1, 5, 2], [True, False, True]),  # one done already: backed out, then by row
        ([5, 10], [False, False]),
    ],
)
def test_done_marks_alike_cases(ids: list[int], want: list[bool]) -> None:
    """Done marks of one attempts and time: per-mark results and rows as one by one."""
    marks = [Done(i, 2, 7.0) for i in ids]
    one, bulk = fresh(80), fresh(80)
    assert [SQLITE.mark(one, m, OWNER) for m in marks] == want
    assert apply_marks(bulk, marks, OWNER) == want
    assert table(bulk, "sr_outbox") == table(one, "sr_outbox")


@settings(max_examples=100, deadline=None)
@given(
    seen=st.sets(st.integers(0, 150), max_size=60),
    offered=st.sets(st.integers(0, 150), max_size=140),
)
def test_seen_lookup_and_staging_in_bulk_equal_one_by_one(
    seen: set[int], offered: set[int]
) -> None:
    """The ids sr_seen holds and the staged rows are those of one statement per id."""
    one, bulk = fresh(0), fresh(0)
    for db in (one, bulk):
        db.executemany("INSERT INTO sr_seen VALUES (?, 1.0)", [(f"e{i}",) for i in seen])
    ids = sorted(f"e{i}" for i in offered)
    want = {
        e for e in ids if one.execute("SELECT 1 FROM sr_seen WHERE event_id = ?", (e,)).fetchone()
    }
    for e in ids:
        one.execute("INSERT INTO sr_seen_recent(event_id, seen_at) VALUES (?, 2.0)", (e,))
    assert known_seen(bulk, ids) == want
    stage(bulk, ids, 2.0)
    assert table(bulk, "sr_seen_recent") == table(one, "sr_seen_recent")


@settings(max_examples=100, deadline=None)
@given(
    seen=st.sets(st.integers(0, 150), max_size=60),
    offered=st.sets(st.integers(0, 150), max_size=140),
)
def test_staging_the_unseen_in_bulk_equals_one_by_one(seen: set[int], offered: set[int]) -> None:
    """stage_unseen stages, and returns in order, exactly the ids sr_seen lacks (a lookup
    and an insert per id)."""
    one, bulk = fresh(0), fresh(0)
    for db in (one, bulk):
        db.executemany("INSERT INTO sr_seen VALUES (?, 1.0)", [(f"e{i}",) for i in seen])
    ids = sorted(f"e{i}" for i in offered)
    want = []
    for e in ids:
        if not one.execute("SELECT 1 FROM sr_seen WHERE event_id = ?", (e,)).fetchone():
            one.execute("INSERT INTO sr_seen_recent(event_id, seen_at) VALUES (?, 2.0)", (e,))
            want.append(e)
    assert stage_unseen(bulk, ids, 2.0) == want
    assert table(bulk, "sr_seen_recent") == table(one, "sr_seen_recent")


@pytest.mark.parametrize("n", [1, 2, 7, 8, 20, 33, 64, 65, 100, 130])
def test_outbox_ids_follow_the_rows(n: int) -> None:
    """Each fired trigger gets the id its row was numbered with, in order, after the
    rows already there (AUTOINCREMENT numbers a multi-row insert row by row)."""
    db = fresh(5)
    rows = [(f"t-new-{k}", "p", f"body-{k}".encode()) for k in range(n)]
    modes = [("live", "shadow", None)[k % 3] for k in range(n)]
    ids = insert_outbox(db, rows, modes, 1.0, OWNER, 61.0)
    stored = {
        r[0]: r[1:]
        for r in db.execute(
            "SELECT id, trigger_id, processor, body, mode, status, claims, attempts, "
            "created_at, available_at, lease_owner, lease_until FROM sr_outbox WHERE id > 5"
        ).fetchall()
    }
    assert ids == list(range(6, 6 + n))
    assert [stored[i] for i in ids] == [
        (*r, m, "leased", 1, 0, 1.0, 1.0, OWNER, 61.0) for r, m in zip(rows, modes, strict=True)
    ]

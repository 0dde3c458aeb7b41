"""The SQLite store prunes done outbox rows within the ids created before the done horizon
(a rowid range, no scan of the table): it deletes exactly what a scan would -- also after an
operator redrove dead rows later --, and when the clock stepped back, never a row a scan
would keep."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from state_support import batch, contrib

from scoperouter.state.model import Dead, Done, Retention, StoreOptions
from scoperouter.state.shared_sql import SQLITE
from scoperouter.state.sqlite import SqliteStateStore
from scoperouter.state.sqlite_outbox import created_before
from scoperouter.state.sqlite_schema import migrate

STATUSES = ("pending", "leased", "done", "dead")
NOW, DONE_S = 1000.0, 100.0
KEEP = Retention(seen_s=1e9, done_s=DONE_S, dead_s=None, completions_s=1e9, letters_s=1e9)
# (status, created_at, finished_at - created_at, deleted before the prune)
_row = st.tuples(st.sampled_from(STATUSES), st.floats(0, NOW), st.floats(0, 200), st.booleans())


def _store(rows: list[tuple[str, float, float, bool]]) -> sqlite3.Connection:
    """A migrated in-memory store holding ``rows`` in id order (gaps where deleted)."""
    db = sqlite3.connect(":memory:", isolation_level=None)
    migrate(db)
    for i, (status, created, took, gone) in enumerate(rows):
        finished = created + took if status in ("done", "dead") else None
        db.execute(
            "INSERT INTO sr_outbox(trigger_id, processor, body, status, created_at, "
            "available_at, finished_at) VALUES (?, 'p', x'00', ?, ?, ?, ?)",
            (f"t{i}", status, created, created, finished),
        )
        if gone:
            db.execute("DELETE FROM sr_outbox WHERE trigger_id = ?", (f"t{i}",))
    return db


def _left(db: sqlite3.Connection, bounded: bool) -> set[int]:
    upto = created_before(db, NOW - DONE_S) if bounded else None
    SQLITE.prune(db, KEEP, NOW, done_upto=upto)
    return {i for (i,) in db.execute("SELECT id FROM sr_outbox")}


@settings(max_examples=200, deadline=None)
@given(rows=st.lists(_row, max_size=40), monotone=st.booleans())
def test_bounded_prune_equals_a_scan(rows: list[tuple[str, float, float, bool]], monotone: bool) -> None:  # fmt: skip
    """Created in id order: the rowid-range prune leaves what the scan leaves; any order: a superset."""
    if monotone:
        created = sorted(r[1] for r in rows)
        rows = [(s, c, took, gone) for (s, _c, took, gone), c in zip(rows, created, strict=True)]
    scan, ranged = _left(_store(rows), False), _left(_store(rows), True)
    if monotone:
        assert ranged == scan
    else:
        assert ranged >= scan


def test_the_done_prune_reads_a_rowid_range() -> None:
    """The bounded done prune plans a rowid range search, not a scan of the outbox."""
    db = _store([])
    plan = db.execute("EXPLAIN QUERY PLAN " + SQLITE.q["prune_done_upto"], (5, 1.0, 9)).fetchall()
    assert [p[-1] for p in plan] == [  # the rows a range search picks (at most the limit)
        "SEARCH sr_outbox USING INTEGER PRIMARY KEY (rowid=?)",
        "LIST SUBQUERY 1",
        "SEARCH sr_outbox USING INTEGER PRIMARY KEY (rowid<?)",
    ]


def test_nothing_created_before_the_horizon_is_minus_one() -> None:
    """An empty outbox, or one of new rows only, has no id before the horizon."""
    assert created_before(_store([]), 10.0) == -1
    assert created_before(_store([("done", 50.0, 1.0, False)]), 10.0) == -1


T0, DAY_S = 1_700_000_000.0, 86400.0
NINE = "abcdefghi"  # one processor per fired row, in id order


@pytest.mark.parametrize(
    ("dead", "redrive"),
    [
        ("e", None),  # the middle row
        ("bh", None),  # two rows
        ("ce", "e"),  # one processor's of two dead rows: the other stays dead
        ("a", None),  # the first row
        ("i", None),  # the last row
    ],
)
def test_done_rows_are_pruned_whichever_rows_were_redriven(
    tmp_path: Path, dead: str, redrive: str | None
) -> None:
    """Every done row past the horizon is pruned after a redrive, and a redriven row keeps its trigger."""
    s = SqliteStateStore(tmp_path / "state.db", StoreOptions(owner="a"), sync="normal")
    try:
        cs = [contrib(f"e-{p}", processor=p, critical=True) for p in NINE]
        ids = {x.trigger.processor: x.item_id for x in s.ingest(batch(*cs), T0).fired}
        s.apply_marks(
            [Dead(ids[p], 3, T0, "max_attempts", "boom") if p in dead else Done(ids[p], 1, T0)
             for p in NINE]
        )  # fmt: skip
        trigger = {r.processor: r.trigger_id for r in s.outbox_rows()}
        later = T0 + 8 * DAY_S  # a week after every row finished
        assert s.redrive_dead(later, redrive) == (len(dead) if redrive is None else 1)
        keep = Retention(seen_s=1e9, done_s=7 * DAY_S, dead_s=None, completions_s=1e9)
        assert s.prune(keep, later).done == len(NINE) - len(dead)
        back = set(dead) if redrive is None else {redrive}
        left = {r.processor: (r.status, r.trigger_id) for r in s.outbox_rows()}
        assert left == {p: ("pending" if p in back else "dead", trigger[p]) for p in dead}
    finally:
        s.close()

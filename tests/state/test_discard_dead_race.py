"""An operator's ``discard_dead`` next to a replica that gives up on a row (a ``Dead`` mark)
or redrives, with the other replica's write run deterministically BETWEEN the discard's
statements (a hook on its connection, no timing). Invariant: every ``trigger`` dead letter
left belongs to an outbox row that is still there and dead -- never one whose row the
discard deleted (an orphan: kept forever, the daemon prunes no dead letters) -- and every
row the discard counts is gone with its letter.

PostgreSQL (READ COMMITTED, two connections = two replicas): each statement sees the rows
committed before it started, so a row marked dead between the statements must be handled
by the statement that deletes it. SQLite: the discard is one ``BEGIN IMMEDIATE``
transaction, so no other connection (the daemon, next to ``scoperouter outbox discard``)
can write between its statements at all."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from state_support import StoreFactory, batch, contrib

from scoperouter.state import StateStore
from scoperouter.state.model import Dead, StoreOptions
from scoperouter.state.shared_sql import Sql

T0 = 1_700_000_000.0


class _Hooked:
    """A connection whose ``after``-th statement is followed by ``hook()`` (once)."""

    def __init__(self, db: Any, after: int, hook: Callable[[], object]) -> None:
        self._db, self._left, self._hook = db, after, hook

    def execute(self, sql: Any, params: Any = ()) -> Any:
        cur = self._db.execute(sql, params)
        self._left -= 1
        if self._left == 0:
            self._hook()
        return cur


@contextmanager
def _between_statements(
    monkeypatch: pytest.MonkeyPatch, after: int, hook: Callable[[], object]
) -> Iterator[list[int]]:
    """Run ``hook`` after the ``after``-th statement of the next ``discard_dead``; yields
    a list that gets how many statements the discard ran."""
    real = Sql.discard_dead
    ran: list[int] = []

    def discard_dead(self: Sql, db: Any, processor: str | None) -> int:
        hooked = _Hooked(db, after, hook)
        try:
            return real(self, hooked, processor)
        finally:
            ran.append(after - hooked._left)

    monkeypatch.setattr(Sql, "discard_dead", discard_dead)
    yield ran


def _two_rows(store: StateStore) -> tuple[int, int]:
    """Two fired triggers leased to ``store`` (one per processor): (first, second)."""
    r = store.ingest(
        batch(
            contrib("e1", processor="p", critical=True), contrib("e2", processor="q", critical=True)
        ),
        T0,
    )
    first, second = sorted(x.item_id for x in r.fired)
    return first, second


def _consistent(store: StateStore) -> dict[int, str]:
    """The outbox's statuses and trigger letters; asserts no letter without its dead row."""
    status: dict[int, str] = {row.item_id: row.status for row in store.outbox_rows()}
    letters = {d.ref for d in store.dead_letters() if d.kind == "trigger"}
    orphans = {ref for ref in letters if status.get(int(str(ref).rsplit("#", 1)[1])) != "dead"}
    assert not orphans, f"dead letters without their dead row: {orphans} (rows {status})"
    dead = {i for i, s in status.items() if s == "dead"}
    assert len(letters) == len(dead), (letters, status)  # every dead row kept its letter
    return status


@pytest.mark.parametrize("after", [1, 2])
def test_row_dying_between_the_discards_statements_leaves_no_orphan_letter(
    make_store: StoreFactory, monkeypatch: pytest.MonkeyPatch, after: int
) -> None:
    """A replica's Dead mark committed between two statements of a discard: the row is
    discarded with its letter, or stays dead with it -- its letter never outlives it."""
    a, op = make_store("a"), make_store("op")
    first, second = _two_rows(a)
    assert a.apply_marks([Dead(first, 3, T0, "max_attempts", "boom")]) == (True,)
    if a.kind == "sqlite":
        other = sqlite3.connect(str(Path(a.path)), timeout=0)  # type: ignore[attr-defined]
        refused: list[str] = []

        def hook() -> None:  # another process's writer: it cannot get in
            try:
                other.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                refused.append(str(exc))
            else:
                other.execute("ROLLBACK")

        with _between_statements(monkeypatch, after, hook) as ran:
            n = op.discard_dead()
        other.close()
        assert ran and ran[0] >= after and refused == ["database is locked"], (ran, refused)
        assert a.apply_marks([Dead(second, 3, T0 + 1, "max_attempts", "boom")]) == (True,)
        status = _consistent(a)
        assert (n, set(status)) == (1, {second})
        return
    with _between_statements(
        monkeypatch,
        after,
        lambda: a.apply_marks([Dead(second, 3, T0 + 1, "max_attempts", "boom")]),
    ) as ran:
        n = op.discard_dead()
    assert ran and ran[-1] >= after, f"the discard ran {ran} statements, the hook never ran"
    status = _consistent(a)
    assert first not in status
    assert n == 2 - len(status)  # what it counts is what went


def test_redrive_racing_a_discard_leaves_each_row_whole(
    pg_location: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL: a replica's redrive started between the discard's statements (it waits
    on the discard's locks): the row ends discarded with its letter, or pending without
    one -- never pending with a letter, nor a letter without its row -- and neither
    transaction deadlocks (each only waits for the other; no retry, no stall of
    ``deadlock_timeout``)."""
    import psycopg
    from psycopg import errors as pg_errors

    from scoperouter.state.postgres import PostgresStateStore

    deadlocks: list[str] = []
    real_run = PostgresStateStore._run

    def run(self: PostgresStateStore, fn: Callable[[Any], Any]) -> Any:
        def counted(c: Any) -> Any:
            try:
                return fn(c)
            except pg_errors.DeadlockDetected:  # _run retries it: count it here
                deadlocks.append(self.options.owner)
                raise

        return real_run(self, counted)

    monkeypatch.setattr(PostgresStateStore, "_run", run)

    a = PostgresStateStore(pg_location, StoreOptions(owner="a"))
    op = PostgresStateStore(pg_location, StoreOptions(owner="op"))

    first, _second = _two_rows(a)
    a.apply_marks([Dead(first, 3, T0, "max_attempts", "boom")])
    got: list[int] = []
    errors: list[BaseException] = []

    def redrive() -> None:
        try:
            got.append(a.redrive_dead(T0 + 2))
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    t = threading.Thread(target=redrive)

    def hook() -> None:
        if t.ident is not None:  # the discard retried (a deadlock): the redrive is out
            return
        t.start()
        deadline = time.monotonic() + 20
        with psycopg.connect(pg_location, autocommit=True) as c:
            while time.monotonic() < deadline:  # until the redrive waits on our locks
                row = c.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                ).fetchone()
                if row is not None and row[0] > 0:
                    return
                time.sleep(0.02)
        raise AssertionError("the redrive never waited for the discard")

    with _between_statements(monkeypatch, 1, hook):
        n = op.discard_dead()
    t.join(timeout=30)
    assert not errors and got, (errors, got)
    assert deadlocks == []
    status = _consistent(a)
    assert n + got[0] == 1  # the row went one way
    assert (first in status) == (got[0] == 1)
    assert first not in status or status[first] == "pending"
    a.close()
    op.close()

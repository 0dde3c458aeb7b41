"""``RedriveLane`` applied more than once -- a retried transaction, marks put back and
written again, a transaction lost in a crash then written anew -- leaves the outbox as one
application does. Invariant (both stores): it only moves ``available_at`` of the
processor's pending rows back to its time (never forward), inserts and deletes no row, and
touches no leased, finished or other processor's row; so no trigger is duplicated or
dropped however often, or whether at all, it is applied."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import astuple
from typing import Any

import pytest
from state_support import StoreFactory, batch, contrib

from scoperouter.state import StateStore
from scoperouter.state.model import Dead, Done, Mark, RedriveLane, RetryLater

T0 = 1_700_000_000.0
AT = T0 + 10  # the redrive's time


class _Crash(Exception):
    """The process died before the transaction committed."""


def _outbox(store: StateStore) -> list[tuple[Any, ...]]:
    """The outbox as comparable rows (every field)."""
    return [astuple(r) for r in store.outbox_rows()]


def _lost_transaction(store: StateStore, marks: list[Mark]) -> None:
    """``marks`` written in a transaction that never commits (a crash before COMMIT)."""
    from scoperouter.state.shared_sql import PG, SQLITE

    def write(db: Any) -> None:
        for m in marks:
            (PG if store.kind == "postgresql" else SQLITE).mark(db, m, store.options.owner)
        raise _Crash

    with pytest.raises(_Crash):
        if store.kind == "sqlite":
            with store._tx() as db:  # type: ignore[attr-defined]
                write(db)
        else:
            store._run(write)  # type: ignore[attr-defined]


def _retried(store: StateStore, marks: list[Mark]) -> None:
    """``marks`` written by a transaction that fails once after writing them and is run
    again (PostgreSQL retries a serialization failure; SQLite: the caller writes again)."""
    if store.kind == "sqlite":
        _lost_transaction(store, marks)
        store.apply_marks(marks)
        return
    from psycopg import errors as pg_errors

    from scoperouter.state.shared_sql import PG

    tries: list[int] = []

    def write(db: Any) -> None:
        for m in marks:
            PG.mark(db, m, store.options.owner)
        tries.append(1)
        if len(tries) == 1:
            raise pg_errors.SerializationFailure("retry me")

    store._run(write)  # type: ignore[attr-defined]
    assert len(tries) == 2


def _backlog(store: StateStore) -> None:
    """Rows of processor ``p``: pending due later (two), pending due already, leased, done,
    dead; of ``q``: pending due later."""
    fired = store.ingest(
        batch(*(contrib(f"e{k}", processor="pq"[k == 6], critical=True) for k in range(7))),
        T0,
    ).fired
    by_id = sorted(x.item_id for x in fired)
    later1, later2, due, _leased, done, dead, q_later = by_id
    assert (
        store.apply_marks(
            [
                RetryLater(later1, 1, T0 + 300, "down"),
                RetryLater(later2, 2, T0 + 600, "down"),
                RetryLater(due, 1, T0 + 5, "down"),
                Done(done, 1, T0 + 1),
                Dead(dead, 3, T0 + 1, "max_attempts", "down"),
                RetryLater(q_later, 1, T0 + 300, "down"),
            ]
        )
        == (True,) * 6
    )


def _lost_then_written(store: StateStore, marks: list[Mark]) -> None:
    """A transaction lost (a crash before COMMIT), the marks written again after it."""
    _lost_transaction(store, marks)
    store.apply_marks(marks)


WAYS: dict[str, Callable[[StateStore, list[Mark]], object]] = {
    "twice": lambda s, m: (s.apply_marks(m), s.apply_marks(m)),
    "retried_transaction": _retried,
    "lost_then_written": _lost_then_written,
    "in_one_transaction_twice": lambda s, m: s.apply_marks(m + m),
}


@pytest.mark.parametrize("way", sorted(WAYS))
def test_redrive_lane_applied_again_is_applied_once(make_store: StoreFactory, way: str) -> None:
    """Applied again in any of these ways, the outbox equals one application's."""
    s = make_store("a")
    _backlog(s)
    before = _outbox(s)
    marks: list[Mark] = [RedriveLane("p", AT)]
    assert s.apply_marks(marks) == (True,)
    once = _outbox(s)
    changed = [b for a, b in zip(before, once, strict=True) if a != b]
    assert [(r[3], r[7]) for r in changed] == [("pending", AT)] * 2  # p's two later rows
    WAYS[way](s, marks)
    assert _outbox(s) == once
    assert s.apply_marks(marks) == (False,)  # nothing left to change


def test_lost_redrive_drops_nothing(make_store: StoreFactory) -> None:
    """A RedriveLane lost with its transaction: every row is as before, still pending at
    its own time (it is only later than the redrive would have made it)."""
    s = make_store("a")
    _backlog(s)
    before = _outbox(s)
    _lost_transaction(s, [RedriveLane("p", AT)])
    assert _outbox(s) == before

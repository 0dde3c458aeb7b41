"""Edges of the state-store contract (SQLite and PostgreSQL): done rows pruned past a redriven
row, dedupe and the next deadline store-wide with two stores on one location, a stale
owner's Dead mark, a NUL in a mark's error or a dead letter's text, the largest
max_entities the registry takes, ping on a store that takes no write."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest
from state_support import StoreFactory, batch, contrib

from scoperouter.processor_registry.model_base import INT4_MAX
from scoperouter.state.api import StateStore
from scoperouter.state.model import (
    Attempted,
    Dead,
    DeadLetterIn,
    Done,
    IngestBatch,
    Mark,
    Retention,
    RetryLater,
)

T0 = 1_700_000_000.0
DAY_S = 86400.0
_EVENTS = itertools.count()


def _fire(s: StateStore, processors: str, at: float = T0) -> list[int]:
    """One critical event per processor letter (fires at once); the outbox ids, in order."""
    cs = [contrib(f"r6e{next(_EVENTS)}", processor=p, critical=True) for p in processors]
    return [x.item_id for x in s.ingest(batch(*cs), at).fired]


def test_prune_deletes_old_done_rows_past_a_redriven_row(make_store: StoreFactory) -> None:
    """Every done row older than the horizon is pruned, also those past a row redriven later."""
    s = make_store("a")
    ids = _fire(s, "abcdefghi")  # nine rows fired at T0, ids in order
    middle = ids[4]
    s.apply_marks([Done(i, 1, T0) for i in ids if i != middle])
    s.apply_marks([Dead(middle, 3, T0, "max_attempts", "boom")])
    later = T0 + 8 * DAY_S
    assert s.redrive_dead(later) == 1  # an operator redrives it a week later
    keep = Retention(seen_s=1e9, done_s=7 * DAY_S, dead_s=None, completions_s=1e9)
    p = s.prune(keep, later)
    assert p.done == 8
    [left] = s.outbox_rows()  # the redriven row (its id is not promised: a new one on SQLite)
    assert left.status == "pending" and left.available_at == later


def test_an_id_staged_by_another_store_on_the_location_is_a_duplicate(
    make_store: StoreFactory,
) -> None:
    """An event id one store on the location admitted is a duplicate for another."""
    a, b = make_store("a"), make_store("b")
    assert a.ingest(batch(contrib("e1", ("x",))), T0).accepted == ("e1",)
    r = b.ingest(batch(contrib("e1", ("y",))), T0 + 1)
    assert (r.accepted, r.duplicates) == ((), ("e1",))
    [w] = a.open_windows()
    assert w.entity_ids == frozenset({"x"}) and b.seen_at("e1") == T0


def test_next_deadline_of_an_ingest_is_store_wide(make_store: StoreFactory) -> None:
    """An ingest's next deadline counts windows another store on the location opened."""
    a, b = make_store("a"), make_store("b")
    assert a.ingest(batch(contrib("e1", processor="p", quiet=50.0)), T0).next_deadline == T0 + 50
    assert b.ingest(batch(contrib("e2", processor="q", quiet=5.0)), T0).next_deadline == T0 + 5
    r = a.ingest(batch(contrib("e1", processor="p")), T0 + 1)  # a duplicate: no window written
    assert r.duplicates == ("e1",)
    assert r.next_deadline == T0 + 5


def test_stale_owner_cannot_kill_a_reclaimed_row(make_store: StoreFactory) -> None:
    """A replica whose lease was rescued and reclaimed cannot mark the row dead."""
    a, b = make_store("a", lease_s=10), make_store("b", lease_s=10)
    [i] = _fire(a, "p")
    assert b.rescue_expired(T0 + 11) == 1
    [got] = b.claim(T0 + 11)
    assert got.item_id == i
    assert a.apply_marks([Dead(i, 5, T0 + 12, "max_attempts", "gave up")]) == (False,)
    [row] = b.outbox_rows()
    assert (row.status, row.lease_owner) == ("leased", "b")
    assert [d for d in b.dead_letters() if d.kind == "trigger"] == []
    assert b.apply_marks([Done(i, 1, T0 + 13)]) == (True,)
    assert b.outbox_rows()[0].status == "done"


# a target's error answer as received (runtime.http_sink keeps its text), and as stored
NUL_ERROR = "HTTP 500: upstream\x00\x00 junk"
NUL_KEPT = "HTTP 500: upstream\\x00\\x00 junk"


@pytest.mark.parametrize(
    ("mark", "status", "letters"),
    [
        (lambda i: Attempted(i, 1, NUL_ERROR), "leased", []),
        (lambda i: RetryLater(i, 1, T0 + 5, NUL_ERROR), "pending", []),
        (lambda i: Dead(i, 1, T0 + 1, "permanent_error", NUL_ERROR), "dead", [NUL_KEPT]),
    ],
    ids=["attempted", "retry", "dead"],
)
def test_a_nul_in_a_marks_error_is_stored_escaped(
    make_store: StoreFactory, mark: Callable[[int], Mark], status: str, letters: list[str]
) -> None:
    """A mark's error holding a NUL is stored with it escaped, in the batch that carries it."""
    s = make_store("a")
    [i] = _fire(s, "p")  # leased to "a"
    r = s.ingest(IngestBatch(admissions=batch(contrib("r6nul")).admissions, marks=(mark(i),)), T0)
    assert (r.accepted, r.marked) == (("r6nul",), (True,))
    [row] = s.outbox_rows()
    assert (row.status, row.error) == (status, NUL_KEPT)
    assert [d.detail for d in s.dead_letters()] == letters


@pytest.mark.parametrize(
    ("letter", "stored"),
    [
        (("sub#m\x00", "invalid_field", "d"), ("sub#m\\x00", "invalid_field", "d")),
        (("m1", "bad\x00reason", None), ("m1", "bad\\x00reason", None)),
        (("m1", "invalid_field", "got 'x\x00y'"), ("m1", "invalid_field", "got 'x\\x00y'")),
    ],
    ids=["ref", "reason", "detail"],
)
def test_a_nul_in_a_dead_letters_text_is_stored_escaped(
    make_store: StoreFactory,
    letter: tuple[str, str, str | None],
    stored: tuple[str, str, str | None],
) -> None:
    """A dead letter's ref, reason or detail holding a NUL is stored with it escaped, once."""
    s = make_store("a")
    d = DeadLetterIn("event", *letter, b"payload", T0)
    assert s.dead_letter(d) is True
    assert s.dead_letter(d) is False  # a redelivery finds it under the escaped ref
    [got] = s.dead_letters()
    assert (got.ref, got.reason, got.detail) == stored


def test_the_registrys_largest_max_entities_is_stored(make_store: StoreFactory) -> None:
    """A window's max_entities at the registry's bound (2^31 - 1) is written and re-applied."""
    s = make_store("a")
    assert s.ingest(batch(contrib("r6big", max_entities=INT4_MAX)), T0).accepted == ("r6big",)
    assert s.apply_limits({"p": INT4_MAX - 1}, 3) == 1
    assert [w.max_entities for w in s.open_windows()] == [INT4_MAX - 1]


def _take_no_writes(s: StateStore) -> None:
    """From now on ``s``'s connection takes no write: as on a PostgreSQL standby (or a
    server with default_transaction_read_only), a SQLite file that is read-only."""
    store: Any = s
    if s.kind == "postgresql":
        store._conn.execute("SET default_transaction_read_only = on")
    else:
        store._db.execute("PRAGMA query_only = ON")


def test_ping_raises_when_the_store_takes_no_write(make_store: StoreFactory) -> None:
    """ping (the readiness probe) raises when the store cannot take a write, as ingest does."""
    s = make_store("a")
    s.ping()
    _take_no_writes(s)
    with pytest.raises(Exception, match=r"read-only|readonly"):
        s.ingest(batch(contrib("r6ro")), T0)
    with pytest.raises(Exception, match=r"read-only|readonly"):
        s.ping()

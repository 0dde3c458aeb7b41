"""PostgreSQL only: deterministic interleavings of one replica's transaction with another
replica's (held open on a raw connection): dedupe of one event id, a connection lost
while idle (no call fails) or in a call (that call fails whole), a deadlock between a
rescue and a replica's marks. Timing only drives the interleavings; nothing asserts on
it."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from state_support import batch, contrib, need_psycopg, raw_connection

need_psycopg()

import psycopg  # noqa: E402

from scoperouter.state.model import (  # noqa: E402
    Attempted,
    IngestBatch,
    LaneClaim,
    Released,
    Retention,
)
from scoperouter.state.pg_session import LostAtBegin  # noqa: E402
from scoperouter.state.postgres import PostgresStateStore  # noqa: E402

T0 = 1_700_000_000.0


def _waiting_pids(dsn: str, n: int = 1, timeout: float = 20.0) -> list[int]:
    """The pids of the store connections waiting on a lock, once ``n`` of them wait."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(dsn, autocommit=True) as c:
        while time.monotonic() < deadline:
            rows = c.execute(
                "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND application_name = 'scoperouter' ORDER BY pid"
            ).fetchall()
            if len(rows) >= n:
                return [int(r[0]) for r in rows]
            time.sleep(0.02)
    raise AssertionError("no store transaction waited on a lock")


@pytest.mark.parametrize(
    ("first_commits", "accepted", "duplicates"),
    [
        (True, ("e2",), ("e1",)),  # the first replica's commit wins: e1 counted there
        (False, ("e1", "e2"), ()),  # the first replica died before its commit: e1 is new here
    ],
)
def test_same_event_on_two_replicas_counts_once(
    pg_location: str,
    replicas: Callable[..., PostgresStateStore],
    first_commits: bool,
    accepted: tuple[str, ...],
    duplicates: tuple[str, ...],
) -> None:
    """An id another replica's open transaction inserted: the ingest waits for its outcome."""
    b = replicas("b")
    first = raw_connection(pg_location)
    pool = ThreadPoolExecutor(1)
    tx = first.transaction()
    tx.__enter__()
    first.execute("INSERT INTO sr_seen(event_id, seen_at) VALUES ('e1', %s)", (T0,))
    fut = pool.submit(b.ingest, batch(contrib("e1", ("x",)), contrib("e2", ("y",))), T0 + 1)
    _waiting_pids(pg_location)
    assert not fut.done()
    if first_commits:
        tx.__exit__(None, None, None)
    else:
        tx.__exit__(RuntimeError, RuntimeError("killed"), None)
    result = fut.result(timeout=20)
    pool.shutdown()
    first.close()
    assert (result.accepted, result.duplicates) == (accepted, duplicates)
    [w] = b.open_windows()
    assert w.caused_by == set(accepted)
    assert b.seen_at("e1") == (T0 if first_commits else T0 + 1)


def test_connection_lost_mid_ingest_applies_nothing_and_reconnects(
    pg_location: str, replicas: Callable[..., PostgresStateStore]
) -> None:
    """The ingest's backend killed while it waits on a window row: the batch fails whole
    (no seen id, no merge), and the store's next call reconnects and takes it."""
    b = replicas("b")
    b.ingest(batch(contrib("e0", ("x",))), T0)
    hold = raw_connection(pg_location)
    pool = ThreadPoolExecutor(1)
    with hold.transaction():
        hold.execute("SELECT 1 FROM sr_windows FOR UPDATE").fetchall()
        fut = pool.submit(b.ingest, batch(contrib("e1", ("y",)), contrib("e2", ("z",))), T0 + 1)
        [pid] = _waiting_pids(pg_location)
        hold.execute("SELECT pg_terminate_backend(%s)", (pid,))
        with pytest.raises(psycopg.OperationalError):
            fut.result(timeout=20)
        assert (hold.execute("SELECT count(*) FROM sr_seen").fetchone() or (0,))[0] == 1
    pool.shutdown()
    hold.close()
    assert b.seen_at("e1") is None and b.seen_at("e2") is None
    [w] = b.open_windows()
    assert (w.caused_by, w.entity_ids) == (frozenset({"e0"}), frozenset({"x"}))
    again = b.ingest(batch(contrib("e1", ("y",)), contrib("e2", ("z",))), T0 + 1)
    assert again.accepted == ("e1", "e2")
    [w] = b.open_windows()
    assert (w.caused_by, w.entity_ids) == (
        frozenset({"e0", "e1", "e2"}),
        frozenset({"x", "y", "z"}),
    )


@pytest.mark.parametrize("retries", [1, PostgresStateStore.retries])
def test_rescue_deadlocked_with_a_replicas_marks_is_retried(
    pg_location: str, replicas: Callable[..., PostgresStateStore], retries: int
) -> None:
    """A rescue and a transaction marking the same two rows in the other order deadlock;
    the rescue (the victim: it waited first) is retried whole; without a retry the
    deadlock surfaces (the interleaving is real) and nothing was rescued."""
    a = replicas("a", lease_s=5.0)
    b = replicas("b")
    b.retries = retries
    fired = a.ingest(
        batch(
            contrib("e1", processor="p1", critical=True),
            contrib("e2", processor="p2", critical=True),
        ),
        T0,
    ).fired
    r1, r2 = sorted(x.item_id for x in fired)
    marks = raw_connection(pg_location)
    pool = ThreadPoolExecutor(1)
    with marks.transaction():
        # replica a's marks, in arrival order: r2 first
        marks.execute("UPDATE sr_outbox SET attempts = 1 WHERE id = %s", (r2,))
        fut = pool.submit(b.rescue_expired, T0 + 100)
        _waiting_pids(pg_location)  # the rescue took r1 (or nothing yet) and waits on r2
        try:
            marks.execute("UPDATE sr_outbox SET attempts = 1 WHERE id = %s", (r1,))
        except psycopg.errors.DeadlockDetected:  # pragma: no cover - the rescue waited first
            pytest.fail("the rescue, waiting first, should have been the deadlock's victim")
        if retries == 1:
            with pytest.raises(psycopg.errors.DeadlockDetected):
                fut.result(timeout=30)
    if retries == 1:
        pool.shutdown()
        marks.close()
        assert {r.status for r in b.outbox_rows()} == {"leased"}
        return
    rescued = fut.result(timeout=30)
    pool.shutdown()
    marks.close()
    assert rescued == 2
    rows = {r.item_id: r for r in b.outbox_rows()}
    assert [(rows[i].status, rows[i].attempts, rows[i].rescues) for i in (r1, r2)] == [
        ("pending", 1, 1),
        ("pending", 1, 1),
    ]
    assert a.apply_marks([Attempted(r1, 2, "late")]) == (False,)


def test_two_replicas_pruning_at_once_delete_each_row_once(
    pg_location: str, replicas: Callable[..., PostgresStateStore]
) -> None:
    """A prune waiting on rows another replica's prune deletes: no error, every old seen id
    gone exactly once, the recent one kept."""
    a, b = replicas("a"), replicas("b")
    a.ingest(batch(*(contrib(f"e{i}", processor=f"p{i}") for i in range(6))), T0)
    a.ingest(batch(contrib("recent", processor="q")), T0 + 5000)
    keep = Retention(seen_s=1000.0, limit=100)
    first = raw_connection(pg_location)
    pool = ThreadPoolExecutor(1)
    with first.transaction():  # replica a's prune, not yet committed
        got = first.execute(
            "DELETE FROM sr_seen WHERE seen_at < %s RETURNING event_id", (T0 + 10,)
        ).fetchall()
        assert len(got) == 6
        fut = pool.submit(b.prune, keep, T0 + 5000)
        _waiting_pids(pg_location)
    pruned = fut.result(timeout=20)
    pool.shutdown()
    first.close()
    assert (pruned.seen, pruned.more) == (0, False)
    assert [b.seen_at(f"e{i}") for i in range(6)] == [None] * 6
    assert b.seen_at("recent") == T0 + 5000


def _kill_store_sessions(dsn: str) -> list[int]:
    """End every store session on the server but the caller's (a failover, a restart)."""
    with raw_connection(dsn) as c:
        rows = c.execute(
            "SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = 'scoperouter' AND pid <> pg_backend_pid()"
        ).fetchall()
    return [int(r[0]) for r in rows]


def test_connection_lost_while_idle_costs_no_call(
    pg_location: str, replicas: Callable[..., PostgresStateStore], caplog: Any
) -> None:
    """The store's idle backend killed (a failover): the next ingest finds its connection
    lost at the BEGIN, before anything of it reached the server, and runs on a new one;
    the loss is logged, the events stored once; lease renewals alike."""
    b = replicas("b")
    b.ping()
    b.extend_leases([], T0)  # opens the renewal session
    old, renewals = b._conn.info.backend_pid, b._renewals._conn
    assert renewals is not None
    assert {old, renewals.info.backend_pid} <= set(_kill_store_sessions(pg_location))
    with caplog.at_level("WARNING", logger="scoperouter.state.pg_session"):
        res = b.ingest(batch(contrib("e1")), T0)
    assert res.accepted == ("e1",)
    assert b._conn.info.backend_pid != old
    assert "running the call on a new connection" in caplog.text
    assert b.connections_reopened == 1  # (/metrics: scoperouter_state_connections_reopened)
    assert b.ingest(batch(contrib("e1")), T0).duplicates == ("e1",)
    assert b.extend_leases([], T0) == frozenset()
    assert b._renewals._conn is not renewals
    assert b.connections_reopened == 2


def test_connection_lost_in_a_call_fails_it_whole(
    pg_location: str, replicas: Callable[..., PostgresStateStore]
) -> None:
    """A connection lost after the call's transaction began (the server gone between two
    of its statements) fails that call, not run again (whether a COMMIT took is unknown
    there); nothing of it is kept, and the next call opens a new connection."""
    b = replicas("b")
    calls: list[int] = []

    def doomed(c: psycopg.Connection[Any]) -> None:
        calls.append(1)
        c.execute("INSERT INTO sr_seen(event_id, seen_at) VALUES ('mid', %s)", (T0,))
        _kill_store_sessions(pg_location)
        c.execute("SELECT 1")

    with pytest.raises(psycopg.OperationalError) as err:
        b._run(doomed)
    assert calls == [1] and not isinstance(err.value, LostAtBegin)
    assert b.seen_at("mid") is None
    assert b.ingest(batch(contrib("e1")), T0).accepted == ("e1",)


def test_a_store_that_cannot_reconnect_fails_the_call(
    pg_location: str, replicas: Callable[..., PostgresStateStore], monkeypatch: Any
) -> None:
    """Connection lost while idle and the server still down (connecting fails): the call
    fails with the connect error, nothing applied; once the server answers, calls work."""
    b = replicas("b")
    b.ping()
    _kill_store_sessions(pg_location)
    real = b._connect

    def down() -> Any:
        raise psycopg.OperationalError("connection refused (the server is down)")

    monkeypatch.setattr(b, "_connect", down)
    with pytest.raises(psycopg.OperationalError, match="server is down"):
        b.ingest(batch(contrib("e1")), T0)
    monkeypatch.setattr(b, "_connect", real)
    assert b.seen_at("e1") is None
    assert b.ingest(batch(contrib("e1")), T0).accepted == ("e1",)


LEASE_S = 10.0
WAITED_S = 100.0  # the stalled replica's lock wait, ten leases long (on its own clock)
# (the statement another transaction holds the rows with, the call that waits, its leased row)
Case = tuple[str, Callable[[], Any], Callable[[Any], int]]


def _ingest_fires(a: PostgresStateStore) -> Case:
    """An ingest firing a window whose row another transaction holds."""
    a.ingest(batch(contrib("e0", ("x",))), T0)
    return (
        "SELECT 1 FROM sr_windows FOR UPDATE",
        lambda: a.ingest(batch(contrib("e1", ("y",), critical=True)), T0),
        lambda got: got.fired[0].item_id,
    )


def _ingest_marks_wait(a: PostgresStateStore) -> Case:
    """An ingest firing a new window; its dispatch mark waits on a row another holds."""
    [old] = a.ingest(batch(contrib("e0", processor="p1", critical=True)), T0).fired
    marks = (Attempted(old.item_id, 1, "x"),)
    fires = IngestBatch(
        admissions=batch(contrib("e1", processor="p2", critical=True)).admissions, marks=marks
    )
    return (
        f"SELECT 1 FROM sr_outbox WHERE id = {old.item_id} FOR UPDATE",
        lambda: a.ingest(fires, T0),
        lambda got: got.fired[0].item_id,
    )


def _claim_marks_wait(a: PostgresStateStore) -> Case:
    """A lane claim whose dispatch mark (same transaction) waits on a row another holds."""
    both = batch(*(contrib(f"e{p}", processor=p, critical=True) for p in ("p1", "p2")))
    old, given = (x.item_id for x in a.ingest(both, T0).fired)
    assert a.apply_marks([Released(given)]) == (True,)
    return (
        f"SELECT 1 FROM sr_outbox WHERE id = {old} FOR UPDATE",
        lambda: a.claim_lanes([LaneClaim("p2", 5, T0)], [Attempted(old, 1, "x")], T0),
        lambda got: got[0].claimed[0].item_id,
    )


def _renewal_waits(a: PostgresStateStore) -> Case:
    """A lease renewal waiting on its row, held by another transaction."""
    [x] = a.ingest(batch(contrib("e0", critical=True)), T0).fired
    return (
        f"SELECT 1 FROM sr_outbox WHERE id = {x.item_id} FOR UPDATE",
        lambda: a.extend_leases([x.item_id], T0),
        lambda _got: x.item_id,
    )


@pytest.mark.parametrize(
    "case", [_ingest_fires, _ingest_marks_wait, _claim_marks_wait, _renewal_waits]
)
def test_lease_is_stamped_after_the_transactions_lock_waits(
    pg_location: str,
    replicas: Callable[..., PostgresStateStore],
    case: Callable[[PostgresStateStore], Case],
) -> None:
    """A lease taken after a lock wait runs ``lease_s`` from the end of the wait, not from the
    call's ``now``: another replica's rescue, WAITED_S later by its clock, leaves it alone."""
    a, rival = replicas("a", lease_s=LEASE_S), replicas("b", lease_s=LEASE_S)
    waited = [0.0]  # a's monotonic clock: the lock wait lasts WAITED_S on it
    a.monotonic = lambda: waited[0]
    hold_sql, call, leased_id = case(a)
    hold = raw_connection(pg_location)
    pool = ThreadPoolExecutor(1)
    with hold.transaction():
        hold.execute(hold_sql).fetchall()
        fut = pool.submit(call)
        _waiting_pids(pg_location)
        waited[0] = WAITED_S
    item_id = leased_id(fut.result(timeout=20))
    pool.shutdown()
    hold.close()
    rival.rescue_expired(T0 + WAITED_S + LEASE_S / 2)
    rows = {r.item_id: r for r in rival.outbox_rows()}
    assert (rows[item_id].status, rows[item_id].lease_owner) == ("leased", "a")


def test_a_claim_that_skipped_a_locked_due_row_says_rows_are_due(
    pg_location: str, replicas: Callable[..., PostgresStateStore]
) -> None:
    """A claim that skipped a due row another transaction holds locked says so (held), so
    its lane asks again (it once answered nothing due, and the lane waited for the sweep,
    60 page intervals: test_shared_router_leases failed now and then on a loaded machine)."""
    a = replicas("a")
    [x] = a.ingest(batch(contrib("e0", critical=True)), T0).fired
    assert a.apply_marks([Released(x.item_id)]) == (True,)  # pending, due at T0
    hold = raw_connection(pg_location)
    try:
        with hold.transaction():
            hold.execute(f"SELECT 1 FROM sr_outbox WHERE id = {x.item_id} FOR UPDATE")
            [lc] = a.claim_lanes([LaneClaim(x.trigger.processor, 5, T0)], [], T0)
    finally:
        hold.close()
    assert not lc.claimed  # skipped: another transaction holds it
    assert (lc.more, lc.next_due, lc.held) == (False, None, True)
    [again] = a.claim_lanes([LaneClaim(x.trigger.processor, 5, T0)], [], T0)  # lock gone
    assert ([r.item_id for r in again.claimed], again.held) == ([x.item_id], False)

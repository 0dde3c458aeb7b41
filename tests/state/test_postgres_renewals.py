"""PostgreSQL only: a replica's lease renewals run on a connection of their own, beside the
store call its state thread runs -- an ingest waiting on a row lock another session holds
(a frozen replica, a long transaction, up to lock_timeout) delays no renewal, and each
call stamps its leases with its own lock wait. Timing only drives the interleavings
(generous bounds); nothing asserts on durations."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from state_support import batch, contrib, need_psycopg, raw_connection
from test_postgres_races import _waiting_pids

need_psycopg()

from scoperouter.state.postgres import PostgresStateStore  # noqa: E402

T0 = 1_700_000_000.0
LEASE_S = 10.0
WAITED_S = 100.0  # the ingest's lock wait, ten leases long (on the store's own clock)
# what another session holds while the ingest of event "e2" (window x, day DAY) waits
HOLDS = {
    "window row": ("SELECT 1 FROM sr_windows FOR UPDATE", ()),
    "event id": ("INSERT INTO sr_seen(event_id, seen_at) VALUES (%s, 0)", ("e2",)),
}


@pytest.mark.parametrize("held", sorted(HOLDS))
def test_a_renewal_does_not_wait_behind_an_ingest_waiting_on_a_lock(
    pg_location: str, replicas: Callable[..., PostgresStateStore], held: str
) -> None:
    """While a's ingest waits on a lock, a's renewal of the row it delivers commits."""
    a, rival = replicas("a", lease_s=LEASE_S), replicas("b", lease_s=LEASE_S)
    waited = [0.0]
    a.monotonic = lambda: waited[0]
    [x] = a.ingest(batch(contrib("e0", ("x",), critical=True)), T0).fired  # in flight on a
    a.ingest(batch(contrib("e1", ("y",))), T0)  # an open window for the blocked ingest
    hold = raw_connection(pg_location)
    pool = ThreadPoolExecutor(2)
    try:
        hold.execute("BEGIN")
        hold.execute(*HOLDS[held])
        ingest = pool.submit(a.ingest, batch(contrib("e2", ("y",))), T0)  # the state thread
        _waiting_pids(pg_location)
        waited[0] = WAITED_S  # the ingest has waited ten leases ...
        renewal = pool.submit(a.extend_leases, [x.item_id], T0 + WAITED_S)  # the lease keeper
        assert renewal.result(timeout=20) == {x.item_id}  # ... and the renewal did not
        assert not ingest.done()
        # another replica's rescue, by its clock half a lease after the renewal
        assert rival.rescue_expired(T0 + WAITED_S + LEASE_S / 2) == 0
        hold.execute("ROLLBACK")
        assert ingest.result(timeout=20).accepted == ("e2",)
    finally:
        pool.shutdown(wait=True)
        hold.close()
    rows = {r.item_id: r for r in rival.outbox_rows()}
    assert (rows[x.item_id].status, rows[x.item_id].lease_owner) == ("leased", "a")


def test_a_renewal_beside_a_waiting_ingest_keeps_the_ingests_lock_wait(
    pg_location: str, replicas: Callable[..., PostgresStateStore]
) -> None:
    """A renewal run while a's ingest waits does not reset the wait the ingest's leases add."""
    a, rival = replicas("a", lease_s=LEASE_S), replicas("b", lease_s=LEASE_S)
    waited = [0.0]
    a.monotonic = lambda: waited[0]
    [x] = a.ingest(batch(contrib("e0", ("x",), critical=True)), T0).fired
    a.ingest(batch(contrib("e1", ("y",))), T0)
    hold = raw_connection(pg_location)
    pool = ThreadPoolExecutor(2)
    got: Any = None
    try:
        hold.execute("BEGIN")
        hold.execute(*HOLDS["window row"])
        fires = batch(contrib("e2", ("y",), critical=True))
        ingest = pool.submit(a.ingest, fires, T0)  # began at 0 on a's clock
        _waiting_pids(pg_location)
        waited[0] = WAITED_S
        assert pool.submit(a.extend_leases, [x.item_id], T0).result(timeout=20)
        hold.execute("ROLLBACK")
        got = ingest.result(timeout=20)
    finally:
        pool.shutdown(wait=True)
        hold.close()
    [fired] = got.fired  # leased until T0 + WAITED_S + LEASE_S: a rescue before leaves it
    rival.rescue_expired(T0 + WAITED_S + LEASE_S / 2)
    rows = {r.item_id: r for r in rival.outbox_rows()}
    assert (rows[fired.item_id].status, rows[fired.item_id].lease_owner) == ("leased", "a")

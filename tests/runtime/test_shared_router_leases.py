"""Replicas on a state store: a replica that cannot confirm its trigger leases -- renewals
failing past the leases' end by its own clock, or a renewal saying another replica holds
the rows now -- starts none of the rows it queued (they leave its lanes, counted and
logged; they wait in the store for the replica that holds or rescues them), while the
deliveries it had in flight end (the duplicate docs/deploy-replicas.md owns up to); rows
it fired itself start at once only while their lease is still confirmed (an event loop
stalled past ``lease_s`` after the commit leaves them to the replica that rescued them)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import pytest
from runtime_support import GAME_DAY, MemorySink, game_day_stream

from scoperouter.messages.models import Trigger
from scoperouter.processor_registry.loader import LoadedConfig
from scoperouter.runtime.leases import LeaseBook
from scoperouter.runtime.router import Inbound, RouterOptions
from scoperouter.runtime.shared_router import SharedRouter
from scoperouter.runtime.sinks import Sink
from scoperouter.state import StateStore, StoreOptions, open_state_store

T = 1_763_000_000.0
LEASE_S = 0.3  # the lease keeper renews every 0.1 s (real time); the leases run on `now`


class GateSink:
    """Holds every delivery until opened; records what it sent."""

    name = "gate"

    def __init__(self) -> None:
        self.open = asyncio.Event()
        self.received: list[Trigger] = []

    async def send(self, trigger: Trigger, *, message_id: str, body: bytes | None = None) -> None:
        await self.open.wait()
        self.received.append(trigger)

    async def close(self) -> None:
        return None


@contextlib.asynccontextmanager
async def _replicas(location: str, cfg: LoadedConfig) -> AsyncIterator[Any]:
    """Replica ``a`` (a router, its clock ``now``) and ``b`` (a bare store) on one state
    location."""
    made: list[SharedRouter] = []
    stores: list[StateStore] = []

    def open_(owner: str, lease_s: float = LEASE_S) -> StateStore:
        o = StoreOptions(owner=owner, lease_s=lease_s, date_field=cfg.registry.date_field)
        stores.append(open_state_store(location, o, sync="normal"))
        return stores[-1]

    def router(sink: Sink, now: list[float]) -> SharedRouter:
        made.append(
            SharedRouter(
                cfg.registry,
                cfg.relations,
                open_("a"),
                {p: sink for p in cfg.registry.processors},
                options=RouterOptions(as_of=GAME_DAY),
                clock=lambda: now[0],
                poll_interval_s=0.02,
            )
        )
        return made[-1]

    try:
        yield router, open_
    finally:
        for r in made:
            if r._started and not r._stopping:
                await r.stop(timeout=1.0)
            r._state.shutdown(wait=True)
        for s in stores:
            with contextlib.suppress(Exception):
                s.close()


@pytest.fixture
async def replica(pg_schema: str, zero_cfg: LoadedConfig) -> AsyncIterator[Any]:
    """Replicas on one PostgreSQL schema (:func:`_replicas`)."""
    async with _replicas(pg_schema, zero_cfg) as made:
        yield made


@pytest.fixture
async def replica_at(location: str, zero_cfg: LoadedConfig) -> AsyncIterator[Any]:
    """Replicas on one state location, each store kind (:func:`_replicas`)."""
    async with _replicas(location, zero_cfg) as made:
        yield made


async def _until(cond: Callable[[], bool], what: str) -> None:
    for _ in range(2000):
        if cond():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.parametrize(
    ("renewal", "a_moves_on", "reason"),
    [
        ("fails", 1.0, "lease_unconfirmed"),  # the store unreachable; a's clock passes the end
        ("says_lost", 0.0, "lease_lost"),  # a stalled: b rescued by its clock, a's lags
    ],
)
async def test_replica_starts_no_queued_row_whose_lease_it_cannot_confirm(
    replica: Any, renewal: str, a_moves_on: float, reason: str
) -> None:
    """Rows queued on a replica whose lease is gone or unconfirmed are not sent by it."""
    router, open_ = replica
    now, sink = [T], GateSink()
    a: SharedRouter = router(sink, now)
    await a.start()
    outs = await asyncio.gather(*(a.submit(Inbound("t", obj=e)) for e in game_day_stream(40)))
    assert {o.status for o in outs} == {"accepted"}
    lanes = a.dispatcher.lanes.values()
    await _until(lambda: any(ln.buffer for ln in lanes), "rows queued behind busy slots")
    inflight = {i for ln in lanes for i in ln.inflight}
    queued = {r.row_id for ln in lanes for r in ln.buffer}
    armed, ticks = threading.Event(), threading.Event()  # a renewal begun after b took the rows
    extend = a.state.extend_leases

    def renew(ids: Sequence[int], at: float) -> frozenset[int]:
        after = armed.is_set()
        try:
            if renewal == "fails":
                raise OSError("the store is unreachable")
            return extend(ids, at)
        finally:
            if after:
                ticks.set()

    a.state.extend_leases = renew  # type: ignore[method-assign]
    now[0] += a_moves_on
    b = open_("b")
    b.rescue_expired(T + 1.0)  # (or a's own rescue, its clock moved on): b takes a's rows
    assert {x.item_id for x in b.claim(T + 1.0, limit=10_000)} >= inflight | queued
    armed.set()
    await _until(ticks.is_set, "a renewal by a after b took the rows")
    sink.open.set()  # a's deliveries in flight end; a must start none of its queued rows
    await _until(lambda: len(sink.received) >= len(inflight), "a's deliveries in flight")
    await _until(lambda: not any(ln.inflight or ln.buffer for ln in lanes), "a's lanes idle")
    rows = {r.item_id: r.trigger_id for r in b.outbox_rows()}
    assert sorted(t.trigger_id for t in sink.received) == sorted(rows[i] for i in inflight)
    assert a.metrics.leases_dropped.labels(reason)._value.get() == len(queued)


@pytest.mark.parametrize("stall_s", [0.0, 30.0])
async def test_rows_fired_here_start_only_while_their_lease_is_confirmed(
    replica_at: Any, stall_s: float
) -> None:
    """Rows a replica fired are not started by it once another replica may have rescued them."""
    router, open_ = replica_at
    now, sink = [T], MemorySink()
    a: SharedRouter = router(sink, now)
    # what b claims stays b's for the whole test: a's clock moves on stall_s per batch
    b = open_("b", lease_s=1_000_000.0)
    taken: set[int] = set()
    started_late: set[int] = set()  # rows fired() started although their lease had ended
    fired = a.dispatcher.fired
    lanes = a.dispatcher.lanes.values()

    def stalled(rows: list[Any], *rest: Any) -> None:
        if stall_s and rows:  # the event loop stalled this long since the commit ...
            now[0] += stall_s
            b.rescue_expired(now[0])  # ... and b's poll meanwhile: a's leases ended
            taken.update(x.item_id for x in b.claim(now[0], limit=10_000))
        fired(rows, *rest)
        if stall_s:  # (a delivery starts, or queues, inside fired(): nothing awaits)
            here = {i for ln in lanes for i in ln.inflight}
            here |= {r.row_id for ln in lanes for r in ln.buffer}
            started_late.update({r[0] for r in rows} & here)

    a.dispatcher.fired = stalled  # type: ignore[method-assign]
    await a.start()
    outs = await asyncio.gather(*(a.submit(Inbound("t", obj=e)) for e in game_day_stream(40)))
    assert {o.status for o in outs} == {"accepted"}
    assert await a.idle()
    rows = {r.item_id: r for r in b.outbox_rows()}
    assert rows and a.fired_here == len(rows)
    sent_by_a = {t.trigger_id for t in sink.received}
    unconfirmed = a.metrics.leases_dropped.labels("lease_unconfirmed")._value.get()
    if not stall_s:  # the lease still confirmed when the dispatcher gets the rows: a sends
        assert sorted(t.trigger_id for t in sink.received) == sorted(
            r.trigger_id for r in rows.values()
        )
        assert not taken and unconfirmed == 0
        assert {r.status for r in rows.values()} == {"done"}
        assert a.metrics.leases_dropped.labels("lease_lost")._value.get() == 0
        return
    # fired() started none of them; b took what its rescue found (a's own poll may rescue
    # and claim some first, on its state thread, with a lease of its own: a sends those)
    assert started_late == set() and unconfirmed >= len(rows)
    assert taken, "b rescued none of a's rows"
    assert {rows[i].trigger_id for i in taken} | sent_by_a == {
        r.trigger_id for r in rows.values()
    }  # nothing lost: each row sent by a under a fresh lease, or b's
    assert all(r.lease_owner == "b" for r in rows.values() if r.status == "leased")
    assert {r.status for r in rows.values()} <= {"done", "leased"}


@pytest.mark.parametrize(
    ("renewal", "at", "lost", "refusal"),
    [
        (None, 0.29, [], None),  # leased at 0: confirmed for lease_s
        (None, 0.3, [], "lease_unconfirmed"),  # ... and no longer by this replica's clock
        ({1}, 0.45, [], None),  # renewed at 0.2: confirmed until 0.5
        (set(), 0.0, [1], "lease_lost"),  # the renewal did not renew it: another's now
    ],
)
def test_lease_book_confirms_a_row_until_its_lease_ends_by_this_clock(
    renewal: set[int] | None, at: float, lost: list[int], refusal: str | None
) -> None:
    """A row is confirmed until lease_s after the call that leased or renewed it began."""
    book = LeaseBook(LEASE_S)
    book.held([1], 0.0)
    if renewal is not None:
        assert book.renewed([1], renewal, 0.2) == lost
    assert book.refusal(1, at) == refusal


def test_lease_book_does_not_call_a_finished_row_lost() -> None:
    """A row finished while its renewal was out is neither renewed nor reported lost."""
    book = LeaseBook(LEASE_S)
    book.held([1, 2], 0.0)
    book.forget([1])
    assert book.renewed([1, 2], {2}, 0.2) == [] and book.ids() == [2]


@pytest.mark.parametrize(
    ("leased_again", "lost", "refusal"),
    [
        (False, [1], "lease_lost"),  # nothing since the renewal's snapshot: lost
        (True, [], None),  # a page leased it again meanwhile (renewals off the state thread)
    ],
)
def test_lease_book_keeps_a_row_leased_again_beside_its_renewal(
    leased_again: bool, lost: list[int], refusal: str | None
) -> None:
    """A renewal not renewing a row leased here again after its snapshot leaves the new lease."""
    book = LeaseBook(LEASE_S)
    book.held([1], 0.0)
    ids, mark = book.to_renew()
    if leased_again:  # rescued by another replica, then claimed here by a page
        book.held([1], 0.1)
    assert book.renewed(ids, set(), 0.1, mark) == lost
    assert book.refusal(1, 0.2) == refusal

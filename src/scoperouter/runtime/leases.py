"""The trigger leases a replica holds on a state store, as its own clock knows them, and
their renewal (the lease keeper of :class:`~scoperouter.runtime.shared_router.SharedRouter`).

Invariant: a row is confirmed ours only until ``t + lease_s``, ``t`` this replica's clock
read before the store call that leased (fired, claimed) or renewed it -- never later than
the store's own stamp, written after that read. The dispatcher starts a row only while
it is confirmed by the dispatcher's clock -- a queued or paged row (:meth:`LeaseBook.refusal`)
and a row fired here that it would start at once (:meth:`LeaseBook.refused`, the batch's
rows under one lock: an event loop stalled past ``lease_s`` between the commit and the
dispatcher leaves them to whoever rescued them). One that is not leaves this replica
unstarted, counted (``scoperouter_leases_dropped_total{reason}``) and logged, and is
forgotten here (no longer renewed), so its lease runs out and a rescue makes it claimable
again: nothing is lost. Reasons: ``lease_lost`` (a renewal did not renew it: rescued,
maybe reclaimed by another replica) and ``lease_unconfirmed`` (its lease ended by this
replica's clock: renewals failing, or the process stalled). A delivery already started is
not stopped: it may duplicate the one the row's new holder makes (same trigger id,
docs/deploy-replicas.md).

Renewals run where the store can take them (:class:`Renewals`): a store that renews on a
connection of its own (``renews_apart``: PostgreSQL) on a thread of their own, so a state
thread waiting on a row lock (an ingest behind a frozen replica, up to ``lock_timeout``)
never holds them back; the single-instance SQLite store on the state thread, no other
process rescues its rows. A renewal may then meet a page re-leasing a row it asked about
(rescued meanwhile): the page's newer lease wins (:meth:`LeaseBook.renewed`).
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Awaitable, Callable, Collection, Iterable, Sequence
from typing import Any

from scoperouter.runtime.state_jobs import StateThread, in_state
from scoperouter.state.api import StateStore

LEASE_LOST = "lease_lost"
LEASE_UNCONFIRMED = "lease_unconfirmed"


class LeaseBook:
    """Row id -> the time (this replica's clock) until which its lease is confirmed.
    Written on the state thread (leases taken, finished), the renewals' thread (renewed)
    and the event loop (rows dropped), read on all: one lock."""

    def __init__(self, lease_s: float) -> None:
        self.lease_s = lease_s
        self._until: dict[int, float] = {}
        self._taken: dict[int, int] = {}  # row id -> the count of held() calls that leased it
        self._held = 0  # held() calls so far
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._until)

    def ids(self) -> list[int]:
        with self._lock:
            return sorted(self._until)

    def to_renew(self) -> tuple[list[int], int]:
        """The rows to renew, and the mark :meth:`renewed` tells later leases by."""
        with self._lock:
            return sorted(self._until), self._held

    def held(self, ids: Iterable[int], at: float) -> None:
        """``ids`` were leased here by a store call whose time was ``at``."""
        until = at + self.lease_s
        with self._lock:
            self._held += 1
            for i in ids:
                self._until[i] = until
                self._taken[i] = self._held

    def forget(self, ids: Iterable[int]) -> None:
        """``ids`` are no longer ours (finished, given back, dropped)."""
        with self._lock:
            for i in ids:
                self._until.pop(i, None)
                self._taken.pop(i, None)

    def renewed(
        self, asked: Sequence[int], kept: Collection[int], at: float, mark: int | None = None
    ) -> list[int]:
        """A renewal at ``at`` of ``asked`` (:meth:`to_renew`'s ``mark``) renewed ``kept``:
        those are confirmed on; the others still here are lost (forgotten, returned). A
        row finished meanwhile was forgotten already and stays so; one leased here again
        after ``mark`` (a page beside a renewal on another thread) is the new lease's."""
        until = at + self.lease_s
        lost = []
        with self._lock:
            for i in asked:
                if i not in self._until:
                    continue
                if i in kept:
                    self._until[i] = max(self._until[i], until)
                elif mark is None or self._taken.get(i, 0) <= mark:
                    del self._until[i]
                    self._taken.pop(i, None)
                    lost.append(i)
        return lost

    def lapsed(self, now: float) -> list[int]:
        """Rows whose confirmed lease ended by ``now`` (kept: one in flight is still
        renewed, a queued one is dropped by the dispatcher, which forgets it)."""
        with self._lock:
            return sorted(i for i, u in self._until.items() if u <= now)

    def refusal(self, row_id: int, now: float) -> str | None:
        """Why ``row_id`` must not start now, or None when its lease is confirmed."""
        until = self._until.get(row_id)
        if until is None:
            return LEASE_LOST
        return None if now < until else LEASE_UNCONFIRMED

    def refused(self, ids: Iterable[int], now: float) -> dict[int, str]:
        """The rows among ``ids`` that must not start now, each with why (as
        :meth:`refusal`): empty when every lease is confirmed. One lock for the list (the
        rows of a fired batch)."""
        out: dict[int, str] = {}
        until = self._until
        with self._lock:
            for i in ids:
                u = until.get(i)
                if u is None:
                    out[i] = LEASE_LOST
                elif now >= u:
                    out[i] = LEASE_UNCONFIRMED
        return out


class Renewals:
    """Where a replica's renewals run: on a thread of their own when ``state`` renews on a
    connection of its own (``renews_apart``), else as the state thread's jobs."""

    def __init__(self, state: StateStore) -> None:
        apart = getattr(state, "renews_apart", False)
        self.thread = StateThread("scoperouter-leases") if apart else None

    def runner(
        self, loop: asyncio.AbstractEventLoop, in_state_thread: Callable[..., Awaitable[Any]]
    ) -> Callable[..., Awaitable[Any]]:
        """How :func:`renew` runs its store call (``in_state_thread``: the state thread's)."""
        if self.thread is None:
            return in_state_thread
        return functools.partial(in_state, loop, self.thread)

    async def close(self) -> None:
        """No renewal from now on; wait for the one running (before the store closes)."""
        if self.thread is not None:
            await asyncio.to_thread(self.thread.shutdown, True)


async def keep(lease_s: float, renew_once: Callable[[], Awaitable[None]]) -> None:
    """The lease keeper: ``renew_once`` (:func:`renew`, its arguments bound) every third of
    ``lease_s``, for good."""
    every = max(0.05, lease_s / 3)
    while True:
        await asyncio.sleep(every)
        await renew_once()


async def renew(
    book: LeaseBook,
    state: StateStore,
    run_state: Callable[..., Awaitable[Any]],
    clock: Callable[[], float],
    failed: Callable[[str], None],
    disown: Callable[[Collection[int], str], int],
) -> None:
    """One renewal of every lease in ``book`` (``run_state``: :meth:`Renewals.runner`);
    rows it no longer holds, or can no longer confirm (the renewal failed and their lease
    ended by ``clock``), are ``disown``-ed (taken out of the dispatcher's queues)."""
    ids, mark = book.to_renew()
    if not ids:
        return
    at = clock()
    try:
        lost = await run_state(_renew, book, state, ids, at, mark)
    except Exception:
        failed("could not renew trigger leases")
        lapsed = book.lapsed(clock())
        if lapsed:
            disown(lapsed, LEASE_UNCONFIRMED)
        return
    if lost:
        disown(lost, LEASE_LOST)


def _renew(book: LeaseBook, state: StateStore, ids: list[int], at: float, mark: int) -> list[int]:
    """Renewals' (or state) thread: renew ``ids``; the rows lost, forgotten in the same job
    (a page, the next state job or one running beside it, may lease one again)."""
    return book.renewed(ids, state.extend_leases(ids, at), at, mark)

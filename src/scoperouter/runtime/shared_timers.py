"""The poll loop of the router on a state store: the window timer firing due windows of ANY
replica, the claim that gives expired leases back and tells the dispatcher which targets
have rows waiting, and the open-window gauge (a mixin of
:class:`~scoperouter.runtime.shared_router.SharedRouter`).

Invariant: each poll's store work runs on the state thread; the rows a poll fires are held
in this replica's lease book in the job that fired them, and reach the dispatcher even when
a read after that commit fails (the next deadline, the open-window count); a failed poll
marks the store unhealthy and the timer goes on (only a stop ends it); only a poll that
wrote (fired windows, gave leases back) marks it healthy again -- a failing store (a full
disk) still answers the reads of a poll with nothing to do.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from scoperouter.runtime import leases, modes
from scoperouter.runtime.dispatcher import Committed
from scoperouter.runtime.orphans import Roster
from scoperouter.runtime.router_core import RouterCore
from scoperouter.state.api import StateStore
from scoperouter.state.model import OutboxItem

logger = logging.getLogger("scoperouter.runtime")
COUNT_EVERY_S = 30.0  # refresh of the open-window gauge (an exact count of the store)
# ... and on a single-instance store after every transaction while the last count was at
# most this (counting is cheap)
COUNT_CHEAP = 1_000


class SharedTimers(RouterCore):
    """Window timer, firing and claims of :class:`SharedRouter` (its ``__init__`` sets the
    attributes below; :meth:`SharedRouter.start` runs the timer as a task)."""

    state: StateStore
    roster: Roster
    poll_interval_s: float
    claim_interval_s: float
    fired_here: int
    _open: int
    _next_deadline: float | None
    _timer_due: float
    _timer_wake: asyncio.Event
    _leased: leases.LeaseBook
    _last_claim: float
    _last_count: float

    # ------------------------------------------------------------------ timers
    async def _window_timer(self) -> None:
        """Poll the store: fire due windows (any replica's), rescue and claim triggers.
        An ingest batch wakes it with the store's next deadline: it asks the store only
        when that is due or a poll interval has passed -- not once per batch, a store
        round trip each that the next batch waited behind on the state thread. A poll that
        fired nothing while the deadline stays due (its row held by another transaction:
        ``SKIP LOCKED``) waits a poll interval for the next, never asks again at once."""
        last_poll = float("-inf")  # time.monotonic() of the last poll
        held = False  # the last poll fired nothing; the store's deadline was due all the same
        while not self._stopping:
            wait = max(0.0, last_poll + self.poll_interval_s - time.monotonic())
            nd = None if held else self._next_deadline
            if nd is not None:
                wait = max(0.0, min(wait, nd - self.clock()))
            if wait > 0:
                self._timer_due = self.clock() + wait
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._timer_wake.wait(), wait)
                self._timer_due = float("-inf")
            self._timer_wake.clear()
            if self._stopping:
                break
            nd = self._next_deadline
            if time.monotonic() - last_poll < self.poll_interval_s and (
                held or nd is None or nd > self.clock()
            ):
                continue  # woken by a batch, nothing due (or only held rows): wait again
            last_poll = time.monotonic()
            try:
                fired = await self.fire_due()
                nd = self._next_deadline
                held = not fired and nd is not None and nd <= self.clock()
                if self.clock() - self._last_claim >= self.claim_interval_s:
                    await self.claim()
                if fired:  # a write committed (a poll that only read proves nothing)
                    self.health.succeeded()
            except Exception:
                self.health.failed("could not fire due windows or claim triggers")
            backoff = self.health.backoff()
            if backoff:
                await asyncio.sleep(backoff)

    def _fire(self, now: float) -> tuple[list[OutboxItem], float | None]:
        """State thread: fire what is due store-wide; the next deadline; the open-window
        count (a gauge, :meth:`_count_open`: counting 100k rows holds the state thread
        10-50 ms, a pause of the ingest behind it, so a large count is refreshed every
        :data:`COUNT_EVERY_S` only)."""
        nd = self.state.next_deadline()
        fired: list[OutboxItem] = []
        # a window left past the slack ahead by a clock step has a deadline still to come:
        # the store says when it may hold one (docs/engine.md, window rules)
        if (nd is not None and nd <= now) or self.state.may_hold_ahead(now):
            fired = self.state.fire_due(now)
            self._leased.held((x.item_id for x in fired), now)
            try:
                nd = self.state.next_deadline()
            except Exception:
                if not fired:
                    raise
                # committed and leased here: the rows go to the dispatcher all the same.
                # Raising lost them to it while the lease keeper renewed their leases for
                # ever (no replica could rescue them); the timer asks again at once.
                logger.warning(
                    "could not read the next window deadline after firing %d windows; "
                    "dispatching them, asking the store again",
                    len(fired),
                    exc_info=True,
                )
                nd = now
        self._count_open(nd, now)
        return fired, nd

    def _count_open(self, nd: float | None, now: float, *, due: bool = True) -> None:
        """State thread: the open-window gauge after a transaction that left ``nd`` the
        store's earliest deadline -- none open when it has none, else an exact count when
        ``due`` and :data:`COUNT_EVERY_S` passed, or on a single-instance store (an
        in-process query, no round trip) while the last count was small."""
        if nd is None:  # no window open store-wide
            self._open = 0
        elif (not self.state.shared and self._open <= COUNT_CHEAP) or (
            due and now - self._last_count >= COUNT_EVERY_S
        ):
            try:
                self._open = self.state.open_window_count()
            except Exception:
                # a gauge, counted after a commit: its failure must not fail the caller,
                # whose committed rows leased here would never reach the dispatcher (and be
                # renewed for ever); the last count stands until the next one
                logger.warning("could not count the open windows", exc_info=True)
                return
            self._last_count = now

    async def fire_due(self) -> int:
        """Fire the windows due now, whoever opened them. Returns the count."""
        fired, self._next_deadline = await self._in_state(self._fire, self.clock())
        self._dispatch_items(fired)
        self.metrics.open_windows.set(self._open)
        return len(fired)

    async def claim(self) -> int:
        """Give back expired leases (any replica's) and tell the dispatcher which targets
        have rows due (a shared store: rows rescued, retried or given back by other
        replicas; the single-instance store learns its own). The dispatcher's pump claims
        them as its lanes have room. Returns how many lanes were told."""
        now = self.clock()
        self._last_claim = now
        shared = self.state.shared

        said = self.roster.due(now)

        def run() -> tuple[int, list[str], frozenset[str]]:
            # every lease: the processors routed here (the roster's heartbeat), first
            elsewhere = self.state.announce_processors(now) if said else frozenset()
            rescued = self.state.rescue_expired(now)
            due = self.state.pending_processors(now) if shared or rescued else []
            return rescued, due, elsewhere

        rescued, due, elsewhere = await self._in_state(run)
        if rescued:  # leases given back: a write committed, the store works
            self.health.succeeded()
        if said:
            self.roster.seen(elsewhere, now)
        if rescued:
            self.stats.redispatched += rescued
            self.metrics.redispatched.inc(rescued)
            logger.warning(
                "rescued %d triggers whose lease ran out (a replica stopped mid-dispatch)",
                rescued,
                extra={"rescued": rescued},
            )
        return self.dispatcher.rows_waiting(due)

    def _dispatch_items(self, items: list[OutboxItem]) -> None:
        """Windows fired here: their rows are leased here; the dispatcher starts those
        its lanes have room for and gives the others back (``Release``)."""
        committed: list[Committed] = [(x.item_id, x.trigger, x.body) for x in items]
        self.fired_here += len(items)
        self.roster.taken((x.trigger.processor for x in items), "windows")
        self.dispatcher.fired(committed, modes.other_modes(items, self.dispatcher.modes))

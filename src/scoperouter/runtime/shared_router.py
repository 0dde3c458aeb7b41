"""The router on a :class:`~scoperouter.state.api.StateStore`: windows, outbox and dedupe
live in the store, not in this process, so any number of replicas can share one
PostgreSQL (``serve --state postgresql://...``); plain ``serve`` runs the same code on the
embedded per-window SQLite store in the state dir (``--state sqlite:///path`` elsewhere).

Invariant: this process keeps no window and no backlog. Every ingest batch is one store
transaction (:mod:`scoperouter.runtime.shared_ingest`); a poll loop
(:mod:`scoperouter.runtime.shared_timers`: every ``poll_interval_s``, sooner when this
replica knows an earlier deadline) fires due windows of ANY replica with ``FOR UPDATE
SKIP LOCKED`` and, every ``claim_interval_s``, gives expired leases back
(:meth:`StateStore.rescue_expired`) and tells the dispatcher which targets have rows
waiting. The dispatcher's pump claims each target's rows page by page
(:mod:`scoperouter.runtime.state_backlog`: leased, at most its free slots plus one
page), so a failing target's backlog stays in the store -- its circuit breaker, retry
horizon and redrive work as on the snapshot + journal store. A lease keeper renews the
leases of the rows this replica holds every third of ``lease_s`` -- on PostgreSQL on a
connection and a thread of its own, never behind an ingest waiting on a row lock; rows it
will not start go back (``Release``), rows whose lease it cannot confirm are not started
(:mod:`scoperouter.runtime.leases`). A replica that dies leaves its leased triggers to the others once
the lease runs out: at-least-once delivery, the trigger id is the idempotency key
downstream.

Flow::

    submit -> queue -> shared_ingest [one store transaction] -> ack -> dispatcher
    poll -> fire_due / rescue_expired [store transactions] -> dispatcher
    dispatcher pump -> state_backlog.page [marks + claim_lanes: one transaction] -> lanes
    dispatcher -> marks -> apply_marks (or the next ingest or page transaction)
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import operator
import random
import time
from collections.abc import Callable, Mapping, Sequence

from scoperouter.execution_log.api import ExecutionLog
from scoperouter.processor_registry.compiled import CompiledRegistry
from scoperouter.processor_registry.relations import RelationStore
from scoperouter.router.planner import planner_for
from scoperouter.router.windows import WindowBook
from scoperouter.runtime import housekeeping, leases, modes, state_backlog, state_open
from scoperouter.runtime.backlog import LanePage, LaneRequest
from scoperouter.runtime.ingest import BatchResult, Item
from scoperouter.runtime.loop_runtime import loop_wanted
from scoperouter.runtime.marks import Mark
from scoperouter.runtime.metrics import Metrics
from scoperouter.runtime.options import RouterOptions
from scoperouter.runtime.orphans import Roster, announce_unknown
from scoperouter.runtime.outcomes import DeadLetterPublisher
from scoperouter.runtime.router import Router
from scoperouter.runtime.shared_ingest import StateMarks, process_shared_batch, state_marks
from scoperouter.runtime.shared_timers import SharedTimers
from scoperouter.runtime.sinks import Sink
from scoperouter.state.api import StateStore
from scoperouter.state.model import Pruned, Released, Retention

logger = logging.getLogger("scoperouter.runtime")
_ROW_ID = operator.itemgetter(0)
# flusher ticks in a row that dispatch marks may wait for the next ingest batch to take them
MARKS_RIDE_TICKS = 3


class SharedRouter(SharedTimers, Router):
    """:class:`Router` whose state is a :class:`StateStore` (same sources, dispatcher,
    health and marks; ingest, timers, restart and housekeeping go to the store)."""

    def __init__(
        self,
        registry: CompiledRegistry,
        relations: RelationStore,
        state: StateStore,
        sinks: Mapping[str, Sink],
        *,
        fallback_sink: Sink | None = None,
        metrics: Metrics | None = None,
        options: RouterOptions | None = None,
        log: ExecutionLog | None = None,
        dead_letter_publisher: DeadLetterPublisher | None = None,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        poll_interval_s: float = 0.2,
    ) -> None:
        self._setup(
            registry, relations, sinks, fallback_sink, metrics, options, log,
            dead_letter_publisher, clock, rng,
        )  # fmt: skip
        # the store marks the windows of processors live here and writes each trigger it
        # fires with the mode it fires in (live for such a window); it leaves processors
        # other replicas route to them (runtime/orphans.py)
        self.metrics.watch_store(state)  # PostgreSQL: connections reopened
        procs = frozenset(registry.processors)
        o = state.options = dataclasses.replace(
            state.options, modes=self.dispatcher.modes, processors=procs
        )
        self.roster = Roster(procs, self.metrics, o.lease_s)
        self.state = state
        self.planner = planner_for(registry)
        self.poll_interval_s = poll_interval_s
        self.claim_interval_s = min(5.0, max(0.2, state.options.lease_s / 4))
        self._open = 0
        self._interrupted = False  # the stop has cancelled the batch in flight once
        self._next_deadline: float | None = None
        self._timer_due = float("-inf")  # when the waiting window timer wakes by itself
        self._timer_wake = asyncio.Event()  # set by an ingest with an earlier deadline
        # outbox ids leased to this replica and not finished or given back (in flight, in
        # a lane's page, or parked with a Release mark not yet written), until when
        self._leased = self.dispatcher.leases = leases.LeaseBook(state.options.lease_s)
        self._renewals = leases.Renewals(state)  # (PostgreSQL: off the state thread)
        self._last_claim = 0.0
        self._last_count = 0.0
        self._marks_waited = 0  # flusher ticks the marks waited for an ingest batch
        self._submitted_then = 0  # ``_submitted`` at the flusher's last tick
        self.fired_here = 0  # windows this replica fired (tests, benchmarks)

    # ------------------------------------------------------------------ state views
    @property
    def book(self) -> WindowBook:
        raise AttributeError("a router on a state store keeps no windows in memory")

    def open_window_count(self) -> int:
        """Open windows store-wide, as of the last poll."""
        return self._open

    def _closed_loop(self) -> bool:
        """The closed loop (trigger ledger, barrier: docs/ledger.md) keeps its state in the
        snapshot + journal store only; the daemon runs that store when routes.yaml asks
        for the loop, so here it is off."""
        return False

    def _loop_metrics(self) -> None:
        """No closed loop here (see :meth:`_closed_loop`)."""

    def _ledger_reports(self) -> bool:
        """On a shared store, the completions reported for backfill runs are recorded in
        its completion ledger (:mod:`scoperouter.runtime.shared_ingest`): a run's
        completion may reach any replica, and the replica running the backfill reads them
        there (:meth:`scoperouter.backfill.shared_claim.SharedClaims.completion`)."""
        return self.state.shared

    async def _reload_windows(self) -> None:
        """Nothing to rebuild: no window lives in this process."""

    async def _interrupt_state(self) -> None:
        """Cancel the store's running statement (PostgreSQL: an ingest waiting on a lock
        held by a frozen replica past the shutdown timeout); the batch fails, nacked."""
        interrupt = getattr(self.state, "interrupt", None)
        if interrupt is not None:
            if not self._interrupted:  # (repeated every second while the batch runs)
                self._interrupted = True
                logger.warning(
                    "shutdown: the ingest transaction in flight outlasted the shutdown "
                    "timeout (waiting on a lock?); cancelling it, its messages are redelivered"
                )
            await asyncio.to_thread(interrupt)

    def _persist_at_stop(self) -> None:
        """Nothing to snapshot. Rows still leased here at a graceful stop (unfinished
        dispatches, unstarted pages) give their leases back at once (``Released``:
        attempts kept, claimable now): another replica, or the next start, sends them
        without waiting for the lease to run out (a kill leaves that to the lease)."""
        if ids := self._leased.ids():
            self.state.apply_marks([Released(i) for i in ids])
            self._leased.forget(ids)

    def _forget(self, sm: StateMarks) -> None:
        """Dispatch outcomes written: finished or given-back rows are no longer ours."""
        self._leased.forget(sm.finished)

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Migrated store opened by the caller; give back leases of a single-instance
        store (they were this process's before it stopped), give open windows today's
        ``max_entities``, read the deadline, start the dispatcher's pump on the backlog."""
        now = self.clock()
        self.prune_clock.seed(now)
        rescued = 0
        if not self.state.shared:
            rescued = await self._in_state(lambda: self.state.rescue_expired(now, all_leases=True))
            n = await self._in_state(
                state_backlog.announce_restart, self.state, self.metrics, rescued
            )
            self.stats.redispatched += n
        live = await self._in_state(self.state.live_backlog)
        modes.announce_live_backlog(live, self.dispatcher.modes)
        # the processors routed here, said before anything is fired or paged
        self.roster.seen(await self._in_state(self.state.announce_processors, now), now)
        work = await self._in_state(self.state.work_by_processor)
        announce_unknown(work, self.registry.processors, self.metrics, self.roster.elsewhere)
        await self._in_state(state_open.limit_windows, self.state, self.registry)
        pending = await self._in_state(self.state.pending_processors)
        self._open = await self._in_state(self.state.open_window_count)
        self._last_count = now
        self._next_deadline = await self._in_state(self.state.next_deadline)
        self.metrics.open_windows.set(self._open)
        pump = self.dispatcher.start(
            self._in_state,
            self._page,
            pending,
            on_store_ok=self.health.succeeded,
            on_store_failed=self.health.failed,
            store_backoff=self.health.backoff,
        )
        loop = self._running_loop()  # (known to the log thread's failure report)
        self._background = [
            loop.create_task(self._ingest_worker(), name="ingest"),
            loop.create_task(self._window_timer(), name="windows"),
            loop.create_task(self._mark_flusher(), name="marks"),
            loop.create_task(self._housekeeping(), name="housekeeping"),
            loop.create_task(self._lease_keeper(), name="leases"),
            pump,  # claims waiting triggers from the store (cancelled with the others)
        ]
        self.supervisor.watch(self._background)
        self._started = True
        if loop_wanted(self.registry):
            logger.warning(
                "the closed loop (trigger ledger, barrier) is not available on --state yet: "
                "triggers are dispatched without it"
            )
        logger.info(
            "router started",
            extra={
                "state": self.state.kind,
                "owner": self.state.options.owner,
                "open_windows": self._open,
                "rescued": rescued,
            },
        )

    async def stop(self, timeout: float = 8.0) -> None:
        await super().stop(timeout)
        await self._renewals.close()  # a renewal running ends before the store may close

    def _page(self, marks: list[Mark], requests: list[LaneRequest], now: float) -> list[LanePage]:
        """State thread: the dispatcher's page (marks written, lanes claimed)."""
        pages, sm, leased = state_backlog.page(self.state, marks, requests, now)
        self.roster.taken((r.processor for pg in pages for r in pg.rows), "triggers")
        self._forget(sm)
        self._leased.held(leased, now)
        return pages

    # ------------------------------------------------------------------ ingest
    def _process_batch(self, batch: list[Item], marks: list[Mark]) -> BatchResult:
        sm, now = state_marks(marks), self.clock()
        res, next_deadline = process_shared_batch(
            batch,
            state=self.state,
            planner=self.planner,
            registry=self.registry,
            relations=self.relations,
            as_of=self.options.as_of,
            now=now,
            marks=sm,
            ledger=self.state.shared,
            letter_topic=self.letter_copies is not None,
        )
        self._forget(sm)
        self._leased.held(map(_ROW_ID, res.fired), now)
        self._next_deadline = next_deadline
        self._count_open(next_deadline, now, due=False)
        return res

    def _apply_batch(self, batch: list[Item], res: BatchResult) -> None:
        self.fired_here += len(res.fired)
        super()._apply_batch(batch, res)
        # the timer waits on its own event: woken only when the store-wide deadline this
        # batch reported is earlier than its own wake-up (no task and timer per batch)
        nd = self._next_deadline
        if nd is not None and nd < self._timer_due:
            self._timer_wake.set()

    # ------------------------------------------------------------------ leases
    async def _lease_keeper(self) -> None:
        """Renew this replica's leases (:func:`leases.keep`); rows it lost leave its lanes."""
        book, d = self._leased, self.dispatcher
        run = self._renewals.runner(self._running_loop(), self._in_state)
        once = (book, self.state, run, self.clock, self.health.failed, d.disown)
        await leases.keep(book.lease_s, functools.partial(leases.renew, *once))

    # ------------------------------------------------------------------ marks, housekeeping
    async def _flush_marks(self, barrier: bool = False) -> None:
        """The mark flusher's write, left to the ingest worker while events are queued or
        in a batch, or arrived since the last tick (a stream between two batches: a Pub/Sub
        pull delivers a batch every ~50 ms) -- the next batch takes the marks into its own
        transaction: a commit and its ``fdatasync`` fewer (at saturation one store commit
        in ~20 was a flusher's; in a pull drain 4 in 10) -- at most
        :data:`MARKS_RIDE_TICKS` ticks in a row, and never while the store is failing (the
        flusher then probes it with this write), for a barrier or once stopping (no batch
        comes: the stop writes the marks before it gives leases back)."""
        arrived, self._submitted_then = self._submitted != self._submitted_then, self._submitted
        if (
            not barrier
            and self._marks_waited < MARKS_RIDE_TICKS
            and self.health.ok
            and (self._unfinished or arrived)
            and not self._stopping
        ):
            self._marks_waited += 1
            return
        self._marks_waited = 0
        await super()._flush_marks(barrier)

    def _write_marks_tx(self, marks: list[Mark]) -> None:
        sm = state_marks(marks)
        if sm.marks:
            self.state.apply_marks(sm.marks)
        for letter in sm.letters:
            self.state.dead_letter(letter)
        self._forget(sm)

    def _probe_store(self) -> None:
        self.state.ping()

    def _prune(self) -> Pruned:
        o = self.options
        pruned = self.state.prune(
            Retention(
                seen_s=o.dedup_horizon_s,
                done_s=o.done_retention_s,
                dead_s=None,  # dead triggers: kept until `scoperouter outbox redrive|discard`
                completions_s=o.done_retention_s,
                letters_s=o.dead_letter_retention_s,  # rejected events' dead letters
                keep_owed=self.letter_copies is not None,  # never before the topic has them
            ),
            housekeeping.prune_now(self.prune_clock, o, self.clock()),  # bounded_clock
        )
        return pruned

    def _letters_owed(self, limit: int) -> list[tuple[int, bytes]]:
        return self.state.letters_owed(limit)

    def _letters_copied(self, ids: Sequence[int]) -> int:
        return self.state.letters_copied(ids)

    async def idle(self, timeout: float = 10.0) -> bool:
        """Wait until nothing is queued, in flight, or open store-wide (tests)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self._unfinished and self.dispatcher.quiet:
                self._open = await self._in_state(self.state.open_window_count)
                if self._open == 0:
                    await self._flush_marks(barrier=True)  # behind any write of marks out
                    return True
            await asyncio.sleep(0.01)
        return False

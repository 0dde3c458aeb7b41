"""The router on a :class:`~scoperouter.state.api.StateStore`: windows, outbox and dedupe
live in the store, not in this process, so any number of replicas can share one
PostgreSQL (``serve --state postgresql://...``); ``--state sqlite:///path`` runs the same
code on the embedded per-window SQLite store.

Invariant: this process keeps no window. Every ingest batch is one store transaction
(:mod:`scoperouter.runtime.shared_ingest`); a poll loop (every ``poll_interval_s``, sooner
when this replica knows an earlier deadline) fires due windows of ANY replica with
``FOR UPDATE SKIP LOCKED`` and, every ``claim_interval_s``, gives expired leases back
(:meth:`StateStore.rescue_expired`) and claims pending triggers; a lease keeper renews the
leases of this replica's unfinished dispatches every third of ``lease_s``. A replica that
dies leaves its leased triggers to the others once the lease runs out: at-least-once
delivery, the trigger id is the idempotency key downstream.

Flow::

    submit -> queue -> shared_ingest [one store transaction] -> ack -> dispatcher
    poll -> fire_due / rescue_expired + claim [store transactions] -> dispatcher
    dispatcher -> marks -> apply_marks (or the next ingest transaction)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Mapping

from scoperouter.execution_log.api import ExecutionLog
from scoperouter.processor_registry.compiled import CompiledRegistry
from scoperouter.processor_registry.relations import RelationStore
from scoperouter.router.planner import planner_for
from scoperouter.router.windows import WindowBook
from scoperouter.runtime.dispatcher import Committed
from scoperouter.runtime.ingest import BatchResult, Item
from scoperouter.runtime.loop_runtime import loop_wanted
from scoperouter.runtime.marks import Mark
from scoperouter.runtime.metrics import Metrics
from scoperouter.runtime.options import RouterOptions
from scoperouter.runtime.outcomes import DeadLetterPublisher
from scoperouter.runtime.router import Router
from scoperouter.runtime.shared_ingest import StateMarks, process_shared_batch, state_marks
from scoperouter.runtime.sinks import Sink
from scoperouter.state.api import StateStore
from scoperouter.state.model import Attempted, OutboxItem, Retention, RetryLater

logger = logging.getLogger("scoperouter.runtime")
COUNT_EVERY_S = 30.0  # refresh of the open-window gauge (an exact count of the store)


class SharedRouter(Router):
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
        claim_limit: int = 100,
    ) -> None:
        self._setup(
            registry, relations, sinks, fallback_sink, metrics, options, log,
            dead_letter_publisher, clock, rng,
        )  # fmt: skip
        self.state = state
        self.planner = planner_for(registry)
        self.poll_interval_s = poll_interval_s
        self.claim_interval_s = min(5.0, max(0.2, state.options.lease_s / 4))
        self.claim_limit = claim_limit
        self._open = 0
        self._next_deadline: float | None = None
        # outbox ids this replica dispatches, unfinished -> failed attempts recorded so far
        self._leased: dict[int, int] = {}
        self._last_claim = 0.0
        self._last_count = 0.0
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
        snapshot + journal store only; on a state store it is off."""
        return False

    def _loop_metrics(self) -> None:
        """No closed loop here (see :meth:`_closed_loop`)."""

    async def _reload_windows(self) -> None:
        """Nothing to rebuild: no window lives in this process."""

    def _persist_at_stop(self) -> None:
        """Nothing to snapshot. Dispatches still unfinished at a graceful stop give their
        leases back at once (``RetryLater`` now, attempts kept): another replica re-sends
        them without waiting for the lease to run out (a kill leaves that to the lease)."""
        if self._leased:
            now = self.clock()
            self.state.apply_marks(
                [RetryLater(i, n, now, "replica stopped") for i, n in sorted(self._leased.items())]
            )
            self._leased.clear()

    def _forget(self, sm: StateMarks) -> None:
        """Dispatch outcomes written: finished rows are no longer ours, attempts counted."""
        for m in sm.marks:
            if isinstance(m, Attempted) and m.item_id in self._leased:
                self._leased[m.item_id] = m.attempts
        for i in sm.finished:
            self._leased.pop(i, None)

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Migrated store opened by the caller; give back leases of a single-instance
        store (they were this process's before it stopped), read the deadline, start."""
        now = self.clock()
        if not self.state.shared:
            await self._in_state(lambda: self.state.rescue_expired(now, all_leases=True))
        self._open = await self._in_state(self.state.open_window_count)
        self._last_count = now
        self._next_deadline = await self._in_state(self.state.next_deadline)
        self.metrics.open_windows.set(self._open)
        loop = asyncio.get_running_loop()
        self._background = [
            loop.create_task(self._ingest_worker(), name="ingest"),
            loop.create_task(self._window_timer(), name="windows"),
            loop.create_task(self._mark_flusher(), name="marks"),
            loop.create_task(self._housekeeping(), name="housekeeping"),
            loop.create_task(self._lease_keeper(), name="leases"),
        ]
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
            },
        )

    # ------------------------------------------------------------------ ingest
    def _process_batch(self, batch: list[Item], marks: list[Mark]) -> BatchResult:
        sm = state_marks(marks)
        res, next_deadline = process_shared_batch(
            batch,
            state=self.state,
            planner=self.planner,
            registry=self.registry,
            relations=self.relations,
            as_of=self.options.as_of,
            now=self.clock(),
            marks=sm,
        )
        self._forget(sm)
        self._next_deadline = next_deadline
        return res

    def _apply_batch(self, batch: list[Item], res: BatchResult) -> None:
        self._leased.update((row, 0) for row, _t, _b in res.fired)
        self.fired_here += len(res.fired)
        super()._apply_batch(batch, res)

    # ------------------------------------------------------------------ timers
    async def _window_timer(self) -> None:
        """Poll the store: fire due windows (any replica's), rescue and claim triggers.
        An ingest batch wakes it with the store's next deadline: it asks the store only
        when that is due or a poll interval has passed -- not once per batch, a store
        round trip each that the next batch waited behind on the state thread."""
        last_poll = float("-inf")  # time.monotonic() of the last poll
        while not self._stopping:
            wait = max(0.0, last_poll + self.poll_interval_s - time.monotonic())
            nd = self._next_deadline
            if nd is not None:
                wait = max(0.0, min(wait, nd - self.clock()))
            if wait > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._window_wake.wait(), wait)
            self._window_wake.clear()
            if self._stopping:
                break
            nd = self._next_deadline
            if time.monotonic() - last_poll < self.poll_interval_s and (
                nd is None or nd > self.clock()
            ):
                continue  # woken by a batch, nothing due: wait again
            last_poll = time.monotonic()
            try:
                await self.fire_due()
                if self.clock() - self._last_claim >= self.claim_interval_s:
                    await self.claim()
                self.health.succeeded()
            except Exception:
                self.health.failed("could not fire due windows or claim triggers")
            backoff = self.health.backoff()
            if backoff:
                await asyncio.sleep(backoff)

    def _fire(self, now: float) -> tuple[list[OutboxItem], float | None]:
        """State thread: fire what is due store-wide; the next deadline; every
        :data:`COUNT_EVERY_S` the open-window count (a gauge: counting 100k rows holds the
        state thread 10-50 ms, a pause of the ingest behind it)."""
        nd = self.state.next_deadline()
        fired: list[OutboxItem] = []
        if nd is not None and nd <= now:
            fired = self.state.fire_due(now)
            nd = self.state.next_deadline()
        if now - self._last_count >= COUNT_EVERY_S:
            self._open = self.state.open_window_count()
            self._last_count = now
        return fired, nd

    async def fire_due(self) -> int:
        """Fire the windows due now, whoever opened them. Returns the count."""
        fired, self._next_deadline = await self._in_state(self._fire, self.clock())
        self._dispatch_items(fired, fired_now=True)
        self.metrics.open_windows.set(self._open)
        return len(fired)

    async def claim(self) -> int:
        """Give back expired leases (any replica's) and claim pending triggers."""
        now = self.clock()
        self._last_claim = now

        def run() -> tuple[int, list[OutboxItem]]:
            rescued = self.state.rescue_expired(now)
            return rescued, self.state.claim(now, self.claim_limit)

        rescued, items = await self._in_state(run)
        if rescued:
            logger.warning(
                "rescued %d triggers whose lease ran out (a replica stopped mid-dispatch)",
                rescued,
                extra={"rescued": rescued},
            )
        for it in items:
            self.stats.redispatched += 1
            self.metrics.redispatched.inc()
            logger.warning(
                "dispatching a claimed trigger (possible duplicate downstream)",
                extra={
                    "trigger_id": it.trigger.trigger_id,
                    "processor": it.trigger.processor,
                    "claims": it.claims,
                },
            )
        self._dispatch_items(items, fired_now=False)
        return len(items)

    def _dispatch_items(self, items: list[OutboxItem], *, fired_now: bool) -> None:
        if fired_now:
            committed: list[Committed] = [(x.item_id, x.trigger, x.body) for x in items]
            self._leased.update((x.item_id, 0) for x in items)
            self.fired_here += len(items)
            self.dispatcher.fired(committed)
            return
        for x in items:
            self._leased[x.item_id] = x.attempts
            self.dispatcher.dispatch(x.item_id, x.trigger, x.body, x.attempts)

    async def _lease_keeper(self) -> None:
        """Renew the leases of this replica's unfinished dispatches."""
        every = max(0.05, self.state.options.lease_s / 3)
        while True:
            await asyncio.sleep(every)
            ids = sorted(self._leased)
            if not ids:
                continue
            try:
                await self._in_state(self.state.extend_leases, ids, self.clock())
            except Exception:
                self.health.failed("could not renew trigger leases")

    # ------------------------------------------------------------------ marks, housekeeping
    def _write_marks_tx(self, marks: list[Mark]) -> None:
        sm = state_marks(marks)
        if sm.marks:
            self.state.apply_marks(sm.marks)
        for letter in sm.letters:
            self.state.dead_letter(letter)
        self._forget(sm)

    def _probe_store(self) -> None:
        self.state.ping()

    def _prune(self) -> int:
        o = self.options
        pruned = self.state.prune(
            Retention(
                seen_s=o.dedup_horizon_s,
                done_s=o.done_retention_s,
                dead_s=o.dead_letter_retention_s,
                completions_s=o.done_retention_s,
            ),
            self.clock(),
        )
        return pruned.seen

    async def idle(self, timeout: float = 10.0) -> bool:
        """Wait until nothing is queued, in flight, or open store-wide (tests)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self._unfinished and not self.dispatcher.tasks:
                self._open = await self._in_state(self.state.open_window_count)
                if self._open == 0:
                    await self._flush_marks()
                    return True
            await asyncio.sleep(0.01)
        return False

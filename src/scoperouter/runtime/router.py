"""The router daemon: its lifecycle (start, stop, readiness) over the parts it is built from
-- :mod:`~scoperouter.runtime.router_core` (the parts, the state thread),
:mod:`~scoperouter.runtime.router_intake` (submit, ingest batches) and
:mod:`~scoperouter.runtime.router_timers` (window timer, marks, housekeeping).

Sources (HTTP, Pub/Sub) call :meth:`Router.submit` and ack only when it returns an
:class:`Outcome` whose ``ack`` is true: by then the event's seen-id, its window updates and
any trigger it fired are committed (or the event is in the dead-letter table).

Flow (one job per module)::

    submit -> normalise -> queue -> ingest.process_batch [one transaction: dedup, engine
    (plan, windows), journal (durable_windows), fired triggers into the outbox, each with
    the mode it fires in (runtime/modes.py)] -> commit -> ack -> dispatcher
    timer -> durable_windows.fire_due [transaction: journal, outbox] -> dispatcher
    dispatcher -> row's stored mode shadow? -> logged as 'shadow', no sink (Delivery._attempt)
               -> per-processor semaphore -> sink.send with backoff -> marks (done | dead)
    marks, housekeeping -> state transactions; store_health -> /readyz; log_bridge -> log

Every engine and store operation runs on one state thread, in submission order: the event
loop keeps serving requests and dispatches while a commit fsyncs. A window with
``quiet: 0s`` fires with the event that opened it (the engine's firing order).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Mapping

from scoperouter.errors import ConfigError, ConfigIssue
from scoperouter.execution_log.api import ExecutionLog
from scoperouter.processor_registry.compiled import CompiledRegistry
from scoperouter.processor_registry.relations import RelationStore
from scoperouter.runtime import backlog, modes
from scoperouter.runtime.durable_windows import DurableWindows
from scoperouter.runtime.metrics import Metrics
from scoperouter.runtime.options import RouterOptions
from scoperouter.runtime.orphans import announce_unknown
from scoperouter.runtime.outcomes import DeadLetterPublisher, Inbound, Origin, Outcome, attribute
from scoperouter.runtime.router_intake import RouterIntake
from scoperouter.runtime.router_parts import SHUTDOWN_STORE_FAILED
from scoperouter.runtime.router_timers import RouterTimers
from scoperouter.runtime.sinks import Sink
from scoperouter.runtime.store import Store

__all__ = ["Inbound", "Origin", "Outcome", "Router", "RouterOptions", "attribute"]

logger = logging.getLogger("scoperouter.runtime")

RESTORE_FAILURES = (ValueError, KeyError, TypeError, IndexError, AttributeError, sqlite3.Error)
"""What a snapshot or journal the router cannot read (another version's, damaged) raises
while :meth:`Router.start` restores it: a one-line ConfigError naming the file."""


class Router(RouterIntake, RouterTimers):
    """Owns the durable windows, the store and the dispatcher. Single event loop."""

    def __init__(
        self,
        registry: CompiledRegistry,
        relations: RelationStore,
        store: Store,
        sinks: Mapping[str, Sink],
        *,
        fallback_sink: Sink | None = None,
        metrics: Metrics | None = None,
        options: RouterOptions | None = None,
        log: ExecutionLog | None = None,
        dead_letter_publisher: DeadLetterPublisher | None = None,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self._setup(
            registry, relations, sinks, fallback_sink, metrics, options, log,
            dead_letter_publisher, clock, rng,
        )  # fmt: skip
        self.store = store
        self.windows = DurableWindows(registry, store, self.options, self._now)
        self.dispatcher.record_aliases = bool(self.windows.loop_on)  # the ledger reads them
        self._restored = False  # start read the store's snapshot and journal

    # ------------------------------------------------------------------ health
    @property
    def ready(self) -> bool:
        """Started, not shutting down, and the store accepts writes (``/readyz``)."""
        return self._started and not self._closing and self.health.ok

    @property
    def store_healthy(self) -> bool:
        """False from a failed store write until the next one that succeeds."""
        return self.health.ok

    def store_problem(self) -> str | None:
        """Why the store makes the router not ready (for ``/readyz``), or None."""
        return self.health.problem()

    # ------------------------------------------------------------------ lifecycle
    def close_intake(self) -> None:
        """From now on :meth:`submit` answers ``unavailable`` (HTTP 503 / nack)."""
        self._closing = True

    async def start(self) -> None:
        """Restore windows (snapshot + journal), re-dispatch pending triggers, start tasks."""
        self.prune_clock.seed(self.clock())
        try:
            await self._in_state(self.windows.restore)
        except RESTORE_FAILURES as exc:
            # another version's, or damaged: never started (nor snapshot) on top of it
            why = str(exc) if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}"
            why = (why.strip().splitlines() or [type(exc).__name__])[0]
            raise ConfigError(
                [
                    ConfigIssue(
                        f"state database {self.store.path} is not usable: its windows and "
                        f"closed loop do not restore ({why})"
                    )
                ]
            ) from None
        self._restored = True
        await self._in_state(self.windows.compact, True)
        self.stats.journal_replayed = self.windows.journal_replayed
        self.stats.restored_windows = self.windows.restored_windows
        pending = backlog.announce_restart(self.store, self.metrics)
        self.stats.redispatched += pending
        modes.announce_live_backlog(self.store.live_backlog(), self.dispatcher.modes)
        announce_unknown(self._work_by_processor(), self.registry.processors, self.metrics)
        pump = self.dispatcher.start(
            self._in_state,
            functools.partial(
                backlog.page,
                self.store,
                on_alias=self.windows.alias,
                on_dead=self.windows.undelivered,
            ),
            self.store.pending_processors(),
            on_store_ok=self.health.succeeded,
            on_store_failed=self.health.failed,
            store_backoff=self.health.backoff,
        )
        self.metrics.open_windows.set(self.open_window_count())
        # read at scrape time: a window held with no timeout changes nothing the router
        # would otherwise wake up for, and its wait must still show as it grows
        self.metrics.triggers_held_oldest.set_function(self._held_oldest_s)
        loop = self._running_loop()  # (known to the log thread's failure report)
        self._background = [
            loop.create_task(self._ingest_worker(), name="ingest"),
            loop.create_task(self._window_timer(), name="windows"),
            loop.create_task(self._mark_flusher(), name="marks"),
            loop.create_task(self._housekeeping(), name="housekeeping"),
            pump,  # pages waiting triggers from the store (cancelled with the others)
        ]
        self.supervisor.watch(self._background)
        self._started = True
        logger.info(
            "router started",
            extra={
                "open_windows": self.open_window_count(),
                "journal_replayed": self.stats.journal_replayed,
                "redispatched": pending,
            },
        )

    def _work_by_processor(self) -> dict[str, tuple[int, int]]:
        """Open windows and pending triggers per processor (a start-up count)."""
        windows = Counter(w.processor for w in self.book.states())
        pending = self.store.pending_by_processor()
        return {p: (windows[p], pending.get(p, 0)) for p in windows.keys() | pending.keys()}

    async def stop(self, timeout: float = 8.0) -> None:
        """Stop intake, process what is queued (up to ``timeout``; the batch whose
        transaction runs then is answered and logged, the rest is answered unavailable:
        every message is answered before the dispatches are waited for), keep open windows
        durable, wait for in-flight dispatches (up to ``timeout``); unfinished ones stay
        pending."""
        deadline = time.monotonic() + timeout
        self._closing = True
        # let the ingest worker drain what was already submitted
        while self._unfinished and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        self._stopping = True  # the ingest worker starts no transaction from now on
        await self.dispatcher.stop_pump()  # nothing new starts; the backlog stays in the store
        self._window_wake.set()
        if self._in_batch is not None:  # the state thread runs its transaction to its end
            # (the jobs below wait behind it): let it be answered (ack / nack) and logged,
            # then the worker ends by itself. One still running at the deadline (waiting on
            # a lock) has its statement cancelled where the store can (PostgreSQL): the
            # batch fails, nacked, and the stop goes on. Cancelled again every second while
            # it runs: PostgreSQL ignores a cancel landing between two of its statements
            left = max(0.0, deadline - time.monotonic())
            _done, running = await asyncio.wait([self._in_batch], timeout=left)
            while running:
                await self._interrupt_state()
                _done, running = await asyncio.wait(running, timeout=1.0)
        for t in self._background:
            t.cancel()  # tasks are cancelled between state-thread jobs, never inside one
        for t in self._background:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        # fail anything still queued so its source nacks / answers 503: every message is
        # answered before the dispatches are waited for (a Pub/Sub source closes its pull
        # once its messages are answered)
        while not self._queue.empty() or self._heavy:
            self._refuse([self._heavy.popleft() if self._heavy else self._queue.get_nowait()])
        inflight = self.dispatcher.tasks
        if inflight:
            left = max(0.1, deadline - time.monotonic())
            _done, still = await asyncio.wait(set(inflight), timeout=left)
            for t in still:
                t.cancel()
            if still:
                await asyncio.wait(still, timeout=1.0)
                logger.warning(
                    "shutdown: %d dispatches unfinished; they stay pending and are re-dispatched "
                    "at the next start",
                    len(still),
                )
        try:
            await self._flush_marks()
            await self._in_state(self._persist_at_stop)
        except Exception as exc:  # a failing store must not turn SIGTERM into a traceback
            self.stopped_clean = False
            n, why = len(self.marks.take()), f"{type(exc).__name__}: {exc}"
            logger.error(SHUTDOWN_STORE_FAILED, why, n)
        self._state.shutdown(wait=True)
        self.log_bridge.shutdown(timeout=max(0.1, deadline - time.monotonic()))
        logger.info("router stopped", extra={"open_windows": self.open_window_count()})

    async def _interrupt_state(self) -> None:
        """Cut short the state-thread job in flight (stop, past its deadline); here
        nothing: SQLite's own busy timeout bounds a wait."""

    def _persist_at_stop(self) -> None:
        """State thread, last job: a window snapshot (the next start replays nothing) --
        none when the start did not restore the store's (it would replace what is there)."""
        if self._restored:
            self.windows.compact(True)

    def set_relations(self, relations: RelationStore) -> None:
        """Use new relation data from the next batch on (hot reload). The reference is
        swapped whole: a batch already being planned keeps the data it started with."""
        self.relations = relations

    # ------------------------------------------------------------------ introspection
    async def idle(self, timeout: float = 10.0) -> bool:
        """Wait until nothing is queued, in flight (marks being written too), or open."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self._unfinished and self.dispatcher.quiet and self.open_window_count() == 0:
                await self._flush_marks(barrier=True)
                return True
            await asyncio.sleep(0.01)
        return False

"""The router daemon's core: lifecycle and the event-loop side of ingest, timers and marks.

Sources (HTTP, Pub/Sub) call :meth:`Router.submit` and ack only when it returns an
:class:`Outcome` whose ``ack`` is true: by then the event's seen-id, its window updates and
any trigger it fired are committed (or the event is in the dead-letter table).

Flow (one job per module)::

    submit -> normalise -> queue -> ingest.process_batch [one transaction: dedup, engine
    (plan, windows), journal (durable_windows), fired triggers into the outbox] -> commit
    -> ack -> dispatcher
    timer -> durable_windows.fire_due [transaction: journal, outbox] -> dispatcher
    dispatcher -> mode shadow? -> logged as 'shadow', no sink (Dispatcher._deliver, the one place)
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
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from scoperouter.errors import EventError
from scoperouter.execution_log.api import ExecutionLog
from scoperouter.messages.models import Event
from scoperouter.processor_registry.compiled import CompiledRegistry
from scoperouter.processor_registry.relations import RelationStore
from scoperouter.router.windows import WindowBook
from scoperouter.runtime import backlog, housekeeping, intake
from scoperouter.runtime.batch_counts import count_committed, count_received
from scoperouter.runtime.dispatcher import Dispatcher
from scoperouter.runtime.durable_windows import DurableWindows
from scoperouter.runtime.ingest import BatchResult, Item, process_batch
from scoperouter.runtime.intake import IntakeQueue, Settle, parse_inbound, take_lingering
from scoperouter.runtime.log_bridge import LogBridge
from scoperouter.runtime.loop_runtime import is_report
from scoperouter.runtime.marks import Mark, MarkQueue, write_marks
from scoperouter.runtime.metrics import Metrics, observe_n
from scoperouter.runtime.options import RouterOptions
from scoperouter.runtime.outcomes import DeadLetterPublisher, Inbound, Origin, Outcome, attribute
from scoperouter.runtime.router_parts import SHUTDOWN_STORE_FAILED, Stats, is_heavy
from scoperouter.runtime.sinks import Sink
from scoperouter.runtime.state_jobs import StateThread, in_state
from scoperouter.runtime.store import Store
from scoperouter.runtime.store_health import StoreHealth
from scoperouter.runtime.supervise import Supervisor
from scoperouter.runtime.undeclared_reads import UndeclaredReads
from scoperouter.runtime.unknown_sources import UnknownSources

__all__ = ["Inbound", "Origin", "Outcome", "Router", "RouterOptions", "attribute"]

logger = logging.getLogger("scoperouter.runtime")
_T = TypeVar("_T")


class Router:
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

    def _now(self) -> float:  # the parts follow a clock replaced later (tests)
        return self.clock()

    # fmt: off
    def _setup(self, registry: CompiledRegistry, relations: RelationStore,
               sinks: Mapping[str, Sink], fallback_sink: Sink | None, metrics: Metrics | None,
               options: RouterOptions | None, log: ExecutionLog | None,
               dead_letter_publisher: DeadLetterPublisher | None, clock: Callable[[], float],
               rng: random.Random | None) -> None:
        # fmt: on
        """Everything but the state (shared with :class:`~scoperouter.runtime.shared_router.SharedRouter`)."""
        self.registry = registry
        self.relations = relations  # replaced whole by set_relations (hot reload)
        self.metrics = metrics or Metrics()
        self.options = options or RouterOptions()
        self.log = log
        self.clock = clock
        self.rng = rng or random.Random()
        self.unknown_sources = UnknownSources(self.metrics, clock)
        self.undeclared_reads = UndeclaredReads(self.metrics, clock)
        self.stats = Stats()
        self.health = StoreHealth(self.options, self.rng)
        now = self._now
        self.log_bridge = LogBridge(log, registry)
        self.marks = MarkQueue()
        self.dispatcher = Dispatcher(
            registry, sinks, fallback_sink, self.metrics, self.options, self.marks,
            self.log_bridge, dead_letter_publisher, now, self.rng,
        )  # fmt: skip
        self._queue: IntakeQueue[Item] = IntakeQueue()
        self._loop: asyncio.AbstractEventLoop | None = None  # _running_loop()
        self._background: list[asyncio.Task[None]] = []
        self._window_wake = asyncio.Event()
        self._state = StateThread("scoperouter-state_0")
        self._stopping = False
        # the background tasks: one ending on its own is a fatal internal error (supervise)
        self.supervisor = Supervisor(lambda: self._stopping)
        self.dispatcher.on_task_failed = self.supervisor.failed  # deliveries, too
        self.log_bridge.on_failure = self._log_thread_failed  # and the log thread
        self._unfinished = 0  # submitted to the ingest queue, not yet answered
        self._parked_dropped_seen = 0  # the ledger's parked_dropped already counted
        self._submitted = 0  # submitted to the ingest queue ever (a stream's activity)
        self._closing = False
        self._started = False
        self._heavy: deque[Item] = deque()  # heavy events taken off the queue, not yet run
        self._in_batch: asyncio.Task[Any] | None = None  # the ingest worker, in a transaction
        self.stopped_clean = True  # False: the store failed while stopping (logged once)

    @property
    def book(self) -> WindowBook:
        """The open windows (read on the event loop for gauges and tests only)."""
        return self.windows.book

    def open_window_count(self) -> int:
        """Open windows (gauges, :meth:`idle`, logs)."""
        return self.book.open_count

    def _in_state(self, fn: Callable[..., _T], *args: Any) -> Awaitable[_T]:
        """Run ``fn`` on the state thread (never cancelled half-way: see
        :func:`~scoperouter.runtime.state_jobs.in_state`); await the result."""
        return in_state(self._running_loop(), self._state, fn, *args)  # (no coroutine of its own)

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        """The router's event loop (asked once: ``asyncio.get_running_loop`` makes a
        ``getpid`` system call each time)."""
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        return loop

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

    async def _reload_windows(self) -> None:
        """After a failed transaction: drop the engine's uncommitted changes."""
        try:
            await self._in_state(self.windows.restore)
        except Exception:
            self.windows.stale = True  # retried before the next transaction
            self.health.failed("could not reload windows from the store")

    # ------------------------------------------------------------------ lifecycle
    def close_intake(self) -> None:
        """From now on :meth:`submit` answers ``unavailable`` (HTTP 503 / nack)."""
        self._closing = True

    async def start(self) -> None:
        """Restore windows (snapshot + journal), re-dispatch pending triggers, start tasks."""
        await self._in_state(self.windows.restore)
        await self._in_state(self.windows.compact, True)
        self.stats.journal_replayed = self.windows.journal_replayed
        self.stats.restored_windows = self.windows.restored_windows
        pending = backlog.announce_restart(self.store, self.metrics)
        self.stats.redispatched += pending
        pump = self.dispatcher.start(
            self._in_state,
            functools.partial(backlog.page, self.store, on_alias=self.windows.alias),
            self.store.pending_processors(),
            on_store_ok=self.health.succeeded,
            on_store_failed=self.health.failed,
            store_backoff=self.health.backoff,
        )
        self.metrics.open_windows.set(self.open_window_count())
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

    def _log_thread_failed(self, exc: BaseException) -> None:
        """The execution log's thread died (on that thread): a fatal internal error."""
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(self.supervisor.report, "the execution log thread", exc)

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
        if self._in_batch is not None:  # its transaction cannot be interrupted (the state
            # thread runs it to its end, and the jobs below wait behind it): let it be
            # answered (ack / nack) and logged, then the worker ends by itself
            await asyncio.wait([self._in_batch])
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

    def _persist_at_stop(self) -> None:
        """State thread, last job: a window snapshot (the next start replays nothing)."""
        self.windows.compact(True)

    def set_relations(self, relations: RelationStore) -> None:
        """Use new relation data from the next batch on (hot reload). The reference is
        swapped whole: a batch already being planned keeps the data it started with."""
        self.relations = relations

    # ------------------------------------------------------------------ intake
    async def submit(self, inbound: Inbound) -> Outcome:
        """Route one message; returns once it is durably handled (see :class:`Outcome`)."""
        fut: asyncio.Future[Outcome] = self._running_loop().create_future()
        refused = self.enqueue(inbound, fut)
        # no shield: a cancelled caller cancels only its own future; the queued item is
        # still committed (its answer is dropped: ``fut.done()``)
        return refused if refused is not None else await fut

    def enqueue(self, inbound: Inbound, settle: Settle) -> Outcome | None:
        """Queue one message without waiting: ``settle`` gets what :meth:`submit` would
        return, once, after its batch commits (or fails). Returns the answer instead (and
        never touches ``settle``) when the message is refused at once (not ready, rejected)."""
        if not self._started or self._closing:
            # a failing store still takes submissions: each batch retries it (503 store_error
            # when it fails), and the first one that commits makes the router ready again
            return Outcome(
                "unavailable", reason="not_ready" if not self._closing else "shutting_down"
            )
        # received: counted per batch; ``event`` set: a source's fast path parsed it already
        ev = inbound.event
        parsed = ev if ev is not None else parse_inbound(inbound, self.registry)
        if (
            isinstance(parsed, EventError)
            and not inbound.dead_letter_on_reject
            and not (self._closed_loop() and is_report(inbound))  # a completion report
        ):
            self.metrics.child(self.metrics.events_received, inbound.origin).inc()
            self.metrics.events_rejected.labels(parsed.reason).inc()
            return Outcome("rejected", parsed.event_id, parsed.reason, parsed.detail)
        self._queue.put_nowait(Item(inbound, parsed, settle))
        self._unfinished += 1
        self._submitted += 1
        return None

    async def _ingest_worker(self) -> None:
        """Batches of light events, each followed by at most one heavy event (a long
        backfill) in a transaction of its own: a small event waits for one heavy event at
        most, never for a queue of them (issue 18), and heavy ones are never starved.
        After a failed transaction the next waits the store's backoff: a message nacked
        for it comes straight back (Pub/Sub redelivers at once), and retrying it at once
        spun on the failing store."""
        heavy = self._heavy
        failed = False
        while not self._stopping:  # (a stop waits for the batch in flight: see stop)
            if failed:
                failed = False
                backoff = self.health.backoff()
                if backoff:
                    await asyncio.sleep(backoff)
            if self.log_bridge.full:  # backpressure: the execution log is behind
                await self.log_bridge.room()
            if not heavy or not self._queue.empty():
                o, q = self.options, self._queue
                if len(q) >= min(o.max_batch, intake.LINGER_BELOW):  # a batch already: no wait
                    items = [q.get_nowait() for _ in range(min(len(q), o.max_batch))]
                else:
                    items = await take_lingering(q, o.max_batch, o.ingest_linger_s)
                light: list[Item] = []
                for i in items:
                    ev = i.parsed
                    # dated: never heavy (no call, no ABC isinstance on a pydantic model)
                    if ev.__class__ is Event and ev.game_date is not None:
                        light.append(i)
                    else:
                        (heavy if is_heavy(i) else light).append(i)
                if light:
                    failed = not await self._run_batch(light)
            if heavy and not failed and not self._stopping:
                failed = not await self._run_batch([heavy.popleft()])

    async def _run_batch(self, batch: list[Item]) -> bool:
        """One ingest transaction for ``batch``; answers every item's future. False when
        the transaction failed. Past the stop's drain deadline none starts: 503 / nack."""
        if self._stopping:
            self._unfinished -= len(batch)
            self._refuse(batch)
            return False
        count_received(self.metrics, batch)
        marks, t0 = self.marks.take(), time.perf_counter()
        self._in_batch = asyncio.current_task()
        try:
            result = await self._in_state(self._process_batch, batch, marks)
        except Exception:
            self.health.failed(
                "ingest transaction failed; messages will be retried by their source"
            )
            self.marks.put_back(marks)
            for item in batch:
                if not item.fut.done():
                    item.fut.set_result(Outcome("unavailable", reason="store_error"))
            # the engine may hold uncommitted changes
            await self._reload_windows()
            return False
        else:
            observe_n(self.metrics.ingest_seconds, time.perf_counter() - t0, 1)
            self.health.succeeded()
            self._apply_batch(batch, result)
            return True
        finally:
            self._unfinished -= len(batch)
            self._in_batch = None

    def _refuse(self, items: list[Item]) -> None:
        """Answer ``items`` ``unavailable`` (shutting down): their sources nack / 503."""
        count_received(self.metrics, items)
        for item in items:
            if not item.fut.done():
                item.fut.set_result(Outcome("unavailable", reason="shutting_down"))

    def _process_batch(self, batch: list[Item], marks: list[Mark]) -> BatchResult:
        """State thread: one transaction for the batch (see :mod:`scoperouter.runtime.ingest`)."""
        return process_batch(
            batch,
            store=self.store,
            windows=self.windows,
            relations=self.relations,  # one consistent view for the batch
            as_of=self.options.as_of,
            now=self.clock(),
            write_marks=lambda: write_marks(self.store, marks, self.windows.alias),
        )

    def _apply_batch(self, batch: list[Item], res: BatchResult) -> None:
        """After the commit (event loop): count, ack, dispatch."""
        count_committed(self.metrics, len(batch), res)
        sources = self.registry.sources
        noted = res.noted if res.noted is not None else [d[0] for d in res.decided]
        for ev in noted:
            if ev.source not in sources:
                self.unknown_sources.observe(ev.source, ev.event_id)
            if ev.referenced_tables:
                self.undeclared_reads.observe(self.registry, ev)
        self.log_bridge.batch(res.decided, res.now_dt, res.as_of, res.relations)  # one hand-off
        for item, out in res.outcomes:
            if not item.fut.done():
                item.fut.set_result(out)
        self.dispatcher.fired(res.fired)
        self.metrics.open_windows.set(self.open_window_count())
        self._loop_metrics()
        for payload in res.dead_payloads:
            self.dispatcher.publish_dead_letter(payload)
        self._window_wake.set()

    # ------------------------------------------------------------------ windows
    async def _window_timer(self) -> None:
        while not self._stopping:
            deadline = self.windows.next_deadline
            timeout = None if deadline is None else max(0.0, deadline - self.clock())
            if timeout is None or timeout > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._window_wake.wait(), timeout)
            self._window_wake.clear()
            if not self._stopping:
                await self.fire_due()
                backoff = self.health.backoff()
                if backoff:
                    await asyncio.sleep(backoff)

    async def fire_due(self) -> int:
        """Fire the windows due now (the timer task calls this). Returns the count."""
        nd = self.windows.next_deadline
        if nd is None or nd > self.clock():
            return 0
        marks = self.marks.take()
        try:
            fired = await self._in_state(
                self.windows.fire_due, lambda: write_marks(self.store, marks, self.windows.alias)
            )
        except Exception:
            self.health.failed("could not persist due windows")
            self.marks.put_back(marks)
            await self._reload_windows()
            return 0
        self.health.succeeded()
        self.dispatcher.fired(fired)
        self.metrics.open_windows.set(self.open_window_count())
        self._loop_metrics()
        return len(fired)

    def _closed_loop(self) -> bool:
        """True when the closed loop (docs/ledger.md) runs: completion reports are routed."""
        return bool(self.windows.loop_on)

    def _loop_metrics(self) -> None:
        """The closed loop's gauges and counters (docs/ledger.md)."""
        loop = self.windows.engine.loop
        if loop is None:
            return
        m = self.metrics
        for n in self.windows.take_notices():
            m.trigger_outcomes.labels(n.kind).inc()
            if n.kind == "timed_out":
                m.triggers_timed_out.inc()
        m.triggers_open.set(loop.ledger.open_count)
        m.triggers_held.set(len(loop.barrier.held))
        m.completions_parked.set(loop.ledger.parked_count)
        # the ledger only counts up (written by the state thread); a rebuilt one starts at 0
        dropped, seen = loop.ledger.parked_dropped, self._parked_dropped_seen
        if dropped != seen:
            m.completions_unmatched.inc(dropped - seen if dropped > seen else dropped)
            self._parked_dropped_seen = dropped

    # ------------------------------------------------------------------ marks, housekeeping
    def _write_marks_tx(self, marks: list[Mark]) -> None:
        with self.store.transaction():
            write_marks(self.store, marks, self.windows.alias)

    async def _flush_marks(self, barrier: bool = False) -> None:
        marks = self.marks.take()  # barrier: even none, to finish behind a write already out
        if not marks and not barrier:
            return
        try:
            await self._in_state(self._write_marks_tx, marks)
        except BaseException:
            self.marks.put_back(marks)
            raise

    async def _mark_flusher(self) -> None:
        last_log_flush = time.monotonic()
        while True:
            await asyncio.sleep(self.options.mark_flush_interval_s + self.health.backoff())
            try:
                if self.marks:
                    await self._flush_marks()
                    self.health.succeeded()
                elif not self.health.ok:
                    await self._in_state(self._probe_store)  # nothing else may write: probe
                    self.health.succeeded()
            except Exception:
                self.health.failed("could not record dispatch outcomes (will retry)")
            if time.monotonic() - last_log_flush > 1.0:
                last_log_flush = time.monotonic()
                self.log_bridge.flush()

    def _probe_store(self) -> None:
        with self.store.transaction():
            self.store.set_meta("probe", repr(self.clock()))

    async def _housekeeping(self) -> None:
        """A bounded prune pass every ``housekeeping_interval_s``; while a pass leaves rows
        past a horizon (it reached its limit), the next follows after a short pause, each
        pass one state job (the ingest's jobs queued meanwhile run in between)."""
        more = False
        while True:
            await asyncio.sleep(
                housekeeping.CATCH_UP_PAUSE_S if more else self.options.housekeeping_interval_s
            )
            try:
                pruned, more = await self._in_state(self._prune)
                if pruned:
                    logger.info("pruned %d seen ids past the dedup horizon", pruned)
            except Exception:
                more = False
                self.health.failed("housekeeping failed")

    def _prune(self) -> tuple[int, bool]:
        """One prune pass: the seen ids pruned, and whether rows past a horizon may be left
        (a statement deleted its limit)."""
        return housekeeping.prune(self.store, self.options, self.clock())

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

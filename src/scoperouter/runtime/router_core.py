"""What every part of the router shares: its parts built once, the state thread, and the
window views and closed-loop gauges both the ingest and the timers update.

Invariant: every engine and store operation runs on the one state thread
(:meth:`RouterCore._in_state`), in submission order, and is never cancelled half-way; after a
failed transaction the engine's uncommitted changes are dropped (:meth:`_reload_windows`)
before the next one. The parts' clock is the router's own (``_now``), so a clock replaced
later is followed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

from scoperouter.execution_log.api import ExecutionLog
from scoperouter.processor_registry.compiled import CompiledRegistry
from scoperouter.processor_registry.relations import RelationStore
from scoperouter.router.windows import WindowBook
from scoperouter.runtime.bounded_clock import BoundedClock
from scoperouter.runtime.dispatcher import Dispatcher
from scoperouter.runtime.durable_windows import DurableWindows
from scoperouter.runtime.ingest import Item
from scoperouter.runtime.intake import IntakeQueue
from scoperouter.runtime.letter_copies import LetterCopies
from scoperouter.runtime.log_bridge import LogBridge
from scoperouter.runtime.marks import MarkQueue
from scoperouter.runtime.metrics import Metrics
from scoperouter.runtime.options import RouterOptions
from scoperouter.runtime.outcomes import DeadLetterPublisher
from scoperouter.runtime.router_parts import Stats
from scoperouter.runtime.sinks import Sink
from scoperouter.runtime.state_jobs import StateThread, in_state
from scoperouter.runtime.store import Store
from scoperouter.runtime.store_health import StoreHealth
from scoperouter.runtime.supervise import Supervisor
from scoperouter.runtime.undeclared_reads import UndeclaredReads
from scoperouter.runtime.unknown_sources import UnknownSources

logger = logging.getLogger("scoperouter.runtime")
EVICTION_LOG_EVERY_S = 60.0  # at most one WARNING this often while completion ids are evicted

_T = TypeVar("_T")


class RouterCore:
    """The base of :class:`~scoperouter.runtime.router.Router`: its parts and the state thread
    (``store`` and ``windows`` are set by the router's ``__init__``)."""

    store: Store
    windows: DurableWindows

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
        # housekeeping's clock: the wall clock never advancing faster than monotonic time
        # (seeded by start; ``prune_clock.monotonic`` is replaced by tests)
        self.prune_clock = BoundedClock("housekeeping (dedup horizon and retentions)")
        self.rng = rng or random.Random()
        self.unknown_sources = UnknownSources(self.metrics, clock)
        self.undeclared_reads = UndeclaredReads(self.metrics, clock)
        self.stats = Stats()
        self.health = StoreHealth(self.options, self.rng)
        now = self._now
        self.log_bridge = LogBridge(log, registry)
        self.metrics.watch_log(self.log_bridge)  # its queue, read at each scrape
        self.marks = MarkQueue()
        self.dispatcher = Dispatcher(
            registry, sinks, fallback_sink, self.metrics, self.options, self.marks,
            self.log_bridge, dead_letter_publisher, now, self.rng,
        )  # fmt: skip
        # rejected events' dead letters owed to the dead-letter topic (letter_copies)
        self.letter_copies = (
            None
            if dead_letter_publisher is None
            else LetterCopies(
                dead_letter_publisher, self._owed_letters, self._copied_letters, self.metrics
            )
        )
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
        self._evicted_seen: dict[str, int] = {}  # the ledger's applied_evicted already counted
        self._evicted_unlogged: dict[str, int] = {}  # counted, not logged yet
        self._evicted_logged_at: float | None = None
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

    def _copy_letters(self) -> None:
        """Start a pass of the dead-letter topic's copier, when a topic is configured (a
        batch stored a letter owed; each housekeeping pass): one runs at a time."""
        copies = self.letter_copies
        if copies is not None and copies.wanted():
            self.dispatcher._spawn(copies.run())

    def _owed_letters(self, limit: int) -> Awaitable[list[tuple[int, bytes]]]:
        return self._in_state(self._letters_owed, limit)

    def _copied_letters(self, ids: Sequence[int]) -> Awaitable[int]:
        return self._in_state(self._letters_copied, ids)

    def _letters_owed(self, limit: int) -> list[tuple[int, bytes]]:
        """State thread: up to ``limit`` records owed to the dead-letter topic, by id."""
        raise NotImplementedError

    def _letters_copied(self, ids: Sequence[int]) -> int:
        """State thread: the records of the letters ``ids`` went out."""
        raise NotImplementedError

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        """The router's event loop (asked once: ``asyncio.get_running_loop`` makes a
        ``getpid`` system call each time)."""
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        return loop

    def _log_thread_failed(self, exc: BaseException) -> None:
        """The execution log's thread died (on that thread): a fatal internal error."""
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(self.supervisor.report, "the execution log thread", exc)

    async def _reload_windows(self) -> None:
        """After a failed transaction: drop the engine's uncommitted changes."""
        try:
            await self._in_state(self.windows.restore)
        except Exception:
            self.windows.stale = True  # retried before the next transaction
            self.health.failed("could not reload windows from the store")
    def _closed_loop(self) -> bool:
        """True when the closed loop (docs/ledger.md) runs: completion reports are routed."""
        return bool(self.windows.loop_on)

    def _ledger_reports(self) -> bool:
        """True when the completions reported for backfill runs are recorded in the state
        store's completion ledger (a shared store: the replica running a backfill reads
        them there, whichever replica received them); here the execution log keeps them."""
        return False

    def _held_oldest_s(self) -> float:
        """Seconds the longest-held barrier window has waited, by the router's clock (0: none,
        or no closed loop): ``scoperouter_triggers_held_oldest_seconds``."""
        loop = self.windows.engine.loop
        oldest = loop.barrier.oldest_held_at() if loop is not None else None
        return 0.0 if oldest is None else max(0.0, self.clock() - oldest)

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
        self._count_evicted(loop.ledger.applied_evicted)

    def _count_evicted(self, evicted: dict[str, int]) -> None:
        """Completion ids the ledger dropped for room before their day (its applied-ids
        memory covers less than its horizon): counted, and logged at most once a minute."""
        for memory, n in evicted.items():
            seen = self._evicted_seen.get(memory, 0)
            if n != seen:  # (a rebuilt ledger starts at 0)
                new = n - seen if n > seen else n
                self.metrics.completion_ids_evicted.labels(memory).inc(new)
                self._evicted_unlogged[memory] = self._evicted_unlogged.get(memory, 0) + new
                self._evicted_seen[memory] = n
        now = self.clock()
        last = self._evicted_logged_at
        if self._evicted_unlogged and (last is None or now - last >= EVICTION_LOG_EVERY_S):
            logger.warning(
                "completion ids dropped from the ledger's memory before their day: a"
                " redelivery of one is applied again (a report naming only its processor"
                " and date, without a time, may close a newer trigger)",
                extra={"evicted": dict(self._evicted_unlogged)},
            )
            self._evicted_unlogged, self._evicted_logged_at = {}, now

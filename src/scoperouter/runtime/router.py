"""The router core: durable ingest, live windows and dispatch (transport-agnostic).

Sources (HTTP, Pub/Sub) call :meth:`Router.submit` and ack only when it returns an
:class:`Outcome` whose ``ack`` is true: by then the event's seen-id, its window updates and
any trigger it fired are committed to SQLite (or the event is in the dead-letter table).

Flow::

    submit -> normalise -> queue -> [one transaction per batch: dedup, plan, WindowBook.add,
    journal, fired triggers into the outbox] -> commit -> ack -> dispatch
    timer  -> WindowBook.due(now) -> [transaction: journal, outbox] -> dispatch
    dispatch -> mode shadow? -> done, logged as 'shadow', no sink called
             -> per-processor semaphore -> sink.send with backoff -> done | dead letter

Shadow mode (``mode: shadow`` per processor, or ``serve --shadow`` for all) is decided in
one place, :meth:`Router._deliver`: everything before it (planning, windows, outbox,
execution log) is the same as live.

A window with ``quiet: 0s`` fires as soon as the event that opened it is processed (the
book is asked for due windows after every event), so zero-length windows coalesce nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import sqlite3
import time
from collections import Counter as CounterT
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Literal, TypeVar

from scoperouter.errors import DispatchError, EventError
from scoperouter.execution_log.api import ExecutionLog
from scoperouter.execution_log.completions import completion_from_event
from scoperouter.messages.models import Event, Trigger
from scoperouter.messages.normalize import normalize_event, parse_event_bytes
from scoperouter.processor_registry.compiled import CompiledRegistry
from scoperouter.processor_registry.relations import RelationStore
from scoperouter.router.decisions import Decision
from scoperouter.router.planner import plan
from scoperouter.router.windows import WindowBook
from scoperouter.runtime.metrics import Metrics
from scoperouter.runtime.sinks import Sink, trigger_bytes, trigger_json
from scoperouter.runtime.store import Store

logger = logging.getLogger("scoperouter.runtime")

LIVE, SHADOW = "live", "shadow"  # a processor's dispatch mode (routes.yaml ``mode``)
_T = TypeVar("_T")

Origin = Literal["http", "push", "pubsub", "test"]


DeadLetterPublisher = Callable[[dict[str, Any]], Awaitable[None]]


def attribute(attributes: object, key: str) -> str | None:
    """One non-empty string attribute of a Pub/Sub message (pulled or pushed), else None."""
    if attributes is None or not hasattr(attributes, "get"):
        return None
    value = attributes.get(key)
    return value if isinstance(value, str) and value else None


@dataclass(frozen=True)
class Inbound:
    """One message from a source. ``data`` (raw bytes) or ``obj`` (parsed JSON)."""

    origin: Origin
    data: bytes | None = None
    obj: object = None
    message_id: str | None = None
    # Pub/Sub messages (pull or push) cannot be "answered": an invalid one is stored in the
    # dead-letter table and acked. Plain HTTP callers get a 400 instead.
    dead_letter_on_reject: bool = False
    # the run a processor's completion event reports on (Pub/Sub attribute ``trigger_id``,
    # set by the SDK's CompletionPublisher): its completion row is matched to that run
    trigger_id: str | None = None


@dataclass(frozen=True)
class Outcome:
    status: Literal["accepted", "duplicate", "rejected", "unavailable"]
    event_id: str | None = None
    reason: str | None = None
    detail: str | None = None
    triggers: int = 0
    dead_lettered: bool = False

    @property
    def ack(self) -> bool:
        """True when the message is durably handled (ack / 2xx); False: nack / 503."""
        return self.status in ("accepted", "duplicate") or (
            self.status == "rejected" and self.dead_lettered
        )


@dataclass
class RouterOptions:
    as_of: date | None = None  # None = today (UTC) at each batch
    dedup_horizon_s: float = 86400.0
    max_batch: int = 512
    backoff_base_s: float = 0.5
    backoff_cap_s: float = 60.0
    compact_every: int = 20000  # journal rows before a snapshot
    compact_min_interval_s: float = 5.0
    mark_flush_interval_s: float = 0.05
    housekeeping_interval_s: float = 60.0
    done_retention_s: float = 7 * 86400.0
    # dead trigger rows and dead letters (inspect them before they go; a dead-letter topic,
    # when configured, keeps its own copy)
    dead_letter_retention_s: float = 7 * 86400.0
    # a failing store (disk full, read-only, I/O errors): retries back off exponentially
    # from base to cap; repeated failures are logged at most once per log interval
    store_backoff_base_s: float = 0.05
    store_backoff_cap_s: float = 5.0
    store_log_interval_s: float = 30.0
    # serve --shadow: every processor in shadow mode, whatever routes.yaml says
    shadow: bool = False


@dataclass
class _Item:
    inbound: Inbound
    parsed: Event | EventError
    fut: asyncio.Future[Outcome]


@dataclass
class _BatchResult:
    now_dt: datetime
    as_of: date
    relations: RelationStore  # the data the whole batch was planned with
    outcomes: list[tuple[_Item, Outcome]] = field(default_factory=list)
    fired: list[tuple[int, Trigger, bytes]] = field(default_factory=list)
    decided: list[tuple[Event, tuple[Decision, ...], str | None]] = field(default_factory=list)
    rejects: list[tuple[str, bool]] = field(default_factory=list)
    dead_payloads: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _Stats:
    redispatched: int = 0
    restored_windows: int = 0
    journal_replayed: int = 0
    extras: dict[str, int] = field(default_factory=dict)


class Router:
    """Owns the WindowBook, the store and the dispatcher. Single event loop, single thread."""

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
        self.registry = registry
        self.relations = relations  # replaced whole by set_relations (hot reload)
        self.store = store
        self.sinks = dict(sinks)
        self.fallback_sink = fallback_sink
        self.metrics = metrics or Metrics()
        self.options = options or RouterOptions()
        self.log = log
        self.dead_letter_publisher = dead_letter_publisher
        self.clock = clock
        self.rng = rng or random.Random()
        self.book = WindowBook(registry)
        self.stats = _Stats()
        self._queue: asyncio.Queue[_Item] = asyncio.Queue()
        self._semaphores = {
            name: asyncio.Semaphore(cp.target.concurrency)
            for name, cp in registry.processors.items()
        }
        self._default_sem = asyncio.Semaphore(registry.spec.defaults.target.concurrency)
        self._marks: list[tuple[str, tuple[Any, ...]]] = []
        self._dispatching: set[asyncio.Task[None]] = set()
        self._background: list[asyncio.Task[None]] = []
        self._window_wake = asyncio.Event()
        # Every WindowBook and SQLite operation runs on this one thread, in submission
        # order: the event loop keeps serving requests and dispatches while a commit
        # fsyncs, and the book is never touched by two threads.
        self._state = ThreadPoolExecutor(max_workers=1, thread_name_prefix="scoperouter-state")
        self._log_exec = ThreadPoolExecutor(max_workers=1, thread_name_prefix="scoperouter-log")
        self._next_deadline: float | None = None
        self._stopping = False
        self._unfinished = 0  # submitted to the ingest queue, not yet answered
        self._closing = False
        self._started = False
        self._journal_rows = 0
        self._last_compact = 0.0
        self._jbuf: list[tuple[str, float, str | None, str | None]] = []
        self._persisted_empty = False  # the store holds an empty book (empty snapshot, no journal)
        self._on_commit: tuple[bool, int] | None = (
            None  # (_persisted_empty, _journal_rows) on commit
        )
        self._book_stale = False  # a failed transaction left uncommitted changes in the book
        self._store_ok = True
        self._store_failures = 0  # consecutive failed store operations
        self._store_last_log = 0.0
        self._store_unlogged = 0

    async def _in_state(self, fn: Callable[..., _T], *args: Any) -> _T:
        """Run ``fn`` on the state thread (never cancelled half-way: shielded)."""
        fut = asyncio.get_running_loop().run_in_executor(self._state, fn, *args)
        return await asyncio.shield(fut)

    # ------------------------------------------------------------------ lifecycle
    @property
    def ready(self) -> bool:
        """Started, not shutting down, and the store accepts writes (``/readyz``)."""
        return self._started and not self._closing and self._store_ok

    @property
    def store_healthy(self) -> bool:
        """False from a failed store write until the next one that succeeds."""
        return self._store_ok

    def store_problem(self) -> str | None:
        """Why the store makes the router not ready (for ``/readyz``), or None."""
        if self._store_ok:
            return None
        return f"state store failing ({self._store_failures} failed writes); retrying with backoff"

    def _store_failed(self, what: str) -> None:
        """Count a failed store operation; log it with its traceback the first time, then
        at most once per ``store_log_interval_s`` (call from an ``except`` block)."""
        self._store_failures += 1
        if self._store_ok:
            self._store_ok = False
            self._store_last_log = time.monotonic()
            logger.exception("%s; the store is failing: not ready, retrying with backoff", what)
            return
        self._store_unlogged += 1
        if time.monotonic() - self._store_last_log >= self.options.store_log_interval_s:
            self._store_last_log = time.monotonic()
            logger.error(
                "%s; the store is still failing (%d failures so far, %d not logged)",
                what,
                self._store_failures,
                self._store_unlogged,
                exc_info=True,
            )
            self._store_unlogged = 0

    def _store_succeeded(self) -> None:
        if not self._store_ok:
            logger.warning("the store works again after %d failures; ready", self._store_failures)
        self._store_ok = True
        self._store_failures = 0
        self._store_unlogged = 0

    def _store_backoff(self) -> float:
        """Seconds to wait before retrying a failing store (0 while it works)."""
        if self._store_ok:
            return 0.0
        o = self.options
        raw = min(
            o.store_backoff_cap_s, o.store_backoff_base_s * (2 ** min(self._store_failures - 1, 30))
        )
        return float(raw * (0.5 + 0.5 * self.rng.random()))

    def _ensure_book(self) -> None:
        """State thread: rebuild the book from the store when a failed transaction left it
        dirty and the rebuild itself failed then."""
        if self._book_stale:
            self._restore_book()
            self._book_stale = False

    async def _reload_book(self) -> None:
        """After a failed transaction: drop the book's uncommitted changes."""
        try:
            await self._in_state(self._restore_book)
        except Exception:
            self._book_stale = True  # retried before the next transaction
            self._store_failed("could not reload windows from the store")

    def close_intake(self) -> None:
        """From now on :meth:`submit` answers ``unavailable`` (HTTP 503 / nack)."""
        self._closing = True

    async def start(self) -> None:
        """Restore windows (snapshot + journal), re-dispatch pending triggers, start tasks."""
        await self._in_state(self._restore_book)
        await self._in_state(self._compact, True)
        pending = self.store.pending_triggers()
        if pending:
            with self.store.transaction():
                self.store.mark_started(p.row_id for p in pending)
        for p in pending:
            trig = Trigger.model_validate_json(p.body)
            self.stats.redispatched += 1
            self.metrics.redispatched.inc()
            logger.warning(
                "re-dispatching trigger pending at restart (possible duplicate downstream)",
                extra={
                    "trigger_id": trig.trigger_id,
                    "processor": trig.processor,
                    "correlation_id": trig.correlation_id,
                    "restart_count": p.starts + 1,
                },
            )
            self._dispatch(p.row_id, trig, p.body.encode(), p.attempts)
        if pending:
            logger.warning(
                "restart: %d pending triggers re-dispatched (counted in "
                "scoperouter_redispatched_after_restart_total)",
                len(pending),
                extra={"redispatched": len(pending)},
            )
        self.metrics.open_windows.set(self.book.open_count)
        loop = asyncio.get_running_loop()
        self._background = [
            loop.create_task(self._ingest_worker(), name="ingest"),
            loop.create_task(self._window_timer(), name="windows"),
            loop.create_task(self._mark_flusher(), name="marks"),
            loop.create_task(self._housekeeping(), name="housekeeping"),
        ]
        self._started = True
        logger.info(
            "router started",
            extra={
                "open_windows": self.book.open_count,
                "journal_replayed": self.stats.journal_replayed,
                "redispatched": len(pending),
            },
        )

    async def stop(self, timeout: float = 8.0) -> None:
        """Stop intake, process what is queued, keep open windows durable, wait for
        in-flight dispatches (up to ``timeout``); unfinished ones stay pending."""
        deadline = time.monotonic() + timeout
        self._closing = True
        # let the ingest worker drain what was already submitted
        while self._unfinished and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        self._stopping = True
        self._window_wake.set()
        for t in self._background:
            t.cancel()  # tasks are cancelled between state-thread jobs, never inside one
        for t in self._background:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        if self._dispatching:
            left = max(0.1, deadline - time.monotonic())
            _done, still = await asyncio.wait(set(self._dispatching), timeout=left)
            for t in still:
                t.cancel()
            if still:
                await asyncio.wait(still, timeout=1.0)
                logger.warning(
                    "shutdown: %d dispatches unfinished; they stay pending and are re-dispatched "
                    "at the next start",
                    len(still),
                )
        # fail anything still queued so its source nacks / answers 503
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if not item.fut.done():
                item.fut.set_result(Outcome("unavailable", reason="shutting_down"))
        await self._flush_marks()
        await self._in_state(self._compact, True)
        self._state.shutdown(wait=True)
        if self.log is not None:
            self._log_call("flush", self.log.flush)
        self._log_exec.shutdown(wait=True)
        logger.info("router stopped", extra={"open_windows": self.book.open_count})

    # ------------------------------------------------------------------ restore
    def _restore_book(self) -> None:
        self._jbuf = []
        self._on_commit = None
        # unknown until the next commit: the next empty book writes its snapshot again
        self._persisted_empty = False
        snap = self.store.load_snapshot()
        book = (
            WindowBook.restore(self.registry, snap)
            if snap is not None
            else WindowBook(self.registry)
        )
        replayed = 0
        for e in self.store.journal_entries():
            replayed += 1
            if e.op == "add":
                assert e.event is not None and e.decision is not None
                book.add(
                    Event.model_validate_json(e.event),
                    Decision.model_validate_json(e.decision),
                    e.now,
                )
            elif e.op == "due":
                book.due(e.now)
            elif e.op == "flush":
                book.flush(e.now)
        # triggers re-fired by the replay were committed with their journal rows: ignored
        self.book = book
        self._next_deadline = book.next_deadline()
        self.stats.journal_replayed = replayed
        self.stats.restored_windows = book.open_count
        self._journal_rows = replayed

    def _compact(self, force: bool = False) -> None:
        now = self.clock()
        if not force:
            if self._journal_rows < self.options.compact_every and not (
                self.book.open_count == 0 and self._journal_rows > 1000
            ):
                return
            if now - self._last_compact < self.options.compact_min_interval_s:
                return
        self.store.save_snapshot(self.book.snapshot(), now)
        self._journal_rows = 0
        self._last_compact = now
        self._persisted_empty = self.book.open_count == 0

    def set_relations(self, relations: RelationStore) -> None:
        """Use new relation data from the next batch on (hot reload). The reference is
        swapped whole: a batch already being planned keeps the data it started with."""
        self.relations = relations

    # ------------------------------------------------------------------ intake
    async def submit(self, inbound: Inbound) -> Outcome:
        """Route one message; returns once it is durably handled (see :class:`Outcome`)."""
        if not self._started or self._closing:
            # a failing store still takes submissions: each batch retries it (503 store_error
            # when it fails), and the first one that commits makes the router ready again
            return Outcome(
                "unavailable", reason="not_ready" if not self._closing else "shutting_down"
            )
        self.metrics.events_received.labels(inbound.origin).inc()
        parsed: Event | EventError
        try:
            if inbound.data is not None:
                parsed = parse_event_bytes(
                    inbound.data, self.registry, message_id=inbound.message_id
                )
            else:
                parsed = normalize_event(inbound.obj, self.registry, message_id=inbound.message_id)
        except EventError as exc:
            parsed = exc
        except Exception as exc:  # a normaliser bug must never crash the router
            logger.exception("normaliser raised unexpectedly")
            parsed = EventError("invalid_field", f"could not normalise: {type(exc).__name__}")
        if isinstance(parsed, EventError) and not inbound.dead_letter_on_reject:
            self.metrics.events_rejected.labels(parsed.reason).inc()
            return Outcome("rejected", parsed.event_id, parsed.reason, parsed.detail)
        fut: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Item(inbound, parsed, fut))
        self._unfinished += 1
        return await asyncio.shield(fut)

    async def _ingest_worker(self) -> None:
        while True:
            first = await self._queue.get()
            batch = [first]
            while len(batch) < self.options.max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            marks = self._take_marks()
            try:
                result = await self._in_state(self._process_batch, batch, marks)
            except Exception:
                self._store_failed(
                    "ingest transaction failed; messages will be retried by their source"
                )
                self._marks[:0] = marks
                for item in batch:
                    if not item.fut.done():
                        item.fut.set_result(Outcome("unavailable", reason="store_error"))
                # the in-memory book may hold uncommitted changes
                await self._reload_book()
            else:
                self._store_succeeded()
                self._apply_batch(batch, result)
            finally:
                for _ in batch:
                    self._queue.task_done()
                self._unfinished -= len(batch)

    def _process_batch(
        self, batch: list[_Item], marks: list[tuple[str, tuple[Any, ...]]]
    ) -> _BatchResult:
        """One transaction for the whole batch (state thread)."""
        now = self.clock()
        now_dt = datetime.fromtimestamp(now, UTC)
        as_of = self.options.as_of or now_dt.date()
        relations = self.relations  # one consistent view for the batch (hot reload swaps it)
        res = _BatchResult(now_dt, as_of, relations)
        outcomes, fired, decided = res.outcomes, res.fired, res.decided
        rejects, dead_payloads = res.rejects, res.dead_payloads
        batch_ids: set[str] = set()
        store = self.store
        self._ensure_book()
        dirty = False  # an item failed half-way: the in-memory book is rebuilt after the commit
        with store.transaction():
            self._write_marks(marks)
            for item in batch:
                ev = item.parsed
                if isinstance(ev, EventError):
                    outcomes.append(
                        (
                            item,
                            self._dead_letter_event(
                                item, ev.reason, ev.detail, now, rejects, dead_payloads
                            ),
                        )
                    )
                    continue
                # everything that can fail on the event's content happens before it touches
                # the store or the book: a poison message is dead-lettered, not retried forever
                try:
                    ev.event_id.encode("utf-8")
                    ev_json = ev.model_dump_json()
                except Exception as exc:
                    outcomes.append(
                        (
                            item,
                            self._poison(item, "unserialisable", exc, now, rejects, dead_payloads),
                        )
                    )
                    continue
                if ev.event_id in batch_ids or store.is_seen(ev.event_id):
                    outcomes.append((item, Outcome("duplicate", ev.event_id)))
                    continue
                try:
                    decisions = plan(self.registry, relations, ev, as_of)
                except Exception as exc:  # a planner bug: keep the event, never lose it
                    logger.exception("planner raised", extra={"event_id": ev.event_id})
                    outcomes.append(
                        (
                            item,
                            self._dead_letter_event(
                                item,
                                "planner_error",
                                f"{type(exc).__name__}: {exc}",
                                now,
                                rejects,
                                dead_payloads,
                            ),
                        )
                    )
                    continue
                try:
                    runs = [(d, d.model_dump_json()) for d in decisions if d.action == "run"]
                except Exception as exc:
                    outcomes.append(
                        (
                            item,
                            self._poison(item, "unserialisable", exc, now, rejects, dead_payloads),
                        )
                    )
                    continue
                jlen, flen = len(self._jbuf), len(fired)
                n_fired = 0
                try:
                    with store.savepoint():
                        store.mark_seen(ev.event_id, now)
                        for d, d_json in runs:
                            self._jbuf.append(("add", now, ev_json, d_json))
                            for t in self.book.add(ev, d, now):
                                fired.append(self._persist_trigger(t, now, now_dt))
                                n_fired += 1
                        for t in self._due_locked(now):
                            fired.append(self._persist_trigger(t, now, now_dt))
                            n_fired += 1
                except Exception as exc:
                    if _is_store_failure(exc):
                        raise  # the store itself: the whole batch is retried by its sources
                    # this item only: its rows are rolled back, the others commit
                    logger.exception(
                        "routing one event failed", extra={"event_id": _safe(ev.event_id)}
                    )
                    del self._jbuf[jlen:]
                    del fired[flen:]
                    dirty = True
                    outcomes.append(
                        (
                            item,
                            self._poison(item, "internal_error", exc, now, rejects, dead_payloads),
                        )
                    )
                    continue
                batch_ids.add(ev.event_id)
                decided.append((ev, decisions, item.inbound.trigger_id))
                outcomes.append((item, Outcome("accepted", ev.event_id, triggers=n_fired)))
            self._finish_journal(force_journal=dirty)
        if dirty:
            self._restore_book()  # exactly what was committed
        self._after_commit()
        return res

    def _poison(
        self,
        item: _Item,
        reason: str,
        exc: Exception,
        now: float,
        rejects: list[tuple[str, bool]],
        dead_payloads: list[dict[str, Any]],
    ) -> Outcome:
        """Dead-letter one event the router cannot process (acked: redelivery cannot help)."""
        detail = _safe(f"{type(exc).__name__}: {exc}")[:300]
        return self._dead_letter_event(item, reason, detail, now, rejects, dead_payloads)

    def _after_commit(self) -> None:
        """After a state transaction (state thread): next window deadline, maybe a snapshot."""
        if self._on_commit is not None:
            self._persisted_empty, self._journal_rows = self._on_commit
            self._on_commit = None
        self._next_deadline = self.book.next_deadline()
        try:
            self._compact()
        except Exception:
            logger.exception("window snapshot failed (the journal keeps the state)")

    def _apply_batch(self, batch: list[_Item], res: _BatchResult) -> None:
        """After the commit (event loop): count, ack, dispatch."""
        now_dt, as_of = res.now_dt, res.as_of
        m = self.metrics
        m.ingest_batch.observe(len(batch))
        for reason, new in res.rejects:
            m.events_rejected.labels(reason).inc()
            if new:
                m.dead_lettered.labels("event", reason).inc()
        reasons: CounterT[str] = CounterT()
        for ev, decisions, trigger_id in res.decided:
            reasons.update(d.reason for d in decisions)
            self._log_decisions(ev, decisions, now_dt, as_of, res.relations)
            self._log_completion(ev, trigger_id)
        if res.decided:
            m.events_accepted.inc(len(res.decided))
        for reason, n in reasons.items():
            m.decisions.labels(reason).inc(n)
        dups = 0
        for item, out in res.outcomes:
            dups += out.status == "duplicate"
            if not item.fut.done():
                item.fut.set_result(out)
        if dups:
            m.events_duplicate.inc(dups)
        self._after_fire(res.fired)
        for payload in res.dead_payloads:
            self._publish_dead_letter(payload)
        self._window_wake.set()

    def _dead_letter_event(
        self,
        item: _Item,
        reason: str,
        detail: str,
        now: float,
        rejects: list[tuple[str, bool]],
        dead_payloads: list[dict[str, Any]],
    ) -> Outcome:
        inb = item.inbound
        payload = inb.data if inb.data is not None else _json_bytes(inb.obj)
        ref = inb.message_id
        new = self.store.dead_letter("event", ref, reason, detail, payload, now)
        rejects.append((reason, new))
        if new:
            logger.warning(
                "event dead-lettered", extra={"reason": reason, "detail": detail, "message_id": ref}
            )
            dead_payloads.append(
                {
                    "kind": "event",
                    "reason": reason,
                    "detail": detail,
                    "message_id": ref,
                    "payload": payload.decode("utf-8", errors="replace") if payload else None,
                }
            )
        event_id = item.parsed.event_id
        return Outcome(
            "rejected", _safe(event_id) if event_id else None, reason, detail, dead_lettered=True
        )

    def _log_decisions(
        self,
        ev: Event,
        decisions: tuple[Decision, ...],
        at: datetime,
        as_of: date,
        relations: RelationStore,
    ) -> None:
        if self.log is None:
            return
        self._log_call(
            "record_decisions",
            self.log.record_decisions,
            ev,
            decisions,
            at,
            registry=self.registry,
            relations=relations,  # the data the decisions were planned with
            as_of=as_of,
        )

    def _log_completion(self, ev: Event, trigger_id: str | None) -> None:
        """A processor's own completion event (its ``publishes`` source) becomes a completion
        row, so ``report`` measures waste from what runs really changed. Only accepted events
        get here: a redelivered one is a duplicate and is not counted again."""
        log = self.log
        if log is None:
            return
        registry = self.registry

        def record() -> None:
            rep = completion_from_event(registry, ev)
            if rep is None:
                return
            log.record_completion(
                rep.processor,
                rep.game_date,
                trigger_id=trigger_id,
                records_processed=rep.records_processed,
                entities_changed=rep.entities_changed,
                duration_s=0.0,  # unknown: not counted towards the measured seconds per entity
            )

        self._log_call("record_completion", record)

    def _log_call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Run an execution-log call on its own thread (in order): the log batches and
        flushes to its database, which must never stall the event loop."""

        def run() -> None:
            try:
                fn(*args, **kwargs)
            except Exception:
                logger.exception("execution log: %s failed", what)

        try:
            self._log_exec.submit(run)
        except RuntimeError:  # executor shut down: log synchronously
            run()

    # ------------------------------------------------------------------ windows
    def _due_locked(self, now: float) -> list[Trigger]:
        """Due triggers, journaled (caller holds the transaction)."""
        due = self.book.due(now)
        if due:
            self._jbuf.append(("due", now, None, None))
        return due

    def _finish_journal(self, force_journal: bool = False) -> None:
        """Persist this transaction's book inputs (caller holds the transaction).

        When the book is empty afterwards (typical with zero-length windows) the journal
        rows are not needed: an empty snapshot represents the state exactly. With
        ``force_journal`` (the in-memory book is not trusted) the rows are always written."""
        buf, self._jbuf = self._jbuf, []
        # _persisted_empty / _journal_rows change only once the transaction has committed
        # (_after_commit): after a failed commit the store still holds the old state
        if self.book.open_count == 0 and not force_journal:
            if not self._persisted_empty:
                self.store.save_snapshot(self.book.snapshot(), self.clock())
                self._on_commit = (True, 0)
            return
        if buf:
            self.store.journal_many(buf)
            self._on_commit = (False, self._journal_rows + len(buf))

    def _persist_trigger(
        self, t: Trigger, now: float, now_dt: datetime
    ) -> tuple[int, Trigger, bytes]:
        t = t.model_copy(update={"fired_at": now_dt})
        body = trigger_bytes(t)
        return self.store.insert_trigger(t.trigger_id, t.processor, body.decode(), now), t, body

    def _after_fire(self, fired: list[tuple[int, Trigger, bytes]]) -> None:
        scopes: CounterT[str] = CounterT()
        for row_id, t, body in fired:
            scopes[t.scope] += 1
            self._dispatch(row_id, t, body)
        for scope, n in scopes.items():
            self.metrics.triggers_fired.labels(scope).inc(n)
        self.metrics.open_windows.set(self.book.open_count)

    async def _window_timer(self) -> None:
        while not self._stopping:
            deadline = self._next_deadline
            timeout = None if deadline is None else max(0.0, deadline - self.clock())
            if timeout is None or timeout > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._window_wake.wait(), timeout)
            self._window_wake.clear()
            if not self._stopping:
                await self.fire_due()
                backoff = self._store_backoff()
                if backoff:
                    await asyncio.sleep(backoff)

    async def fire_due(self) -> int:
        """Fire the windows due now (the timer task calls this). Returns the count."""
        nd = self._next_deadline
        if nd is None or nd > self.clock():
            return 0
        marks = self._take_marks()
        try:
            fired = await self._in_state(self._fire_due_sync, marks)
        except Exception:
            self._store_failed("could not persist due windows")
            self._marks[:0] = marks
            await self._reload_book()
            return 0
        self._store_succeeded()
        self._after_fire(fired)
        return len(fired)

    def _fire_due_sync(
        self, marks: list[tuple[str, tuple[Any, ...]]]
    ) -> list[tuple[int, Trigger, bytes]]:
        now = self.clock()
        now_dt = datetime.fromtimestamp(now, UTC)
        fired: list[tuple[int, Trigger, bytes]] = []
        self._ensure_book()
        with self.store.transaction():
            self._write_marks(marks)
            for t in self._due_locked(now):
                fired.append(self._persist_trigger(t, now, now_dt))
            self._finish_journal()
        self._after_commit()
        return fired

    # ------------------------------------------------------------------ dispatch
    def _dispatch(
        self, row_id: int, trigger: Trigger, body: bytes | None = None, attempts: int = 0
    ) -> None:
        """Deliver in the background; ``attempts``: failed attempts before (a restart)."""
        task = asyncio.get_running_loop().create_task(
            self._deliver(row_id, trigger, body, attempts)
        )
        self._dispatching.add(task)
        task.add_done_callback(self._dispatching.discard)

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with full jitter: U(0.5, 1.0) x base x 2^(attempt-1), capped."""
        raw = min(self.options.backoff_cap_s, self.options.backoff_base_s * (2 ** (attempt - 1)))
        return float(raw * (0.5 + 0.5 * self.rng.random()))

    def mode_of(self, processor: str) -> str:
        """``shadow`` (plan and log, call no target) or ``live``: ``serve --shadow`` forces
        shadow; else the processor's ``mode`` in routes.yaml (unknown processors: live)."""
        if self.options.shadow:
            return SHADOW
        proc = self.registry.processors.get(processor)
        return SHADOW if proc is not None and proc.mode == SHADOW else LIVE

    def _shadow(self, row_id: int, trigger: Trigger) -> None:
        """The one place the shadow decision is taken: the trigger was planned, coalesced,
        persisted and is logged like a live one, with status ``shadow``; no sink is called."""
        now = self.clock()
        fired_ts = trigger.fired_at.timestamp() if trigger.fired_at else now
        m = self.metrics
        m.dispatch_attempts.labels(trigger.processor, SHADOW, SHADOW).inc()
        m.triggers_dispatched.labels(trigger.processor, SHADOW).inc()
        self._marks.append(("done", (0, now, row_id)))
        logger.info(
            "shadow: trigger logged, not dispatched",
            extra={
                "mode": SHADOW,
                "trigger_id": trigger.trigger_id,
                "processor": trigger.processor,
                "scope": trigger.scope,
                "correlation_id": trigger.correlation_id,
            },
        )
        self._record_dispatch(trigger, SHADOW, 0, max(0.0, now - fired_ts), now, None)

    async def _deliver(
        self, row_id: int, trigger: Trigger, body: bytes | None = None, attempts_before: int = 0
    ) -> None:
        if self.mode_of(trigger.processor) == SHADOW:
            self._shadow(row_id, trigger)
            return
        proc = self.registry.processors.get(trigger.processor)
        target = proc.target if proc is not None else self.registry.spec.defaults.target
        sink = self.sinks.get(trigger.processor) or self.fallback_sink
        sem = self._semaphores.get(trigger.processor, self._default_sem)
        fired_ts = trigger.fired_at.timestamp() if trigger.fired_at else self.clock()
        m = self.metrics
        attempts = attempts_before
        error: DispatchError | None = None
        m.inflight.inc()
        try:
            async with sem:
                if sink is None:
                    error = DispatchError(trigger.processor, "<none>", "no target", retryable=False)
                while sink is not None:
                    attempts += 1
                    try:
                        await sink.send(
                            trigger, message_id=f"{trigger.trigger_id}-{row_id}", body=body
                        )
                        error = None
                        break
                    except DispatchError as exc:
                        error = exc
                    except Exception as exc:
                        error = DispatchError.from_exception(trigger.processor, sink.name, exc)
                    if not error.retryable or attempts >= target.max_attempts:
                        m.dispatch_attempts.labels(trigger.processor, "failed", LIVE).inc()
                        break
                    m.dispatch_attempts.labels(trigger.processor, "retry", LIVE).inc()
                    self._marks.append(("attempt", (row_id, attempts)))  # survives a restart
                    delay = self._backoff(attempts)
                    logger.info(
                        "dispatch failed, retrying",
                        extra={
                            "trigger_id": trigger.trigger_id,
                            "processor": trigger.processor,
                            "attempt": attempts,
                            "retry_in_s": round(delay, 3),
                            "error": error.detail,
                            "correlation_id": trigger.correlation_id,
                        },
                    )
                    await asyncio.sleep(delay)
        finally:
            m.inflight.dec()
        now = self.clock()
        latency = max(0.0, now - fired_ts)
        if error is None:
            m.dispatch_attempts.labels(trigger.processor, "ok", LIVE).inc()
            m.triggers_dispatched.labels(trigger.processor, LIVE).inc()
            m.dispatch_latency.labels(trigger.processor).observe(latency)
            self._marks.append(("done", (attempts, now, row_id)))
            self._record_dispatch(trigger, "ok", attempts, latency, now, None)
            return
        reason = "permanent_error" if not error.retryable else "max_attempts"
        logger.error(
            "trigger dead-lettered",
            extra={
                "trigger_id": trigger.trigger_id,
                "processor": trigger.processor,
                "attempts": attempts,
                "reason": reason,
                "error": error.detail,
                "correlation_id": trigger.correlation_id,
            },
        )
        body = body or trigger_bytes(trigger)
        self._marks.append(("dead", (attempts, now, str(error), row_id)))
        self._marks.append(
            ("dl", ("trigger", f"{trigger.trigger_id}#{row_id}", reason, str(error), body, now))
        )
        m.dead_lettered.labels("trigger", reason).inc()
        self._record_dispatch(trigger, "dead_letter", attempts, latency, now, str(error))
        self._publish_dead_letter(
            {
                "kind": "trigger",
                "reason": reason,
                "detail": str(error),
                "trigger": trigger_json(trigger),
            }
        )

    def _record_dispatch(
        self,
        trigger: Trigger,
        status: str,
        attempts: int,
        latency_s: float,
        now: float,
        error: str | None,
    ) -> None:
        if self.log is None:
            return
        self._log_call(
            "record_dispatch",
            self.log.record_dispatch,
            trigger,
            status=status,
            attempts=attempts,
            latency_ms=latency_s * 1000.0,
            dispatched_at=datetime.fromtimestamp(now, UTC),
            error=error,
        )

    def _publish_dead_letter(self, payload: dict[str, Any]) -> None:
        pub = self.dead_letter_publisher
        if pub is None:
            return

        async def run() -> None:
            try:
                await pub(payload)
            except Exception:
                logger.exception("could not publish to the dead-letter topic (kept in SQLite)")

        task = asyncio.get_running_loop().create_task(run())
        self._dispatching.add(task)
        task.add_done_callback(self._dispatching.discard)

    # ------------------------------------------------------------------ outcome marks
    def _take_marks(self) -> list[tuple[str, tuple[Any, ...]]]:
        """Hand the queued done/dead marks over to a state-thread job (event loop side)."""
        marks, self._marks = self._marks, []
        return marks

    def _write_marks(self, marks: list[tuple[str, tuple[Any, ...]]]) -> None:
        """Apply done/dead marks (state thread; caller holds a transaction)."""
        s = self.store
        for kind, args in marks:
            if kind == "done":
                s.mark_done(args[2], args[0], args[1])
            elif kind == "dead":
                s.mark_dead(args[3], args[0], args[1], args[2])
            elif kind == "attempt":
                s.mark_attempts(args[0], args[1])
            else:
                s.dead_letter(*args)

    def _write_marks_tx(self, marks: list[tuple[str, tuple[Any, ...]]]) -> None:
        with self.store.transaction():
            self._write_marks(marks)

    async def _flush_marks(self) -> None:
        marks = self._take_marks()
        if not marks:
            return
        try:
            await self._in_state(self._write_marks_tx, marks)
        except BaseException:
            self._marks[:0] = marks
            raise

    async def _mark_flusher(self) -> None:
        last_log_flush = time.monotonic()
        while True:
            await asyncio.sleep(self.options.mark_flush_interval_s + self._store_backoff())
            try:
                if self._marks:
                    await self._flush_marks()
                    self._store_succeeded()
                elif not self._store_ok:
                    await self._in_state(self._probe_store)  # nothing else may write: probe
                    self._store_succeeded()
            except Exception:
                self._store_failed("could not record dispatch outcomes (will retry)")
            if self.log is not None and time.monotonic() - last_log_flush > 1.0:
                last_log_flush = time.monotonic()
                self._log_call("flush", self.log.flush)

    def _probe_store(self) -> None:
        with self.store.transaction():
            self.store.set_meta("probe", repr(self.clock()))

    async def _housekeeping(self) -> None:
        while True:
            await asyncio.sleep(self.options.housekeeping_interval_s)
            try:
                pruned = await self._in_state(self._prune)
                if pruned:
                    logger.info("pruned %d seen ids past the dedup horizon", pruned)
            except Exception:
                self._store_failed("housekeeping failed")

    def _prune(self) -> int:
        now = self.clock()
        o = self.options
        with self.store.transaction():
            pruned = self.store.prune_seen(now - o.dedup_horizon_s)
            self.store.prune_triggers(now - o.done_retention_s, now - o.dead_letter_retention_s)
            self.store.prune_dead_letters(now - o.dead_letter_retention_s)
        return pruned

    # ------------------------------------------------------------------ introspection
    async def idle(self, timeout: float = 10.0) -> bool:
        """Wait until nothing is queued, in flight, or open (tests, benchmarks)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self._unfinished and not self._dispatching and self.book.open_count == 0:
                await self._flush_marks()
                return True
            await asyncio.sleep(0.01)
        return False


def _is_store_failure(exc: BaseException) -> bool:
    """SQLite failing as a whole (disk full, I/O error, read-only, locked), as opposed to
    one value it cannot take (an unencodable string, a bad binding)."""
    return isinstance(exc, sqlite3.Error) and not isinstance(
        exc, sqlite3.InterfaceError | sqlite3.ProgrammingError | sqlite3.DataError
    )


def _safe(text: str) -> str:
    """``text`` with anything UTF-8 cannot encode (lone surrogates) escaped."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _json_bytes(obj: object) -> bytes | None:
    if obj is None:
        return None
    try:
        return json.dumps(obj, default=str).encode()
    except (TypeError, ValueError):
        return repr(obj).encode()

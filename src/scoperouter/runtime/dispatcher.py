"""Delivery of committed triggers: per-target lanes with an in-flight cap and a circuit
breaker, one attempt per task (a batching sink's task, the outbox's, carries up to its
``batch_max`` triggers in one slot), retries and the backlog kept in the store, dead letters
only past the retry horizon. Outcomes leave as typed marks (:mod:`scoperouter.runtime.marks`).
Here: the lanes, committed triggers taken in, the pump; one delivery is
:mod:`~scoperouter.runtime.dispatch_delivery`, its outcome :mod:`~scoperouter.runtime.dispatch_outcomes`.

Invariant: a trigger reaches the dispatcher only after the transaction that inserted it
into the outbox committed; its row is marked done, deferred (``Retry``: still pending,
due again later) or dead through a mark written in a later state transaction, so a
crash before that re-dispatches it (at-least-once; the trigger id is the idempotency key
downstream). Memory is bounded by the targets' in-flight caps, whatever the backlog: a
task exists only for a delivery attempt in progress; everything waiting (new triggers of
a busy or failing target, retries in backoff, work pending at a restart) is a row that the
pump pages from the store (:mod:`scoperouter.runtime.backlog`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import operator
import random
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Collection, Mapping
from typing import Any, TypeVar

from scoperouter.messages.models import Trigger
from scoperouter.processor_registry.compiled import CompiledRegistry
from scoperouter.processor_registry.model_base import parse_duration
from scoperouter.runtime import backlog, lanes
from scoperouter.runtime.bounded_clock import BoundedClock
from scoperouter.runtime.breaker import Breaker
from scoperouter.runtime.dispatch_delivery import Delivery, _batch_of
from scoperouter.runtime.dispatch_outcomes import ROW_ID, ROW_TRIGGER, Row
from scoperouter.runtime.lanes import Lane
from scoperouter.runtime.leases import LeaseBook
from scoperouter.runtime.log_bridge import LogBridge
from scoperouter.runtime.marks import Mark, MarkQueue, Release
from scoperouter.runtime.metrics import Metrics
from scoperouter.runtime.modes import LIVE, fire_modes, row_mode
from scoperouter.runtime.options import RouterOptions
from scoperouter.runtime.outcomes import DeadLetterPublisher
from scoperouter.runtime.sinks import Sink
from scoperouter.runtime.store import PendingTrigger

Committed = tuple[int, Trigger, bytes]  # (outbox row id, trigger with fired_at, its body)
_SCOPE = operator.attrgetter("scope")
_T = TypeVar("_T")
StateRunner = Callable[..., Awaitable[Any]]  # runs a function on the state thread


class Dispatcher(Delivery):
    def __init__(
        self,
        registry: CompiledRegistry,
        sinks: Mapping[str, Sink],
        fallback_sink: Sink | None,
        metrics: Metrics,
        options: RouterOptions,
        marks: MarkQueue,
        log: LogBridge,
        dead_letter_publisher: DeadLetterPublisher | None,
        clock: Callable[[], float],
        rng: random.Random,
    ) -> None:
        self.registry = registry
        self.modes = fire_modes(registry, options.shadow)
        self.sinks = dict(sinks)
        self.fallback_sink = fallback_sink
        self.build_sink: Callable[[str], Sink] | None = None  # the daemon's (Delivery)
        self.metrics = metrics
        self.options = options
        self.marks = marks
        self.log = log
        self.dead_letter_publisher = dead_letter_publisher
        self.clock = clock
        # retry horizons are measured back from the wall clock bounded by monotonic time: a
        # clock stepped forward ends no trigger early (seeded by start; tests replace its
        # ``monotonic``)
        self.horizon_clock = BoundedClock("retry horizons")
        self.rng = rng
        self.tasks: set[asyncio.Task[None]] = set()
        self.fields_said: set[tuple[str, ...]] = set()
        # a delivery task's escaped exception (a bug): the router's Supervisor.failed
        self.on_task_failed: Callable[[asyncio.Task[None]], None] | None = None
        # record the message id a target gave each delivery (an Alias mark): only a reader of
        # them asks (the closed loop's ledger: Router sets it), else no mark per delivery
        self.record_aliases = False
        self._loop: asyncio.AbstractEventLoop | None = None  # set by _spawn or start
        self.lanes: dict[str, Lane] = {}
        self._wake = asyncio.Event()
        self._pump: asyncio.Task[None] | None = None
        self._run_state: StateRunner | None = None
        self._paging = False  # a page job is out: rows started meanwhile are remembered
        self._stopped = False
        self._page: backlog.Pager | None = None
        self._on_store_ok: Callable[[], None] = lambda: None
        self._on_store_failed: Callable[[str], None] = lambda what: None
        self._store_backoff: Callable[[], float] = lambda: 0.0
        self.leases: LeaseBook | None = None  # a state store's (SharedRouter sets it)

    # ------------------------------------------------------------------ lanes
    def lane(self, processor: str) -> Lane:
        lane = self.lanes.get(processor)
        if lane is None:
            proc = self.registry.processors.get(processor)
            target = proc.target if proc is not None else self.registry.spec.defaults.target
            o = self.options
            sink = self.sinks.get(processor)
            if sink is None and (proc is None or self.mode_of(processor) == LIVE):
                # a processor of routes.yaml in shadow mode never takes the default target:
                # a row of it that fired live goes to its own (Delivery._late_sink)
                sink = self.fallback_sink
            lane = Lane(
                processor,
                target,
                sink,
                # a target with max_attempts spends each trigger's own attempts: no breaker
                Breaker(
                    o.breaker_threshold if target.max_attempts is None else 2**31,
                    o.backoff_base_s,
                    o.backoff_cap_s,
                ),
                parse_duration(target.retry_horizon),
                batch=_batch_of(sink),
            )
            self.lanes[processor] = lane
        return lane

    @property
    def quiet(self) -> bool:
        """Nothing in flight (no page out either) and nothing known to wait in the store."""
        return not (self.tasks or self._paging) and all(
            not ln.inflight
            and not ln.buffer
            and not ln.has_due
            and not ln.held
            and ln.next_due is None
            for ln in self.lanes.values()
        )

    # ------------------------------------------------------------------ lifecycle
    def start(
        self,
        run_state: StateRunner,
        page: backlog.Pager,
        pending_processors: list[str],
        *,
        on_store_ok: Callable[[], None] | None = None,
        on_store_failed: Callable[[str], None] | None = None,
        store_backoff: Callable[[], float] | None = None,
    ) -> asyncio.Task[None]:
        """Start the pump (returned); ``pending_processors`` have rows waiting in the store;
        ``page`` reads the backlog (run on the state thread by ``run_state``)."""
        self._run_state, self._page = run_state, page
        self.horizon_clock.seed(self.clock())
        if on_store_ok is not None:
            self._on_store_ok = on_store_ok
        if on_store_failed is not None:
            self._on_store_failed = on_store_failed
        if store_backoff is not None:
            self._store_backoff = store_backoff
        for name in pending_processors:
            self.lane(name).has_due = True
        # a lane for every target from the start: its periodic sweep pages rows that reach
        # the store from outside this process (`scoperouter outbox redrive` next to a running
        # daemon) even when no trigger of that processor fired here since the start
        for name in self.registry.processors:
            self.lane(name)
        self._loop = asyncio.get_running_loop()
        self._pump = self._loop.create_task(self._pump_loop(), name="dispatch")
        return self._pump

    async def stop_pump(self) -> None:
        self._stopped = True  # nothing new starts (paged rows stay pending in the store)
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._pump
            self._pump = None

    def fired(self, fired: list[Committed], stored: Mapping[int, str] | None = None) -> None:
        """Count triggers that just committed; start those whose lane has room now, leave
        the others in the store for the pump (they are pending rows already). Once
        stopped (a batch answered during the stop), none starts: all stay pending. On a
        state store a row whose lease is no longer confirmed by now (the event loop
        stalled past ``lease_s`` since the commit: another replica may have rescued it)
        does not start either (:meth:`_refuse`). ``stored``: the rows stored with another
        mode than their processor's now, that mode by row id (:meth:`_other_mode`)."""
        if not fired:
            return
        m = self.metrics
        for scope, n in Counter(map(_SCOPE, map(ROW_TRIGGER, fired))).items():  # counted in C
            m.child(m.triggers_fired, scope).inc(n)
        if self._stopped:  # (a state store's leases are given back at the stop)
            return
        now = self.clock()
        if self.leases is not None:
            refused = self.leases.refused(map(ROW_ID, fired), now)
            if refused:
                fired = self._refuse(fired, refused)
        if stored:
            fired = self._other_mode(fired, stored, now)
        # a row fired now fired in its processor's mode now (the one stored with it)
        mode_of = self.mode_of
        if self._run_state is None:  # no pump (a caller that pages rows itself): start all
            for row_id, t, body in fired:
                created = t.fired_at.timestamp() if t.fired_at else now
                lane = self.lane(t.processor)
                self._start_rows(lane, [(row_id, t, body, 0, created)], mode_of(lane.name))
            return
        filling: dict[str, list[Row]] = {}  # a batching lane's delivery being filled
        lanes_ = self.lanes
        last_fired, last_ts = None, now  # the triggers of one batch share their fired_at
        # the delivery being filled by the previous trigger: one of the same processor that
        # fits joins it without the lane lookups below (what they would decide)
        cur_name: str | None = None
        cur_rows: list[Row] = []
        cur_batch = 0
        for row_id, t, body in fired:
            at = t.fired_at
            if at is not last_fired:
                last_fired, last_ts = at, at.timestamp() if at else now
            row = (row_id, t, body, 0, last_ts)
            name = t.processor
            if name == cur_name and len(cur_rows) < cur_batch:
                cur_rows.append(row)
                continue
            cur_name = None
            lane = lanes_.get(name) or self.lane(name)
            rows = filling.pop(lane.name, None)
            if rows is not None and len(rows) < lane.batch:  # its slot was free: joins it
                rows.append(row)
                filling[lane.name] = rows
                cur_name, cur_rows, cur_batch = name, rows, lane.batch
                continue
            if rows is not None:  # full: it starts, taking its slot, before the next one
                self._start_rows(lane, rows, mode_of(lane.name))
            if not lane.has_due and not lane.buffer and lane.breaker.slots(now, lane.free) > 0:
                if lane.batch > 1 and lane.breaker.state == "closed":
                    rows = filling[lane.name] = [row]
                    cur_name, cur_rows, cur_batch = name, rows, lane.batch
                else:
                    self._start_rows(lane, [row], mode_of(lane.name))
            elif lanes.holds_fired(lane):  # every slot busy: it takes the next one free
                lane.buffer.append(
                    PendingTrigger(
                        row_id, t.trigger_id, t.processor, body.decode() if body else "", 0,
                        0, row[4], mode_of(lane.name), t,
                    )
                )  # fmt: skip
            else:  # waits in the store (a state store gets the lease back: any replica)
                self.marks.append(Release(row_id))
                lane.rows_left()
                self._wake.set()
        for name, rows in filling.items():
            self._start_rows(self.lanes[name], rows, mode_of(name))

    def _other_mode(
        self, fired: list[Committed], stored: Mapping[int, str], now: float
    ) -> list[Committed]:
        """The rows of ``fired`` not in ``stored``. A row in it (a window an event joined
        while its processor fired live, fired after it became shadow: stored ``live``) is
        not started as a row of its processor's mode now: it waits in the store (a state
        store gets the lease back) and its lane pages it with its stored mode; without a
        pump it starts at once, by that mode."""
        kept: list[Committed] = []
        for row in fired:
            mode = stored.get(row[0])
            if mode is None:
                kept.append(row)
                continue
            row_id, t, body = row
            lane = self.lane(t.processor)
            if self._run_state is None:
                created = t.fired_at.timestamp() if t.fired_at else now
                self._start_rows(lane, [(row_id, t, body, 0, created)], mode)
                continue
            self.marks.append(Release(row_id))
            lane.rows_left()
            self._wake.set()
        return kept

    def _refuse(self, fired: list[Committed], refused: Mapping[int, str]) -> list[Committed]:
        """The rows of ``fired`` not in ``refused``; those leave this replica unstarted,
        as queued rows whose lease is gone do (counted, logged, forgotten in the lease
        book: their lease runs out, a rescue makes them claimable)."""
        dropped: dict[tuple[str, str], list[int]] = {}
        kept: list[Committed] = []
        for row in fired:
            why = refused.get(row[0])
            if why is None:
                kept.append(row)
            else:
                dropped.setdefault((row[1].processor, why), []).append(row[0])
        for (name, why), ids in dropped.items():
            self._dropped(self.lane(name), ids, why)
        return kept

    def disown(self, ids: Collection[int], why: str) -> int:
        """Queued rows among ``ids`` leave their lanes unstarted (this replica's lease on
        them is lost or unconfirmed: ``why``); in-flight ones run on. Returns the count."""
        gone = set(ids)
        n = 0
        for lane in self.lanes.values():
            if lane.buffer and any(r.row_id in gone for r in lane.buffer):
                dropped = [r.row_id for r in lane.buffer if r.row_id in gone]
                lane.buffer = deque(r for r in lane.buffer if r.row_id not in gone)
                self._dropped(lane, dropped, why)
                n += len(dropped)
        return n

    def rows_waiting(self, processors: list[str]) -> int:
        """Rows of ``processors`` wait in the store (put there by someone else: another
        replica, an operator's redrive): their lanes page them. Returns the count."""
        for name in processors:
            self.lane(name).rows_left()
        if processors:
            self._wake.set()
        return len(processors)

    def dispatch(
        self,
        row_id: int,
        trigger: Trigger,
        body: bytes | None = None,
        attempts: int = 0,
        mode: str | None = None,
    ) -> None:
        """Start one attempt now, outside the pump and the in-flight cap: for a caller
        that pages rows itself (a leased claim); ``attempts``: failed attempts before;
        ``mode``: the one stored with the row (None: its processor's now). On a
        state store, only while its lease is confirmed (else it leaves, as in
        :meth:`_refuse`)."""
        lane, now = self.lane(trigger.processor), self.clock()
        why = None if self.leases is None else self.leases.refusal(row_id, now)
        if why is not None:
            self._dropped(lane, [row_id], why)
            return
        created = trigger.fired_at.timestamp() if trigger.fired_at else now
        sent_as = row_mode(mode, lane.name, self.modes)
        self._start_rows(lane, [(row_id, trigger, body, attempts, created)], sent_as)

    # ------------------------------------------------------------------ pump
    async def _sleep_or_wake(self, delay: float) -> None:
        """Wait ``delay`` seconds or until woken (a timer sets the event: no wait_for task
        to cancel half-way)."""
        assert self._loop is not None  # the pump runs: start() set it
        handle = self._loop.call_later(delay, self._wake.set)
        try:
            await self._wake.wait()
        finally:
            handle.cancel()

    async def _pump_loop(self) -> None:
        assert self._run_state is not None and self._page is not None
        while True:
            for ln in self.lanes.values():
                self._drain(ln)
            delay = lanes.pump_delay(
                self.lanes.values(), self.clock(), self.options.pump_interval_s
            )
            if delay > 0:
                await self._sleep_or_wake(delay)
            self._wake.clear()
            now = self.clock()
            requests = lanes.requests(
                self.lanes.values(),
                now,
                self.options.pump_interval_s,
                self.marks.unwritten(),
                self.horizon_clock.horizon_now,
            )
            if not requests:
                await asyncio.sleep(0)
                continue
            marks = self.marks.take()
            self._paging = True
            # the page runs to its end on the state thread even if the pump is cancelled
            job = asyncio.ensure_future(self._run_state(self._page, marks, requests, now))
            try:
                pages = await asyncio.shield(job)
            except asyncio.CancelledError:  # a stop: what the page did is reported when done
                job.add_done_callback(functools.partial(self._paged_after_stop, marks))
                raise
            except Exception:
                self.marks.put_back(marks)
                self._on_store_failed("could not page pending triggers (will retry)")
                await asyncio.sleep(max(self._store_backoff(), self.options.backoff_base_s))
                continue
            finally:
                self._paging = False
            self.marks.written(marks)
            if marks or any(pg.expired for pg in pages):
                # a write committed (marks, rows dead-lettered): the store works. A page
                # that only read is no proof of it (a full disk still serves reads)
                self._on_store_ok()
            for pg in pages:
                self._apply_page(pg, now)
            for ln in self.lanes.values():
                ln.started.clear()

    def _paged_after_stop(self, marks: list[Mark], job: asyncio.Future[Any]) -> None:
        """The page out when the pump was cancelled (a stop) ended: the rows it dead-lettered
        past their horizon (dead in the store) are reported as ever; its rows start nothing
        (they wait in the store; a state store's leases are given back at the stop). Failed:
        its marks go back to the queue (a stop's last write takes them)."""
        if job.cancelled():  # its end is unknown
            self.marks.written(marks)
            return
        if job.exception() is not None:
            self.marks.put_back(marks)
            return
        self.marks.written(marks)
        for pg in job.result():
            for r in pg.expired:
                self._expired(r.trigger_id, r.processor, r.attempts, r.body, r.created_at)

    def _apply_page(self, pg: backlog.LanePage, now: float) -> None:
        lane = self.lane(pg.processor)
        lane.take_page(pg)
        if lane.buffer and lane.breaker.state == "open":
            # the circuit opened while the page was out (_park gave back what the lane held
            # then): the page's rows wait in the store too, within the horizon sweep's reach
            # and, on a state store, not leased here until the probe
            self._park(lane)
        for r in pg.expired:
            self._expired(r.trigger_id, r.processor, r.attempts, r.body, r.created_at)
        if len(pg.expired) >= backlog.EXPIRE_PAGE:
            lane.last_expire = float("-inf")  # a full sweep: the next one right away
        self._drain(lane)

"""The bridge to the execution log: every call runs on one log thread, in order.

Invariants: the event loop never waits for the execution log (it batches and flushes to a
database that may be slow or remote); a failing log call is logged, never raised. The work
handed over is bounded: at most ``max_pending`` events and dispatch outcomes wait for the
log thread -- past that :attr:`LogBridge.full` is true and the ingest worker waits
(:meth:`LogBridge.room`) before it takes the next batch, so a slow log slows intake
(backpressure) instead of growing a backlog. A hand-off (one per ingest batch, one
per delivery's dispatch outcomes) is an append to a deque: it wakes the log thread only
when the thread is asleep, and the thread then lingers ``linger_s`` before it takes everything queued, so a
quiet daemon wakes it a few times a second instead of twice per event (the log writes
what it buffers every ``flush_interval_s`` anyway). Order is kept: a dispatch outcome is
written after the batch that decided its events. At stop the queue is drained (no linger)
for at most the time left of the shutdown budget; what is still queued then is dropped
and counted (logged). The records handed over, and their conversion to and writing as log
rows, are :mod:`log_rows`'s.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from datetime import date, datetime

from scoperouter.execution_log.api import ExecutionLog
from scoperouter.execution_log.base import DispatchOutcome
from scoperouter.messages.models import Event, Trigger
from scoperouter.processor_registry.compiled import CompiledRegistry
from scoperouter.processor_registry.relations import RelationStore
from scoperouter.router.decisions import Decision
from scoperouter.runtime.log_rows import (
    Decided,
    LogOutcome,
    OkRow,
    OkRows,
    as_logged,
    record_completion,
    record_outcomes,
    record_trigger_report,
)

logger = logging.getLogger("scoperouter.runtime")

_Outcome = LogOutcome
# queued work: a dispatch outcome (a tuple of 6), a list of them, the rows of one
# successful delivery (:class:`OkRows`), or (job, how many events it carries)
_Job = tuple[Callable[[], None], int]


DEFAULT_MAX_PENDING = 20_000
DEFAULT_LINGER_S = 0.1


class LogBridge:
    def __init__(
        self,
        log: ExecutionLog | None,
        registry: CompiledRegistry,
        *,
        max_pending: int = DEFAULT_MAX_PENDING,
        flush_interval_s: float = 1.0,
        linger_s: float = DEFAULT_LINGER_S,
    ) -> None:
        self.log = log
        self.registry = registry
        self.max_pending = max_pending
        self.flush_interval_s = flush_interval_s
        self.linger_s = linger_s
        self.dropped = 0  # events/outcomes never written (shutdown budget exhausted)
        self.waits = 0  # times the ingest worker waited for room (room() found it full)
        self.waited_s = 0.0  # ... and for how long, in all
        self.passes = 0  # times the log thread took what was queued
        self._q: deque[_Job | _Outcome | list[_Outcome] | OkRows] = deque()
        self._handed = 0  # events/outcomes queued (under _count: any thread may hand over)
        self._taken = 0  # ... and taken by the log thread (written by it only)
        self._count = threading.Lock()
        self._wake = threading.Event()  # set: work queued since the thread last looked
        self._stop = threading.Event()
        self._flush_asked = False
        self._thread: threading.Thread | None = None
        self._closed = False
        self._abandon = False
        self._failed = False  # the log thread died: what is handed over is dropped (counted)
        # an exception escaping the log thread (a bug: each job catches its own), from that
        # thread: the router's supervisor makes it a fatal internal error
        self.on_failure: Callable[[BaseException], None] | None = None

    # ------------------------------------------------------------------ backpressure
    @property
    def pending(self) -> int:
        """Events and dispatch outcomes handed over and not yet written."""
        return self._handed - self._taken

    @property
    def log_rows_dropped(self) -> int:
        """Rows the log itself dropped (its ``dropped``: rows its database refused, or past
        its buffer while failing), apart from :attr:`dropped` (work this bridge never handed
        over); 0 for a log that counts none."""
        n = getattr(self.log, "dropped", 0)
        return n if isinstance(n, int) else 0

    @property
    def full(self) -> bool:
        return self.pending >= self.max_pending

    async def room(self, poll_s: float = 0.005) -> None:
        """Return once the log thread has room (at once when it has); a wait is counted in
        :attr:`waits` and :attr:`waited_s` (``/metrics``: the log slowing intake)."""
        if not self.full or self._closed:
            return
        start = time.monotonic()
        try:
            while self.full and not self._closed:
                await asyncio.sleep(poll_s)
        finally:
            self.waits += 1
            self.waited_s += time.monotonic() - start

    # ------------------------------------------------------------------ the log thread
    def _put(self, item: _Job | _Outcome | list[_Outcome] | OkRows, n: int) -> None:
        with self._count:
            if self._failed:  # no log thread any more: never written
                self.dropped += n
                return
            self._handed += n
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="scoperouter-log", daemon=True
                )
                self._thread.start()
        self._q.append(item)
        if not self._wake.is_set():
            self._wake.set()

    def _submit(self, fn: Callable[[], None], n: int, what: str) -> None:
        def run() -> None:
            try:
                fn()
            except Exception:
                logger.exception("execution log: %s failed", what)

        if self._closed:  # after shutdown: synchronously (late dispatch outcomes)
            run()
            return
        self._put((run, n), n)

    def _run(self) -> None:
        """The log thread (:meth:`_serve`); an exception escaping it ends the thread, what
        comes later is dropped and counted, and ``on_failure`` is told."""
        try:
            self._serve()
        except Exception as exc:
            self._abandon = True
            with self._count:  # what was handed over and not written: dropped, counted
                self._failed = True
                self.dropped += self._handed - self._taken
                self._taken = self._handed
                self._q.clear()
            if self.on_failure is not None:
                self.on_failure(exc)
            else:
                logger.exception("execution log: the log thread failed")

    def _serve(self) -> None:
        last = time.monotonic()
        q, wake, stop = self._q, self._wake, self._stop
        while True:
            if not wake.wait(self.flush_interval_s):
                self._safe_flush()  # idle: what the writer buffered goes to disk
                last = time.monotonic()
                continue
            if not stop.is_set() and self.pending < self.max_pending // 2:
                stop.wait(self.linger_s)  # let hand-offs gather (stop cuts it short)
            wake.clear()
            self.passes += 1
            while q:
                self._drain(q)
            if self._abandon:
                return
            if self._flush_asked or time.monotonic() - last >= self.flush_interval_s:
                self._flush_asked = False
                last = time.monotonic()
                self._safe_flush()
            if stop.is_set() and not q:
                return

    def _drain(self, q: deque[_Job | _Outcome | list[_Outcome] | OkRows]) -> None:
        """Run what is queued, in order; consecutive dispatch outcomes in one go."""
        outcomes: list[DispatchOutcome] = []
        while q:
            item = q[0]
            if isinstance(item, list):  # several outcomes (:meth:`dispatches`)
                outcomes.extend(as_logged(item))
                q.popleft()
            elif isinstance(item, OkRows):  # a delivery's (:meth:`dispatched_ok`)
                outcomes.extend(item.outcomes())
                q.popleft()
            elif len(item) == 2:  # a job
                if outcomes:
                    break
                q.popleft()
                fn, n = item
                if self._abandon:
                    self.dropped += n
                else:
                    fn()
                self._taken += n
            else:
                outcomes.extend(as_logged([q.popleft()]))  # type: ignore[list-item]
        if outcomes:
            if self._abandon:
                self.dropped += len(outcomes)
            else:
                record_outcomes(self.log, outcomes)
            self._taken += len(outcomes)

    def _safe_flush(self) -> None:
        try:
            if self.log is not None:
                self.log.flush()
        except Exception:
            logger.exception("execution log: flush failed")

    # ------------------------------------------------------------------ hand-offs
    def batch(
        self, decided: Sequence[Decided], at: datetime, as_of: date, relations: RelationStore
    ) -> None:
        """One ingest batch's events and decisions (and the completions they report: the
        status of the run each one naming a trigger reports, its completion row)."""
        log = self.log
        if log is None or not decided:
            return
        registry = self.registry
        items = list(decided)

        def record() -> None:
            rb = getattr(log, "record_batch", None)
            if rb is not None:
                rb(
                    [(ev, ds, js) for ev, ds, _t, js in items],
                    at,
                    registry=registry,
                    relations=relations,  # the data the decisions were planned with
                    as_of=as_of,
                )
            else:
                for ev, ds, _t, _js in items:
                    log.record_decisions(
                        ev, ds, at, registry=registry, relations=relations, as_of=as_of
                    )
            for ev, _ds, trigger_id, _js in items:
                # a report for its trigger, or a completion row (else none: no work here)
                if trigger_id is not None or ev.record_count is not None:
                    record_completion(log, registry, ev, trigger_id)

        self._submit(record, len(items), "record_batch")

    def decisions(
        self,
        ev: Event,
        decisions: tuple[Decision, ...],
        at: datetime,
        as_of: date,
        relations: RelationStore,
    ) -> None:
        """One event's decisions (:meth:`batch` of one)."""
        self.batch([(ev, decisions, None, None)], at, as_of, relations)

    def completion(self, ev: Event, trigger_id: str | None) -> None:
        """A processor's own completion event (its ``publishes`` source) becomes a completion
        row, so ``report`` measures waste from what runs really changed, and its status is
        kept for ``trigger_id`` (:func:`.log_rows.record_completion`). Only accepted events
        get here: a redelivered one is a duplicate and is not counted again."""
        log = self.log
        if log is None:
            return
        registry = self.registry
        self._submit(
            lambda: record_completion(log, registry, ev, trigger_id), 1, "record_completion"
        )

    def trigger_report(self, trigger_id: str, status: str, event_id: str) -> None:
        """The status a bare completion report (no source) gives the run of ``trigger_id``
        (a backfill run's: :meth:`RouterIntake._backfill_report`), for a log that keeps
        such reports (the SQLite log's ``record_trigger_report``)."""
        log = self.log
        if log is None:
            return
        self._submit(
            lambda: record_trigger_report(log, trigger_id, status, event_id),
            1,
            "record_trigger_report",
        )

    def dispatch(
        self,
        trigger: Trigger,
        status: str,
        attempts: int,
        latency_s: float,
        now: float,
        error: str | None,
    ) -> None:
        """One dispatch outcome (queued; the log thread writes consecutive ones together)."""
        if self.log is None:
            return
        outcome = (trigger, status, attempts, latency_s, now, error)
        if self._closed:  # after shutdown: synchronously (late dispatch outcomes)
            record_outcomes(self.log, as_logged([outcome]))
        else:
            self._put(outcome, 1)

    def dispatches(self, outcomes: list[_Outcome]) -> None:
        """Several dispatch outcomes, ``(trigger, status, attempts, latency_s, now, error)``
        each (one delivery's): :meth:`dispatch` for each, in one hand-off. The list is the
        bridge's from now on."""
        if self.log is None or not outcomes:
            return
        if self._closed:
            record_outcomes(self.log, as_logged(outcomes))
        else:
            self._put(outcomes, len(outcomes))

    def dispatched_ok(self, rows: Sequence[OkRow], now: float) -> None:
        """The rows of one delivery that succeeded at ``now``: :meth:`dispatches` of
        ``(trigger, "ok", attempts_before + 1, latency, now, None)`` for each, built on the
        log thread. ``rows`` is the bridge's from now on."""
        if self.log is None or not rows:
            return
        ok = OkRows(rows, now)
        if self._closed:
            record_outcomes(self.log, ok.outcomes())
        else:
            self._put(ok, len(rows))

    def flush(self) -> None:
        """Ask the log thread to write what the log buffers (at its next pass)."""
        if self.log is not None and self._thread is not None and not self._closed:
            self._flush_asked = True
            if not self._wake.is_set():
                self._wake.set()

    def shutdown(self, timeout: float | None = None) -> None:
        """Drain what is queued for at most ``timeout`` seconds (None: until done), flush,
        then stop the thread; what could not be written in time is dropped and counted."""
        if self._closed:
            return
        self.flush()
        self._closed = True
        thread = self._thread
        if thread is None:
            return
        self._stop.set()
        self._wake.set()
        thread.join(timeout)
        if self._failed and self.dropped:
            logger.warning(
                "execution log: the log thread failed; %d events/outcomes not written",
                self.dropped,
                extra={"dropped": self.dropped},
            )
        elif thread.is_alive():
            self._abandon = True  # the thread drops what is still queued, then exits
            thread.join(1.0)
            lost = self.dropped + (self.pending if thread.is_alive() else 0)
            logger.warning(
                "execution log: shutdown budget exhausted; %d queued events/outcomes not written",
                lost,
                extra={"dropped": lost},
            )


__all__ = ["DEFAULT_MAX_PENDING", "LogBridge"]

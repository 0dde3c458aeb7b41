"""The bridge to the execution log: every call runs on one log thread, in order.

Invariants: the event loop never waits for the execution log (it batches and flushes to a
database that may be slow or remote); a failing log call is logged, never raised. The work
handed over is bounded: at most ``max_pending`` events and dispatch outcomes wait for the
log thread -- past that :attr:`LogBridge.full` is true and the ingest worker waits
(:meth:`LogBridge.room`) before it takes the next batch, so a slow log slows intake
(backpressure) instead of growing a backlog. One hand-off per ingest batch, one per event-
loop pass for dispatch outcomes. At stop the queue is drained for at most the time left of
the shutdown budget; what is still queued then is dropped and counted (logged).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime

from scoperouter.execution_log.api import ExecutionLog
from scoperouter.execution_log.completions import completion_from_event
from scoperouter.messages.models import Event, Trigger
from scoperouter.processor_registry.compiled import CompiledRegistry
from scoperouter.processor_registry.relations import RelationStore
from scoperouter.router.decisions import Decision

logger = logging.getLogger("scoperouter.runtime")

Decided = tuple[Event, Sequence[Decision], str | None, str | None]
"""(event, its decisions, the trigger id it reports completing, its JSON or None)."""
_Job = tuple[Callable[[], None], int]  # (work, how many events/outcomes it carries)

DEFAULT_MAX_PENDING = 20_000


class LogBridge:
    def __init__(
        self,
        log: ExecutionLog | None,
        registry: CompiledRegistry,
        *,
        max_pending: int = DEFAULT_MAX_PENDING,
        flush_interval_s: float = 1.0,
    ) -> None:
        self.log = log
        self.registry = registry
        self.max_pending = max_pending
        self.flush_interval_s = flush_interval_s
        self.dropped = 0  # events/outcomes never written (shutdown budget exhausted)
        self._q: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._count = threading.Lock()
        self._pending = 0
        self._outcomes: list[tuple[Trigger, str, int, float, float, str | None]] = []
        self._outcomes_scheduled = False
        self._thread: threading.Thread | None = None
        self._closed = False
        self._abandon = False

    # ------------------------------------------------------------------ backpressure
    @property
    def pending(self) -> int:
        """Events and dispatch outcomes handed over and not yet written."""
        return self._pending

    @property
    def full(self) -> bool:
        return self._pending >= self.max_pending

    async def room(self, poll_s: float = 0.005) -> None:
        """Return once the log thread has room (at once when it has)."""
        while self.full and not self._closed:
            await asyncio.sleep(poll_s)

    # ------------------------------------------------------------------ the log thread
    def _submit(self, fn: Callable[[], None], n: int, what: str) -> None:
        def run() -> None:
            try:
                fn()
            except Exception:
                logger.exception("execution log: %s failed", what)

        if self._closed:  # after shutdown: synchronously (late dispatch outcomes)
            run()
            return
        with self._count:
            self._pending += n
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="scoperouter-log", daemon=True)
            self._thread.start()
        self._q.put((run, n))

    def _run(self) -> None:
        last = time.monotonic()
        while True:
            try:
                job = self._q.get(timeout=self.flush_interval_s)
            except queue.Empty:
                job = (self._safe_flush, 0)  # idle: what the writer buffered goes to disk
            if job is None:
                return
            fn, n = job
            if self._abandon:
                self.dropped += n
            else:
                fn()
            with self._count:
                self._pending -= n
            if time.monotonic() - last >= self.flush_interval_s:
                last = time.monotonic()
                self._safe_flush()

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
        """One ingest batch's events and decisions (and the completions they report)."""
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
                _completion(log, registry, ev, trigger_id)

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
        row, so ``report`` measures waste from what runs really changed. Only accepted events
        get here: a redelivered one is a duplicate and is not counted again."""
        log = self.log
        if log is None:
            return
        registry = self.registry
        self._submit(lambda: _completion(log, registry, ev, trigger_id), 1, "record_completion")

    def dispatch(
        self,
        trigger: Trigger,
        status: str,
        attempts: int,
        latency_s: float,
        now: float,
        error: str | None,
    ) -> None:
        """One dispatch outcome; the outcomes of one event-loop pass are handed over together."""
        if self.log is None:
            return
        self._outcomes.append((trigger, status, attempts, latency_s, now, error))
        if self._outcomes_scheduled:
            return
        try:
            asyncio.get_running_loop().call_soon(self._hand_outcomes)
            self._outcomes_scheduled = True
        except RuntimeError:  # no loop (synchronous callers): at once
            self._hand_outcomes()

    def _hand_outcomes(self) -> None:
        self._outcomes_scheduled = False
        outcomes, self._outcomes = self._outcomes, []
        log = self.log
        if log is None or not outcomes:
            return

        def record() -> None:
            for trigger, status, attempts, latency_s, now, error in outcomes:
                try:
                    log.record_dispatch(
                        trigger,
                        status=status,
                        attempts=attempts,
                        latency_ms=latency_s * 1000.0,
                        dispatched_at=datetime.fromtimestamp(now, UTC),
                        error=error,
                    )
                except Exception:
                    logger.exception("execution log: record_dispatch failed")

        self._submit(record, len(outcomes), "record_dispatch")

    def flush(self) -> None:
        if self.log is not None and self._thread is not None and not self._closed:
            self._submit(self._safe_flush, 0, "flush")

    def shutdown(self, timeout: float | None = None) -> None:
        """Hand over what is left, drain for at most ``timeout`` seconds (None: until done),
        then stop the thread; what could not be written in time is dropped and counted."""
        if self._closed:
            return
        self._hand_outcomes()
        self.flush()
        self._closed = True
        thread = self._thread
        if thread is None:
            return
        self._q.put(None)
        thread.join(timeout)
        if thread.is_alive():
            self._abandon = True  # the thread drops what is still queued, then exits
            thread.join(1.0)
            logger.warning(
                "execution log: shutdown budget exhausted; %d queued events/outcomes not written",
                self._pending,
                extra={"dropped": self._pending},
            )


def _completion(
    log: ExecutionLog, registry: CompiledRegistry, ev: Event, trigger_id: str | None
) -> None:
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


__all__ = ["DEFAULT_MAX_PENDING", "Decided", "LogBridge"]

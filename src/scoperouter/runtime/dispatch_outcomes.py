"""What a delivery attempt's outcome does (the base of
:class:`~scoperouter.runtime.dispatcher.Dispatcher`): marks (done, retry later, dead),
metrics, the execution log, the breaker's transitions, dead-letter copies.

Invariant: an outcome never waits and never touches the store: it appends typed marks
(:mod:`scoperouter.runtime.marks`) that a later state transaction writes, so a crash
before that re-dispatches the trigger (at-least-once).
"""

from __future__ import annotations

import asyncio
import json
import logging
import operator
import random
from collections.abc import Callable
from typing import Any

from scoperouter.errors import DispatchError
from scoperouter.messages.models import Trigger
from scoperouter.messages.stored import read_stored
from scoperouter.processor_registry.compiled import CompiledRegistry
from scoperouter.runtime import backlog
from scoperouter.runtime.bounded_clock import BoundedClock
from scoperouter.runtime.breaker import Start
from scoperouter.runtime.lanes import Lane
from scoperouter.runtime.log_bridge import LogBridge
from scoperouter.runtime.log_rows import ok_latencies
from scoperouter.runtime.marks import (
    Dead,
    DeadLetter,
    Done,
    DoneMany,
    MarkQueue,
    Redrive,
    Release,
    Retry,
)
from scoperouter.runtime.metrics import Metrics, observe_many, observe_n
from scoperouter.runtime.modes import LIVE, SHADOW
from scoperouter.runtime.options import RouterOptions
from scoperouter.runtime.outcomes import DeadLetterPublisher
from scoperouter.runtime.sinks import trigger_bytes, trigger_json
from scoperouter.state.letter_refs import trigger_ref
from scoperouter.state.model import FireModes

# one row of a delivery: (row id, trigger, body, attempts before, created); the rows of one
# delivery belong to one lane, so to one processor
Row = tuple[int, Trigger, bytes | None, int, float]
ROW_ID = operator.itemgetter(0)  # of a Row (and of a committed (row id, trigger, body))
ROW_TRIGGER = operator.itemgetter(1)
_ATTEMPTS_BEFORE = operator.itemgetter(3)
_FIRED_AT = operator.attrgetter("fired_at")
_PLUS_ONE = (1).__add__

logger = logging.getLogger("scoperouter.runtime")


class Outcomes:
    """The outcome half of the dispatcher (its ``__init__`` sets these attributes)."""

    registry: CompiledRegistry
    modes: FireModes  # the mode each processor's triggers fire in now (runtime/modes.py)
    metrics: Metrics
    options: RouterOptions
    marks: MarkQueue
    log: LogBridge
    dead_letter_publisher: DeadLetterPublisher | None
    clock: Callable[[], float]
    horizon_clock: BoundedClock  # what retry horizons are measured back from (bounded_clock)
    rng: random.Random
    tasks: set[asyncio.Task[None]]
    fields_said: set[tuple[str, ...]]  # unknown trigger fields said once (_read_row)
    on_task_failed: Callable[[asyncio.Task[None]], None] | None
    _wake: asyncio.Event
    _loop: asyncio.AbstractEventLoop | None

    def _spawn(self, coro: Any) -> None:
        loop = self._loop
        if loop is None:  # asked once: get_running_loop makes a getpid system call
            loop = self._loop = asyncio.get_running_loop()
        task = loop.create_task(coro, name="delivery")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        if self.on_task_failed is not None:
            task.add_done_callback(self.on_task_failed)

    def _expired(
        self, trigger_id: str, processor: str, attempts: int, body: str, created: float
    ) -> None:
        """A parked row passed its retry horizon (already dead in the store): its outcome
        reaches the metrics, the log, the execution log and the dead-letter topic as a
        delivery's dead letter does (:meth:`_dead`)."""
        self.metrics.dead_lettered.labels("trigger", "retry_horizon").inc()
        logger.error(
            "trigger dead-lettered",
            extra={"trigger_id": trigger_id, "processor": processor, "attempts": attempts,
                   "reason": "retry_horizon", "error": backlog.HORIZON_DETAIL},
        )  # fmt: skip
        try:
            trig = read_stored(body)[0]
        except ValueError:  # unreadable here: its dead letter in the store keeps the body
            return
        now = self.clock()
        fired_ts = trig.fired_at.timestamp() if trig.fired_at else created
        detail = backlog.HORIZON_DETAIL
        self.log.dispatch(trig, "dead_letter", attempts, max(0.0, now - fired_ts), now, detail)
        self.publish_dead_letter(
            {"kind": "trigger", "reason": "retry_horizon", "detail": detail,
             "trigger": trigger_json(trig)}
        )  # fmt: skip

    def _read_row(self, row_id: int, body: str | bytes) -> Trigger:
        """A paged row's trigger (:func:`~scoperouter.messages.stored.read_stored`): fields
        a newer version wrote are left out of it (its body is sent as stored), counted,
        and said once per set of names. Raises ``ValueError`` when it does not parse."""
        trig, ignored = read_stored(body)
        if ignored:
            self.metrics.trigger_fields_ignored.inc()
            if ignored not in self.fields_said and len(self.fields_said) < 100:
                self.fields_said.add(ignored)
                logger.warning(
                    "trigger row %d has fields this version does not know (written by a "
                    "newer one?): %s; sent with its body as stored",
                    row_id,
                    ", ".join(ignored),
                    extra={"row_id": row_id, "fields": list(ignored)},
                )
        return trig

    def _unreadable(
        self, row_id: int, trigger_id: str, attempts: int, body: str, exc: Exception
    ) -> None:
        """A paged row whose body this version cannot read: dead-lettered with its body
        (visible to `scoperouter outbox list`, redriven after an upgrade), never held."""
        now = self.clock()
        detail = f"unreadable trigger row: {type(exc).__name__}"
        self.marks.append(Dead(row_id, attempts, now, detail, trigger_id))
        self.marks.append(
            DeadLetter(
                "trigger", trigger_ref(trigger_id, row_id), "unreadable", detail, body.encode(), now
            )
        )
        self.metrics.dead_lettered.labels("trigger", "unreadable").inc()

    # ------------------------------------------------------------------ delivery
    def backoff(self, attempt: int) -> float:
        """Exponential backoff with full jitter: U(0.5, 1.0) x base x 2^(attempt-1), capped."""
        o = self.options
        raw = min(o.backoff_cap_s, o.backoff_base_s * (2 ** min(attempt - 1, 60)))
        return float(raw * (0.5 + 0.5 * self.rng.random()))

    def mode_of(self, processor: str) -> str:
        """The mode ``processor``'s triggers fire in now: ``shadow`` (plan and log, call no
        target) or ``live``: ``serve --shadow`` forces shadow; else the processor's ``mode``
        in routes.yaml; a processor no longer in it (its window or outbox row kept over a
        restart) takes ``defaults.mode``, as its window takes the defaults and its trigger
        the default target. A row is sent by the mode stored with it when it fired; this
        one only for a row stored without (:func:`~scoperouter.runtime.modes.row_mode`)."""
        return self.modes.of(processor)

    def _shadow(self, row_id: int, trigger: Trigger) -> None:
        """The one place a shadow row is settled: the trigger was planned, coalesced,
        persisted and is logged like a live one, with status ``shadow``; no sink is called."""
        now = self.clock()
        fired_ts = trigger.fired_at.timestamp() if trigger.fired_at else now
        m = self.metrics
        m.dispatch_attempts.labels(trigger.processor, SHADOW, SHADOW).inc()
        m.triggers_dispatched.labels(trigger.processor, SHADOW).inc()
        self.marks.append(Done(row_id, 0, now))
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
        self.log.dispatch(trigger, SHADOW, 0, max(0.0, now - fired_ts), now, None)

    def _settle(
        self,
        lane: Lane,
        row_id: int,
        trigger: Trigger,
        body: bytes | None,
        attempts: int,
        created: float,
        start: Start | None,
        error: DispatchError | None,
    ) -> None:
        """The outcome of attempt number ``attempts`` (``error`` None: delivered); ``start``
        None: the breaker has heard the call's answer already (:meth:`_heard`: a batch's
        failed call, once for all its rows)."""
        if error is None:
            self._settle_ok(lane, [(row_id, trigger, body, attempts - 1, created)])
            return
        m = self.metrics
        fired_ts = trigger.fired_at.timestamp() if trigger.fired_at else created
        now = self.clock()
        latency = max(0.0, now - fired_ts)
        if start is not None:
            self._heard(lane, start, error, now)
        if error.retryable:
            cap = lane.target.max_attempts
            if cap is not None and attempts >= cap:
                reason = "max_attempts"
            elif self.horizon_clock.horizon_now(now, lane.horizon_s) - created >= lane.horizon_s:
                # (a wall clock stepped forward ends no row early: bounded_clock.py)
                reason = "retry_horizon"
            else:
                self._retry_later(lane, row_id, trigger, attempts, now, error, created)
                return
        else:
            reason = "permanent_error"
        m.dispatch_attempts.labels(trigger.processor, "failed", LIVE).inc()
        self._dead(row_id, trigger, body, attempts, latency, now, reason, error)

    def _heard(self, lane: Lane, start: Start, error: DispatchError, now: float) -> None:
        """What one failed call tells the lane's breaker (once per call, whatever the rows
        it carried: the threshold counts failed attempts of the target). The target
        answered a permanent refusal: it is up; a local refusal (nothing was sent) says
        nothing about it: the breaker ignores it (a probe: the next row probes the target)."""
        if error.local:
            return
        if not error.retryable:
            if lane.breaker.succeeded():
                self._breaker_closed(lane, now)
        elif lane.breaker.failed(now, start):
            self._breaker_opened(lane, now, str(error))

    def _settle_ok(self, lane: Lane, rows: list[Row]) -> None:
        """Every row of one delivery was delivered (attempt number ``attempts_before + 1``
        each): what :meth:`_settle` does for each, with the lane's breaker, clock, counters,
        marks (one :class:`DoneMany`) and log hand-off touched once for the delivery; the
        rows of one ingest batch share their ``fired_at``, so their latency is observed
        once with their count."""
        m = self.metrics
        now = self.clock()
        if lane.breaker.succeeded():
            self._breaker_closed(lane, now)
        processor = rows[0][1].processor
        n = len(rows)
        m.child(m.dispatch_attempts, processor, "ok", LIVE).inc(n)
        m.child(m.triggers_dispatched, processor, LIVE).inc(n)
        attempts = tuple(map(_PLUS_ONE, map(_ATTEMPTS_BEFORE, rows)))
        self.marks.append(DoneMany(tuple(map(ROW_ID, rows)), attempts, now))
        if self.log.log is not None:
            self.log.dispatched_ok(rows, now)  # the log thread builds each row's outcome
        histogram = m.child(m.dispatch_latency, processor)
        fired = list(map(_FIRED_AT, map(ROW_TRIGGER, rows)))
        first = fired[0]
        if first is not None and fired.count(first) == n:
            observe_n(histogram, max(0.0, now - first.timestamp()), n)
            return
        observe_many(histogram, ok_latencies(rows, now))

    def _retry_later(
        self,
        lane: Lane,
        row_id: int,
        t: Trigger,
        attempts: int,
        now: float,
        error: DispatchError,
        created: float,
    ) -> None:
        """Attempt ``attempts`` failed, retryable: due again after the backoff, or after the
        pause the target asked for (``retry_after_s``) when longer -- that pause at most the
        backoff cap and what is left of the trigger's retry horizon."""
        self.metrics.dispatch_attempts.labels(t.processor, "retry", LIVE).inc()
        delay = self.backoff(attempts)
        if error.retry_after_s is not None:
            aged = self.horizon_clock.horizon_now(now, lane.horizon_s) - created
            pause = min(error.retry_after_s, self.options.backoff_cap_s, lane.horizon_s - aged)
            delay = max(delay, pause)
        at = now + delay
        self.marks.append(Retry(row_id, attempts, at, str(error), t.processor))  # stays pending
        lane.deferred(at)
        logger.info(
            "dispatch failed, retrying",
            extra={
                "trigger_id": t.trigger_id,
                "processor": t.processor,
                "attempt": attempts,
                "retry_in_s": round(delay, 3),
                "error": error.detail,
                "correlation_id": t.correlation_id,
            },
        )

    def _park(self, lane: Lane) -> None:
        """Paged rows back to the store (given back: a state store's lease is released)."""
        for r in lane.buffer:  # still pending in the store: paged again after recovery
            self.marks.append(Release(r.row_id))
        lane.buffer.clear()
        lane.rows_left()  # a page out now excluded these rows: its answer must not clear that

    def _breaker_opened(self, lane: Lane, now: float, error: str) -> None:
        self._park(lane)
        self.metrics.circuit_open.labels(lane.name).set(1)
        logger.log(
            logging.WARNING if lane.breaker.trips == 1 else logging.INFO,  # re-opened: INFO
            "target failing: circuit open, its backlog waits in the state store",
            extra={
                "processor": lane.name,
                "probe_in_s": round(lane.breaker.open_until - now, 3),
                "error": error,
            },
        )

    def _breaker_closed(self, lane: Lane, now: float) -> None:
        """The target works again: every deferred row of the lane is due now (redrive)."""
        self.marks.append(Redrive(lane.name, now))
        self.metrics.circuit_open.labels(lane.name).set(0)
        lane.rows_left()
        self._wake.set()
        logger.warning("target works again: circuit closed, redriving its backlog",
                       extra={"processor": lane.name})  # fmt: skip

    def _dead(
        self,
        row_id: int,
        trigger: Trigger,
        body: bytes | None,
        attempts: int,
        latency: float,
        now: float,
        reason: str,
        error: DispatchError,
    ) -> None:
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
        self.marks.append(Dead(row_id, attempts, now, str(error), trigger.trigger_id))
        self.marks.append(
            DeadLetter(
                "trigger", trigger_ref(trigger.trigger_id, row_id), reason, str(error), body, now
            )
        )
        self.metrics.dead_lettered.labels("trigger", reason).inc()
        self.log.dispatch(trigger, "dead_letter", attempts, latency, now, str(error))
        self.publish_dead_letter(
            {
                "kind": "trigger",
                "reason": reason,
                "detail": str(error),
                "trigger": trigger_json(trigger),
            }
        )

    def publish_dead_letter(self, payload: dict[str, Any]) -> None:
        """Copy a trigger's dead letter to the dead-letter topic, when one is configured:
        once (a failure is counted and logged; the dead row keeps the trigger until an
        operator redrives or discards it -- rejected events' copies are the store's to
        retry: :mod:`scoperouter.runtime.letter_copies`)."""
        pub = self.dead_letter_publisher
        if pub is None:
            return
        data = json.dumps(payload, default=str).encode()
        kind = str(payload.get("kind"))

        async def run() -> None:
            try:
                await pub(data, kind)
            except Exception as exc:
                self.metrics.dead_letter_topic_failures.labels(kind).inc()
                logger.error(
                    "could not publish a %s dead letter to the dead-letter topic (kept in "
                    "the state store as a dead row): %s: %s",
                    kind,
                    type(exc).__name__,
                    " ".join(str(exc).split())[:300],
                )

        self._spawn(run())

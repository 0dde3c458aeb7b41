"""Delivery of committed triggers: per-processor concurrency, retries with backoff, dead
letters. Outcomes leave as typed marks (:mod:`scoperouter.runtime.marks`).

Invariant: a trigger reaches the dispatcher only after the transaction that inserted it
into the outbox committed; its row is marked done or dead through a mark written in a
later state transaction, so a crash before that re-dispatches it (at-least-once; the
trigger id is the idempotency key downstream).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from scoperouter.errors import DispatchError
from scoperouter.messages.models import Trigger
from scoperouter.processor_registry.compiled import CompiledRegistry
from scoperouter.runtime.log_bridge import LogBridge
from scoperouter.runtime.marks import Attempt, Dead, DeadLetter, Done, MarkQueue
from scoperouter.runtime.metrics import Metrics
from scoperouter.runtime.options import RouterOptions
from scoperouter.runtime.outcomes import DeadLetterPublisher
from scoperouter.runtime.sinks import Sink, trigger_bytes, trigger_json

LIVE, SHADOW = "live", "shadow"  # a processor's dispatch mode (routes.yaml ``mode``)

logger = logging.getLogger("scoperouter.runtime")

Committed = tuple[int, Trigger, bytes]  # (outbox row id, trigger with fired_at, its body)


class Dispatcher:
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
        self.sinks = dict(sinks)
        self.fallback_sink = fallback_sink
        self.metrics = metrics
        self.options = options
        self.marks = marks
        self.log = log
        self.dead_letter_publisher = dead_letter_publisher
        self.clock = clock
        self.rng = rng
        self.tasks: set[asyncio.Task[None]] = set()
        self._semaphores = {
            name: asyncio.Semaphore(cp.target.concurrency)
            for name, cp in registry.processors.items()
        }
        self._default_sem = asyncio.Semaphore(registry.spec.defaults.target.concurrency)

    def fired(self, fired: list[Committed]) -> None:
        """Count and dispatch triggers that just committed."""
        scopes: Counter[str] = Counter()
        for row_id, t, body in fired:
            scopes[t.scope] += 1
            self.dispatch(row_id, t, body)
        for scope, n in scopes.items():
            self.metrics.triggers_fired.labels(scope).inc(n)

    def dispatch(
        self, row_id: int, trigger: Trigger, body: bytes | None = None, attempts: int = 0
    ) -> None:
        """Deliver in the background; ``attempts``: failed attempts before (a restart)."""
        self._spawn(self._deliver(row_id, trigger, body, attempts))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def backoff(self, attempt: int) -> float:
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
                    self.marks.append(Attempt(row_id, attempts))  # survives a restart
                    delay = self.backoff(attempts)
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
            self.marks.append(Done(row_id, attempts, now))
            self.log.dispatch(trigger, "ok", attempts, latency, now, None)
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
        self.marks.append(Dead(row_id, attempts, now, str(error)))
        self.marks.append(
            DeadLetter("trigger", f"{trigger.trigger_id}#{row_id}", reason, str(error), body, now)
        )
        m.dead_lettered.labels("trigger", reason).inc()
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
        """Copy a dead letter to the dead-letter topic, when one is configured."""
        pub = self.dead_letter_publisher
        if pub is None:
            return

        async def run() -> None:
            try:
                await pub(payload)
            except Exception:
                logger.exception("could not publish to the dead-letter topic (kept in SQLite)")

        self._spawn(run())

"""The bridge to the execution log: every call runs on one log thread, in order.

Invariant: the event loop never waits for the execution log (it batches and flushes to a
database that may be slow or remote); a failing log call is logged, never raised.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from typing import Any

from scoperouter.execution_log.api import ExecutionLog
from scoperouter.execution_log.completions import completion_from_event
from scoperouter.messages.models import Event, Trigger
from scoperouter.processor_registry.compiled import CompiledRegistry
from scoperouter.processor_registry.relations import RelationStore
from scoperouter.router.decisions import Decision

logger = logging.getLogger("scoperouter.runtime")


class LogBridge:
    def __init__(self, log: ExecutionLog | None, registry: CompiledRegistry) -> None:
        self.log = log
        self.registry = registry
        self._exec = ThreadPoolExecutor(max_workers=1, thread_name_prefix="scoperouter-log")

    def call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Run an execution-log call on the log thread (synchronously once shut down)."""

        def run() -> None:
            try:
                fn(*args, **kwargs)
            except Exception:
                logger.exception("execution log: %s failed", what)

        try:
            self._exec.submit(run)
        except RuntimeError:  # executor shut down: log synchronously
            run()

    def decisions(
        self,
        ev: Event,
        decisions: tuple[Decision, ...],
        at: datetime,
        as_of: date,
        relations: RelationStore,
    ) -> None:
        if self.log is None:
            return
        self.call(
            "record_decisions",
            self.log.record_decisions,
            ev,
            decisions,
            at,
            registry=self.registry,
            relations=relations,  # the data the decisions were planned with
            as_of=as_of,
        )

    def completion(self, ev: Event, trigger_id: str | None) -> None:
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

        self.call("record_completion", record)

    def dispatch(
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
        self.call(
            "record_dispatch",
            self.log.record_dispatch,
            trigger,
            status=status,
            attempts=attempts,
            latency_ms=latency_s * 1000.0,
            dispatched_at=datetime.fromtimestamp(now, UTC),
            error=error,
        )

    def flush(self) -> None:
        if self.log is not None:
            self.call("flush", self.log.flush)

    def shutdown(self) -> None:
        self.flush()
        self._exec.shutdown(wait=True)

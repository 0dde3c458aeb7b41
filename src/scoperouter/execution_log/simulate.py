"""Drive events through the planner and windows on a virtual clock and log everything.

What the daemon does, without I/O or a wall clock: used by tests, the benchmark and
anyone who wants a log from a JSONL stream (each trigger is "dispatched" at the time its
window fires, with ``status``). ``completion`` may return what the processor would report
for a trigger (records processed, entities changed, seconds) to fill the completions table.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import date, datetime

from scoperouter.execution_log.api import ExecutionLog
from scoperouter.messages.body_ids import accepted_as
from scoperouter.messages.models import Event, Trigger
from scoperouter.processor_registry.compiled import CompiledRegistry
from scoperouter.processor_registry.relations import RelationStore
from scoperouter.router.engine import Fired, RoutingEngine
from scoperouter.router.seen_ids import SeenIds
from scoperouter.runtime.loop_runtime import loop_not_modelled

logger = logging.getLogger(__name__)

CompletionFn = Callable[[Trigger], tuple[int, int | None, float] | None]


def record_stream(
    log: ExecutionLog,
    registry: CompiledRegistry,
    relations: RelationStore,
    events: Iterable[tuple[Event, datetime]],
    *,
    as_of: date,
    status: str = "ok",
    completion: CompletionFn | None = None,
) -> list[Trigger]:
    """Plan each ``(event, decided_at)`` (in order), window the decisions, fire triggers
    when due and log decisions, dispatches and completions. Returns the fired triggers.
    An event whose id was routed within ``server.dedup_horizon`` before is a redelivery and
    is skipped, unlogged, as ``serve`` and ``replay`` skip it (:class:`SeenIds`)."""
    if (warning := loop_not_modelled(registry, "the simulation")) is not None:
        logger.warning(warning)
    engine = RoutingEngine(registry)
    fired: list[Trigger] = []

    def fire(ts: list[Fired]) -> None:
        for f in ts:
            t = f.stamped()
            fired.append(t)
            log.record_dispatch(
                t, status=status, attempts=1, latency_ms=0.0, dispatched_at=f.fired_at
            )
            if completion is not None:
                rep = completion(t)
                if rep is not None:
                    log.record_completion(
                        t.processor,
                        t.game_date,
                        trigger_id=t.trigger_id,
                        records_processed=rep[0],
                        entities_changed=rep[1],
                        duration_s=rep[2],
                    )

    seen = SeenIds.of(registry)  # serve's and replay's dedupe rule
    for event, decided_at in events:
        event = accepted_as(event, decided_at.timestamp())  # an id-less send: its own event
        if seen.duplicate(event.event_id, decided_at.timestamp()):
            fire(engine.tick(decided_at.timestamp()))  # a redelivery: only the clock moves
            continue
        decisions, now_fired = engine.receive(event, relations, as_of, decided_at.timestamp())
        log.record_decisions(
            event, decisions, decided_at, registry=registry, relations=relations, as_of=as_of
        )
        fire(now_fired)
    fire(engine.drain())
    log.flush()
    return fired

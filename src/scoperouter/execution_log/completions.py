"""Completion reports from processors' own completion events.

A processor's completion event (its ``publishes`` source, e.g. from the SDK's
``CompletionPublisher``) says what the run changed: ``affected_entities`` (absent when
published at date level) and ``record_count``. The daemon can turn it into a completion
row so that waste is measured from what really changed::

    rep = completion_from_event(registry, event)
    if rep is not None:
        log.record_completion(rep.processor, rep.game_date, trigger_id=trigger_id,
                              records_processed=rep.records_processed,
                              entities_changed=rep.entities_changed, duration_s=duration_s or 0.0)

A ``duration_s`` of 0 means unknown: such completions do not count towards the measured
seconds per entity.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from scoperouter.messages.models import Event
from scoperouter.processor_registry.compiled import CompiledRegistry


@dataclass(frozen=True)
class CompletionReport:
    processor: str
    game_date: date
    records_processed: int
    entities_changed: int | None


def completion_from_event(registry: CompiledRegistry, event: Event) -> CompletionReport | None:
    """The completion a processor's own event reports, or None when the event is not a
    processor's completion, has no date or no ``record_count``, or did not succeed."""
    if (
        event.game_date is None
        or event.record_count is None
        or event.status not in ("success", "partial")
    ):
        return None
    producers = [p.name for p in registry.processors.values() if p.publishes == event.source]
    if len(producers) != 1:
        return None
    proc = registry.processors[producers[0]]
    changed: int | None = None
    if event.affected_entities is not None:
        ids: set[str] = set()
        for key, values in event.affected_entities.items():
            if registry.entity_type_of_key(key) == proc.granularity:
                ids.update(values)
        changed = len(ids)
    return CompletionReport(proc.name, event.game_date, event.record_count, changed)

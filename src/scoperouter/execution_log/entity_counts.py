"""How many entities a decision row counts: the ids an event's entities reach through a
processor's input paths (:func:`mapped_count`), and the entity universe of a date,
memoised (:class:`UniverseCache`). Pure reads of the registry and the relation data.
"""

from __future__ import annotations

from datetime import date

from scoperouter.messages.models import Event
from scoperouter.processor_registry.compiled import DATE_GRANULARITY, CompiledRegistry
from scoperouter.processor_registry.relations import RelationStore
from scoperouter.router.entity_mapping import map_ids


def mapped_count(
    registry: CompiledRegistry, relations: RelationStore, event: Event, processor: str, on: date
) -> int | None:
    """How many ids of the processor's granularity the event's entities reach on ``on``.

    None when it cannot be known (no entities, unmapped type, unknown id, date
    granularity, not an input). Mirrors the planner's mapping rule so that date-scope runs
    (fallback_threshold) still say how many entities really needed the work.
    """
    proc = registry.processors.get(processor)
    if proc is None or proc.granularity == DATE_GRANULARITY or not event.affected_entities:
        return None
    inp = proc.inputs.get(event.source)
    if inp is None:
        return None
    out: set[str] = set()
    for key, ids in event.affected_entities.items():
        etype = registry.entity_type_of_key(key)
        if etype is None:
            return None
        paths = inp.paths_of(etype)  # the normal path, then the also_map one
        if paths is None:
            return None
        for path in paths if ids else ():
            reached, _ = map_ids(relations, path, on, ids, None)  # the planner's traversal
            if not reached:  # an id reaching nothing
                return None
            out |= reached
    return len(out)


class UniverseCache:
    """``relations.universe(type, date)`` memoised; reset when the relations object changes."""

    def __init__(self, max_size: int = 50_000) -> None:
        self._rel: RelationStore | None = None
        self._map: dict[tuple[str, date], int | None] = {}
        self.max_size = max_size

    def get(self, relations: RelationStore, etype: str, on: date) -> int | None:
        if relations is not self._rel or len(self._map) >= self.max_size:
            self._rel = relations
            self._map = {}
        key = (etype, on)
        try:
            return self._map[key]
        except KeyError:
            v = self._map[key] = relations.universe(etype, on)
            return v


__all__ = ["UniverseCache", "mapped_count"]

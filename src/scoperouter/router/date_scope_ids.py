"""The ids whose later games a date-scope decision with a games lookback keeps. Pure.

Invariant: a full-date decision never covers fewer dates than the entity-scope decision it
replaces. So its ids are those the event's ids reach on its date(s), walked tolerantly
(:func:`~scoperouter.router.entity_mapping.reach_ids`: an id with no row drops only its own
branch), closed under the planner's later-roster walk
(:func:`~scoperouter.router.later_rosters.add_later_rosters`) but with no ``max_entities``
limit: the rows of every later date those ids' next games reach are
followed in turn, until a pass adds no id. Only an input with a games (occurrences)
lookback ``via`` a relation has them; every other input gets None (its dates do not depend
on ids).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date

from scoperouter.messages.models import Event
from scoperouter.processor_registry.relations import RelationStore
from scoperouter.router.entity_mapping import Path_, reach_ids
from scoperouter.router.later_rosters import Resolved, close_over_days
from scoperouter.router.planner_inputs import PlanInput


def _walks(entity_keys: Mapping[str, str], inp: PlanInput, event: Event) -> Resolved | None:
    """(key, path to the via relation's from-type, ids) for every key of the event with such
    a path (its ``also_map`` one too); types with none are left out. None without a ``via``
    or without entities."""
    if inp.via is None or not event.affected_entities:
        return None
    out: list[tuple[str, Path_, tuple[str, ...]]] = []
    for key, ids in event.affected_entities.items():
        et = entity_keys.get(key)
        path = inp.via_paths.get(et) if et is not None else None
        if path is None:
            continue
        also = inp.also_paths.get(et) if et is not None else None
        out.extend((key, p, ids) for p in ((path,) if also is None else (path, also)))
    return out


def lookback_ids(
    entity_keys: Mapping[str, str],
    inp: PlanInput,
    relations: RelationStore,
    event: Event,
    days: tuple[date, ...],
    as_of: date,
    seed: Iterable[str] = (),
) -> set[str] | None:
    """The ids a date-scope decision over ``days`` (the event's date, and an ``ahead``
    input's next ones) keeps the later games of: ``seed`` (ids already mapped) and what the
    event's ids reach on each day, tolerantly (an id with no row at some hop drops only its
    own branch), then on every later date those ids' next games reach from any day, to a
    fixpoint (:func:`~scoperouter.router.later_rosters.close_over_days`, no limit). None
    without a ``via`` or without entities."""
    walks = _walks(entity_keys, inp, event)
    if walks is None:
        return None
    known = set(seed)
    for on in days:
        for _key, path, ids in walks:
            known.update(reach_ids(relations, path, on, ids) if path else ids)
    if any(path for _key, path, _ids in walks):  # identity only: later dates add no one
        close_over_days(inp, relations, walks, days, as_of, known)
    return known


__all__ = ["lookback_ids"]

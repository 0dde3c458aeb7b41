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
from scoperouter.router.lookback_dates import entity_dates
from scoperouter.router.planner_inputs import PlanInput


def _walks(
    entity_keys: Mapping[str, str], inp: PlanInput, event: Event
) -> list[tuple[Path_, tuple[str, ...]]] | None:
    """(path to the via relation's from-type, ids) for every key of the event with such a
    path (its ``also_map`` one too); types with none are left out. None without a ``via``
    or without entities."""
    if inp.via is None or not event.affected_entities:
        return None
    out: list[tuple[Path_, tuple[str, ...]]] = []
    for key, ids in event.affected_entities.items():
        et = entity_keys.get(key)
        path = inp.via_paths.get(et) if et is not None else None
        if path is None:
            continue
        also = inp.also_paths.get(et) if et is not None else None
        out.extend((p, ids) for p in ((path,) if also is None else (path, also)))
    return out


def _reach(
    relations: RelationStore, walks: list[tuple[Path_, tuple[str, ...]]], on: date
) -> set[str]:
    """What ``walks`` reach on ``on``, tolerantly (an id with no row at some hop drops only
    its own branch)."""
    known: set[str] = set()
    for path, ids in walks:
        known.update(reach_ids(relations, path, on, ids) if path else ids)
    return known


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
    event's ids reach on each day, then on every later date those ids' next games reach
    from any day, to a fixpoint (each date followed once; no limit, so the result does not
    depend on the order of the dates). None without a ``via`` or without entities."""
    walks = _walks(entity_keys, inp, event)
    if walks is None:
        return None
    known = set(seed)
    for on in days:
        known.update(_reach(relations, walks, on))
    if not any(path for path, _ids in walks):
        return known  # identity only: a later date reaches the same ids
    walked = set(days)
    while True:
        todo: set[date] = set()
        ids_now = tuple(known)
        for on in days:
            todo.update(entity_dates(inp, relations, on, as_of, ids_now))
        todo -= walked
        if not todo:
            return known
        before = len(known)
        for on in todo:
            walked.add(on)
            known.update(_reach(relations, walks, on))
        if len(known) == before:  # no id added: the dates cannot grow either
            return known


__all__ = ["lookback_ids"]

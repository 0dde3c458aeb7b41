"""Entity mapping for the planner: an event's ids -> the processor's granularity. Pure.

Invariant: every id an event names under a mapped type is followed along every path of
that type -- the normal one (identity, ``map`` or the single relation) and the input's
``also_map`` path -- on the event's date, and one id that reaches nothing at any hop makes
the result empty (``empty_mapping``, the full date): processing less never loses an update.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date

from scoperouter.processor_registry.relations import RelationStore

Path_ = tuple[str, ...]

EMPTY_RESULT: tuple[frozenset[str], bool] = (frozenset(), True)


def resolve_keys(
    entity_keys: Mapping[str, str],
    paths: Mapping[str, Path_ | None],
    also_paths: Mapping[str, Path_],
    ents: Mapping[str, tuple[str, ...]],
) -> list[tuple[str, Path_, tuple[str, ...]]] | None:
    """(event key, path, ids) for every non-empty key of ``ents`` and every path its ids
    follow: the normal path, then the ``also_map`` one when the type has it. None when a
    key's type is unknown or unmapped (``unmapped_entity_type``: an also_map path never
    stands in for the normal mapping, or the named ids themselves would be left out)."""
    out: list[tuple[str, Path_, tuple[str, ...]]] = []
    for key, ids in ents.items():
        if not ids:
            continue
        et = entity_keys.get(key)
        path = paths.get(et) if et is not None else None
        if path is None:
            return None
        out.append((key, path, ids))
        also = also_paths.get(et) if et is not None else None
        if also is not None and also != path:
            out.append((key, also, ids))
    return out


def map_ids(
    relations: RelationStore, path: Path_, on: date, ids: Iterable[str], limit: int | None
) -> tuple[frozenset[str], bool]:
    """Follow ``path`` from ``ids`` on date ``on``.

    Returns (reached ids, complete). An empty set means some id, at some hop, reached
    nothing (empty_mapping). With ``limit``, the last hop stops collecting once more than
    ``limit`` ids are reached (complete=False) but still checks that every id reaches
    something.
    """
    frontier: Iterable[str] = ids
    targets = relations.targets
    last = len(path) - 1
    for hop, rel in enumerate(path):
        nxt: set[str] = set()
        if hop == last and limit is not None:
            for x in frontier:
                t = targets(rel, on, x)
                if not t:
                    return EMPTY_RESULT
                if len(nxt) <= limit:
                    nxt.update(t)
            return frozenset(nxt), len(nxt) <= limit
        for x in frontier:
            t = targets(rel, on, x)
            if not t:
                return EMPTY_RESULT
            nxt.update(t)
        frontier = nxt
    return frozenset(frontier), True


__all__ = ["EMPTY_RESULT", "map_ids", "resolve_keys"]

"""Entity mapping for the planner: an event's ids -> the processor's granularity. Pure.

Invariant: every id an event names under a mapped type is followed along every path of
that type -- the normal one (identity, ``map`` or the single relation) and the input's
``also_map`` path -- on the event's date, and one id that reaches nothing at any hop makes
the result empty (``empty_mapping``, the full date): processing less never loses an update.
So does a hop through a relation with dated rows on a date outside their span (before the
first dated date or after the last: its data for that date is not loaded,
:func:`~scoperouter.processor_registry.relations.unknown_on`) or on a hole of an
``every_day`` relation (a day its daily snapshot is missing); any other date inside the span
with no dated row is known and relates nobody but by the undated rows (a day without games). Its
undated rows alone would name only part of who is related then (a reading of SPEC, whose
undated rows hold on every date; a wholly undated relation still does).
The planner also follows the paths on a lookback's later dates
(:mod:`~scoperouter.router.later_rosters`), tolerantly (:func:`reach_ids`): there an id with
no row drops only its own branch (a date the relation does not know at all is the caller's
to check).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import date

from scoperouter.processor_registry.relations import RelationStore

Path_ = tuple[str, ...]

EMPTY_RESULT: tuple[frozenset[str], bool] = (frozenset(), True)


def resolve_keys(
    entity_keys: Mapping[str, str],
    paths_of: Callable[[str | None], tuple[Path_, ...] | None],
    ents: Mapping[str, tuple[str, ...]],
) -> list[tuple[str, Path_, tuple[str, ...]]] | None:
    """(event key, path, ids) for every non-empty key of ``ents`` and every path its ids
    follow (``paths_of``: the input's normal path, then its ``also_map`` one,
    :meth:`~scoperouter.processor_registry.compiled.CompiledInput.paths_of`). None when a
    key's type is unknown or unmapped (``unmapped_entity_type``)."""
    out: list[tuple[str, Path_, tuple[str, ...]]] = []
    for key, ids in ents.items():
        if not ids:
            continue
        paths = paths_of(entity_keys.get(key))
        if paths is None:
            return None
        out.extend((key, path, ids) for path in paths)
    return out


def map_ids(
    relations: RelationStore, path: Path_, on: date, ids: Iterable[str], limit: int | None
) -> tuple[frozenset[str], bool]:
    """Follow ``path`` from ``ids`` on date ``on``.

    Returns (reached ids, complete). An empty set means some id, at some hop, reached
    nothing, or a hop's relation does not know ``on``
    (:func:`~scoperouter.processor_registry.relations.unknown_on`): empty_mapping.
    With ``limit``, the last hop stops collecting once more than ``limit`` ids are reached
    (complete=False) but still checks that every id reaches something.
    """
    frontier: Iterable[str] = ids
    targets = relations.targets
    dated_span = relations.dated_span
    holes = relations.holes
    last = len(path) - 1
    for hop, rel in enumerate(path):
        span = dated_span(rel)
        if span is not None and (not (span[0] <= on <= span[1]) or on in holes(rel)):
            return EMPTY_RESULT  # unknown_on, inlined (holes only for a dated relation)
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


def reach_ids(
    relations: RelationStore, path: Path_, on: date, ids: Iterable[str]
) -> frozenset[str]:
    """Follow ``path`` from ``ids`` on date ``on``, tolerantly: each hop unites the targets
    of the ids that have rows there, so an id (or intermediate id) with no row drops only
    its own branch; the walk stops only when nothing is left (an empty result). For the
    dates that do not decide ``empty_mapping`` (a lookback's later dates), where
    :func:`map_ids`' all-or-nothing rule would drop what every other id reaches."""
    frontier: Iterable[str] = ids
    targets = relations.targets
    for rel in path:
        nxt: set[str] = set()
        for x in frontier:
            nxt.update(targets(rel, on, x))
        if not nxt:
            return frozenset()
        frontier = nxt
    return frozenset(frontier)


__all__ = ["EMPTY_RESULT", "map_ids", "reach_ids", "resolve_keys"]

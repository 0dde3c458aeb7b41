"""The later rosters of an entity-scope decision: what the event's ids reach on the later
dates of its lookback and on an ``ahead`` input's next days. Pure.

Invariant: each later (or ahead) date is walked tolerantly
(:func:`~scoperouter.router.entity_mapping.reach_ids`: an id, at any hop, with no row on
that date drops only its own branch, never what the other ids reach), and a date that a
relation on the paths does not know at all (it has dated rows and the date is outside
their span, after the last or before the first: its data is not loaded yet, or a hole of an
``every_day`` relation: its daily snapshot of that day is missing,
:func:`~scoperouter.processor_registry.relations.unknown_on`) is reported, never read as "nobody joins": the planner then runs the full date
(``unknown_relation_date``), as the event's own date is ``empty_mapping`` (an extension of
SPEC, whose hops use the event's date only). The walks add the ids they reach to the set
they are given, to a fixpoint: a games lookback's dates are the ids' next games, so an id a
later date adds may bring dates of its own, whose rows are followed in turn (each date once).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from scoperouter.processor_registry.relations import RelationStore
from scoperouter.router.entity_mapping import Path_, reach_ids
from scoperouter.router.lookback_dates import entity_dates
from scoperouter.router.planner_inputs import PlanInput

Resolved = Sequence[tuple[str, Path_, tuple[str, ...]]]
# the dates every relation of the paths knows: (first, last, holes inside them)
Known = tuple[date, date, frozenset[date]]


def _dated(relations: RelationStore, resolved: Resolved) -> Known | None:
    """The dates every relation of the paths knows: the intersection of the dated spans
    of those that have dated rows (a wholly undated relation knows every date), less the
    holes of the ``every_day`` ones, or None when none has dated rows (no date is unknown).
    Empty (first > last) when two spans do not meet."""
    span = relations.dated_span
    first: date | None = None
    last: date | None = None
    holes: frozenset[date] = frozenset()
    for _key, path, _ids in resolved:
        for rel in path:
            s = span(rel)
            if s is not None:
                first = s[0] if first is None or s[0] > first else first
                last = s[1] if last is None or s[1] < last else last
                h = relations.holes(rel)
                if h:
                    holes = holes | h
    return None if first is None or last is None else (first, last, holes)


def _unknown(known: Known, on: date) -> bool:
    """Whether ``on`` is outside ``known`` or one of its holes (a relation on the paths has
    not loaded it)."""
    return not (known[0] <= on <= known[1]) or on in known[2]


def _reach(relations: RelationStore, resolved: Resolved, on: date, mapped: set[str]) -> None:
    """Add to ``mapped`` what the event's ids reach on ``on`` (tolerantly)."""
    for _key, path, ids in resolved:
        if path:  # one id unknown on that date, at any hop, hides no other's
            mapped.update(reach_ids(relations, path, on, ids))


def add_later_rosters(
    inp: PlanInput,
    relations: RelationStore,
    resolved: Resolved,
    d: date,
    as_of: date,
    mapped: set[str],
) -> tuple[tuple[date, ...], bool]:
    """Add to ``mapped`` what the event's ids reach on each later date of the decision for
    the event's date ``d``: whoever joins a team after ``d`` still reads its rows on those
    dates. A fixpoint; it stops when a pass adds no id (so no date), or once ``mapped`` is
    past ``max_entities`` (the caller falls back to date scope). Returns the lookback dates
    of the final ``mapped`` (the decision's when it stays entity scope) and whether a date
    it followed is unknown for a relation on the paths (then the full date)."""
    dated = _dated(relations, resolved)
    unknown = False
    visited = {d}
    while True:
        later = entity_dates(inp, relations, d, as_of, tuple(sorted(mapped)))
        before = len(mapped)
        for on in later:
            if on in visited:
                continue
            visited.add(on)
            if dated is not None and not unknown:
                unknown = _unknown(dated, on)
            for _key, path, ids in resolved:
                if path:  # one id unknown on that date, at any hop, hides no other's
                    mapped.update(reach_ids(relations, path, on, ids))
            if len(mapped) > inp.max_entities:
                return later, unknown
        # a days lookback's dates do not depend on the ids: one pass is the fixpoint
        if len(mapped) == before or not inp.lookback_games:
            return later, unknown


def add_ahead_rosters(
    inp: PlanInput,
    relations: RelationStore,
    resolved: Resolved,
    days: Sequence[date],
    as_of: date,
    mapped: set[str],
) -> bool:
    """Add to ``mapped`` what the event's ids reach on each ahead day (``days[1:]``; the
    event's date ``days[0]`` was mapped strictly) and on every later date the lookbacks of
    all ``days`` reach, to a fixpoint over them all with no limit (so what it reaches does
    not depend on the order of the dates). Returns whether a date it followed is unknown
    for a relation on the paths (an ahead day whose roster is not loaded yet included)."""
    dated = _dated(relations, resolved)
    unknown = dated is not None and any(_unknown(dated, on) for on in days[1:])
    for on in days[1:]:
        for _key, path, ids in resolved:
            mapped.update(reach_ids(relations, path, on, ids) if path else ids)
    if not (inp.lookback_days or inp.lookback_games):
        return unknown
    return close_over_days(inp, relations, resolved, days, as_of, mapped, dated) or unknown


def close_over_days(
    inp: PlanInput,
    relations: RelationStore,
    resolved: Resolved,
    days: Sequence[date],
    as_of: date,
    mapped: set[str],
    dated: Known | None = None,
) -> bool:
    """Add to ``mapped`` what ``resolved``'s ids reach on every later date the lookbacks of
    all ``days`` reach from ``mapped``, to a fixpoint with no limit (each date followed
    once, so the result does not depend on their order); ``days`` themselves are the
    caller's. Returns whether a date it followed lies outside ``dated`` or is one of its holes
    (:func:`_dated`)."""
    unknown = False
    walked = set(days)
    while True:
        todo: set[date] = set()
        ids_now = tuple(sorted(mapped))
        for on in days:
            todo.update(entity_dates(inp, relations, on, as_of, ids_now))
        todo -= walked
        if not todo:
            return unknown
        before = len(mapped)
        for on in sorted(todo):
            walked.add(on)
            if dated is not None and not unknown:
                unknown = _unknown(dated, on)
            _reach(relations, resolved, on, mapped)
        if len(mapped) == before:  # no id added: the dates cannot grow either
            return unknown


__all__ = ["add_ahead_rosters", "add_later_rosters", "close_over_days"]

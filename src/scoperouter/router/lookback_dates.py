"""Which dates a decision covers: its event's date D plus the later dates its lookback
reaches, up to ``as_of`` (SPEC section 2, "lookback"; the readings of the contract are the
planner's docstring, :mod:`scoperouter.router.planner`).

Invariant: pure (relations, D, ``as_of`` and ids in; sorted dates out, no I/O, no clock);
every date returned is in ``[D, as_of]`` and D is always among them; a later date on which
the ``via`` relation has no dated row is unknown, not a day off, so it is covered, never
skipped (missing relation data never loses a lookback date); and an id the ``via`` relation
does not know at all (no row, dated or not) covers every date up to ``as_of``, those
``via`` has rows on included. The occurrence rule is
:mod:`scoperouter.processor_registry.relations`' (shared with the backfill planner).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta
from typing import Protocol

from scoperouter.processor_registry.relations import (
    RelationStore,
    known_on,
    knows,
    next_occurrences,
    occurring_on,
)


class Lookback(Protocol):
    """An input's lookback as the planner compiled it
    (:class:`~scoperouter.router.planner_inputs.PlanInput`)."""

    @property
    def lookback_days(self) -> int: ...
    @property
    def lookback_games(self) -> int: ...
    @property
    def via(self) -> str | None: ...


def later_dates(
    inp: Lookback,
    relations: RelationStore,
    d: date,
    as_of: date,
    known_ids: Iterable[str] | None,
) -> tuple[date, ...]:
    """D plus the lookback dates of a date-scope decision."""
    if inp.lookback_days:
        return _days_after(d, inp.lookback_days, as_of)
    if inp.lookback_games and inp.via is not None:
        if d >= as_of:
            return (d,)
        ids: Iterable[str] | None = occurring_on(relations, inp.via, d)
        if ids is None:
            # no dated via row on D: who played is unknown (undated rows or not), so
            # every later date may hold one of their next games.
            return _days_after(d, (as_of - d).days, as_of)
        if known_ids is not None:
            ids = set(ids).union(known_ids)
        return _games_after(relations, inp.via, ids, d, inp.lookback_games, as_of)
    return (d,)


def entity_dates(
    inp: Lookback, relations: RelationStore, d: date, as_of: date, ids: tuple[str, ...]
) -> tuple[date, ...]:
    """D plus the lookback dates of an entity-scope decision over ``ids`` (a games
    lookback: those ids' next games only)."""
    if inp.lookback_days:
        return _days_after(d, inp.lookback_days, as_of)
    if inp.lookback_games and inp.via is not None:
        if d >= as_of:
            return (d,)
        return _games_after(relations, inp.via, ids, d, inp.lookback_games, as_of)
    return (d,)


def _days_after(d: date, n: int, as_of: date) -> tuple[date, ...]:
    days = min(n, (as_of - d).days)
    if days <= 0:
        return (d,)
    return tuple(d + timedelta(days=i) for i in range(days + 1))


def _games_after(
    relations: RelationStore, via: str, ids: Iterable[str], d: date, n: int, as_of: date
) -> tuple[date, ...]:
    found: set[date] = {d}
    reach = d  # the last date any entity's lookback reaches
    for eid in ids:
        if not knows(relations, via, eid):
            # no via row at all: its next games are unknown, and the dates via does cover
            # may hold them too (a player the schedule does not name yet): every date
            return _days_after(d, (as_of - d).days, as_of)
        # an undated via row holds on every date: its next N occurrences are D+1..D+N
        nxt = next_occurrences(relations, via, eid, d, n)
        if len(nxt) < n:
            reach = as_of
        for later in nxt:
            if later > as_of:
                break
            found.add(later)
        if nxt:
            reach = max(reach, min(nxt[-1], as_of))
    # A date with no dated via row is unknown (relation data missing), not a day off:
    # it may hold one of the next games, so it is covered too.
    x = d + _ONE_DAY
    while x <= reach:
        if x not in found and not known_on(relations, via, x):
            found.add(x)
        x += _ONE_DAY
    return tuple(sorted(found))


_ONE_DAY = timedelta(days=1)

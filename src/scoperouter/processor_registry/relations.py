"""Relation data: how a change to one entity reaches another, per date.

The planner only sees the :class:`RelationStore` protocol, so SQLite or BigQuery providers
can follow the CSV one. :class:`InMemoryRelations` is the compiled, immutable lookup
structure every provider loads into (relation data is small: thousands of rows a day).

Semantics (SPEC section 2): a row with a date holds on that date only; a row with an empty
date holds on every date; an ``inverse_of`` relation's rows are the base relation's rows
reversed. A relation with dated rows is known from its first dated date to its last: it says
nothing about a date outside that span (:func:`unknown_on`: not loaded yet), undated rows or
not, while a date inside it with no dated row relates nobody but by the undated rows (a
schedule's day without games) -- unless the relation is declared ``every_day`` (a daily
snapshot such as a roster, whose inverse inherits it): then such a date is a *hole*
(:meth:`RelationStore.holes`), unknown like a date outside the span (its loading job failed
that day), never "nobody is on the team". A reading of SPEC for the mapping; the occurrence
rules below stay per date (a hole has no dated row, so it already is an unknown occurrence
date of a ``via``); ``relation_mixed_dates`` warns about a file mixing both, and
``relation_missing_days`` about an ``every_day`` file with holes
(:mod:`~scoperouter.processor_registry.relation_warnings`). Ids are read stripped; an id holding a character that is not printable (a
zero-width or no-break space, a stray BOM, NUL or another control) is an error at its line,
never a row that matches no event id (the team it belongs to would reach fewer players).
Ids match exactly, case included; two ids of one entity type that differ only by case
(``LAL``, ``lal``) load as two entities, with a ``relation_id_case`` warning at the second
spelling's file:line (``case_clashes``; ``validate`` prints it, ``serve`` logs it).

Occurrences (``lookback: {occurrences: N, via: R}``), one rule for the router's planner and
the backfill planner (:func:`occurring_on`, :func:`next_occurrences`,
:func:`nth_previous_occurrence`): an entity occurs on the dates of its dated ``R`` rows, and
on every date when it has an undated one. A date without any dated ``R`` row is unknown
(its relation data is not loaded), undated rows or not: they say nothing about who else
occurred then, so callers cover every date such a date may reach. So is every occurrence
of an id with no ``R`` row at all (:func:`knows`): the dates ``R`` does cover may be its
(a player the schedule data does not name yet), so callers cover every later date for it.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Protocol

from scoperouter.errors import ConfigIssue
from scoperouter.processor_registry.relation_csv import Row as Row  # re-exported (moved)
from scoperouter.processor_registry.relation_csv import (
    read_relation_csv as read_relation_csv,  # re-exported (moved)
)
from scoperouter.processor_registry.relation_warnings import (
    case_clashes,
    isolated_last_date,
    missing_dates,
    missing_days,
    mixed_dates,
)

_EMPTY: frozenset[str] = frozenset()
_EMPTY_DATES: frozenset[date] = frozenset()


class RelationStore(Protocol):
    """What the planner needs from relation data. Implementations must be pure lookups."""

    def targets(self, relation: str, on: date, entity_id: str) -> frozenset[str]:
        """Ids reached from ``entity_id`` through ``relation`` on date ``on``."""

    def dates_of(self, relation: str, entity_id: str) -> tuple[date, ...]:
        """Sorted dates on which ``entity_id`` has dated rows of ``relation`` (its games)."""

    def sources_on(self, relation: str, on: date) -> frozenset[str]:
        """Ids with a row of ``relation`` dated exactly ``on``."""

    def undated_sources(self, relation: str) -> frozenset[str]:
        """Ids with an undated row of ``relation`` (it holds on every date)."""

    def dated_span(self, relation: str) -> tuple[date, date] | None:
        """The first and last dates of ``relation``'s dated rows (None: it has none). A date
        outside that span is not loaded (unknown); one inside with no row relates nobody,
        unless it is one of :meth:`holes`."""

    def holes(self, relation: str) -> frozenset[date]:
        """The dates inside :meth:`dated_span` with no dated row of an ``every_day``
        relation (a daily snapshot): not loaded, unknown like a date outside the span. Empty
        for any other relation (its empty days relate nobody: a day without games)."""

    def universe(self, entity_type: str, on: date) -> int | None:
        """How many entities of that type exist on that date (None when unknown)."""


class _Table:
    __slots__ = ("always", "by_date", "dates_by_id", "holes", "on_date", "span", "undated")

    def __init__(self, rows: Iterable[Row], every_day: bool = False) -> None:
        always: dict[str, set[str]] = defaultdict(set)
        by_date: dict[date, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
        dates_by_id: dict[str, set[date]] = defaultdict(set)
        for d, src, dst in rows:
            if d is None:
                always[src].add(dst)
            else:
                by_date[d][src].add(dst)
                dates_by_id[src].add(d)
        self.always: dict[str, frozenset[str]] = {k: frozenset(v) for k, v in always.items()}
        self.undated: frozenset[str] = frozenset(self.always)
        self.by_date: dict[date, dict[str, frozenset[str]]] = {
            d: {k: frozenset(v) for k, v in m.items()} for d, m in by_date.items()
        }
        self.on_date: dict[date, frozenset[str]] = {
            d: frozenset(m) for d, m in self.by_date.items()
        }
        self.dates_by_id: dict[str, tuple[date, ...]] = {
            k: tuple(sorted(v)) for k, v in dates_by_id.items()
        }
        self.span: tuple[date, date] | None = (
            (min(self.by_date), max(self.by_date)) if self.by_date else None
        )
        self.holes: frozenset[date] = (
            missing_dates(self.by_date, self.span) if every_day and self.span else _EMPTY_DATES
        )

    def targets(self, on: date, entity_id: str) -> frozenset[str]:
        a = self.always.get(entity_id, _EMPTY)
        day = self.by_date.get(on)
        b = day.get(entity_id, _EMPTY) if day else _EMPTY
        if not b:
            return a
        if not a:
            return b
        return a | b


class InMemoryRelations:
    """Immutable relation data, indexed for O(1) lookups per (relation, date, id)."""

    def __init__(
        self,
        rows: Mapping[str, Iterable[Row]],
        *,
        inverses: Mapping[str, str] | None = None,
        types: Mapping[str, tuple[str, str]] | None = None,
        warnings: Sequence[ConfigIssue] = (),
        every_day: Collection[str] = (),
    ) -> None:
        """``rows`` per base relation; ``inverses`` maps an inverse relation to its base;
        ``types`` maps every relation (base and inverse) to its (from, to) entity types;
        ``warnings``: what loading found worth saying (:func:`case_clashes`);
        ``every_day``: the base relations whose dated rows are a daily snapshot (their
        inverses inherit it): a date of their span without a dated row is a hole."""
        self.warnings: tuple[ConfigIssue, ...] = tuple(warnings)
        materialised = {name: list(r) for name, r in rows.items()}
        daily = frozenset(every_day)
        self._tables: dict[str, _Table] = {
            n: _Table(r, n in daily) for n, r in materialised.items()
        }
        for inv, base in (inverses or {}).items():
            base_rows = materialised.get(base, [])
            self._tables[inv] = _Table(
                ((d, dst, src) for d, src, dst in base_rows), base in daily or inv in daily
            )
        self._spans: dict[str, tuple[date, date]] = {
            n: t.span for n, t in self._tables.items() if t.span is not None
        }
        self._holes: dict[str, frozenset[date]] = {
            n: t.holes for n, t in self._tables.items() if t.holes
        }
        self._types = dict(types or {})
        # entity universe per type: ids valid on every date + ids per date
        always: dict[str, set[str]] = defaultdict(set)
        dated: dict[str, dict[date, set[str]]] = defaultdict(lambda: defaultdict(set))
        for name, r in materialised.items():
            if name not in self._types:
                continue
            ftype, ttype = self._types[name]
            for d, src, dst in r:
                if d is None:
                    always[ftype].add(src)
                    always[ttype].add(dst)
                else:
                    dated[ftype][d].add(src)
                    dated[ttype][d].add(dst)
        self._always_ids = {k: frozenset(v) for k, v in always.items()}
        self._dated_ids = {k: {d: frozenset(s) for d, s in m.items()} for k, m in dated.items()}

    def relation_names(self) -> frozenset[str]:
        return frozenset(self._tables)

    def targets(self, relation: str, on: date, entity_id: str) -> frozenset[str]:
        t = self._tables.get(relation)
        return t.targets(on, entity_id) if t is not None else _EMPTY

    def dates_of(self, relation: str, entity_id: str) -> tuple[date, ...]:
        t = self._tables.get(relation)
        return t.dates_by_id.get(entity_id, ()) if t is not None else ()

    def undated_sources(self, relation: str) -> frozenset[str]:
        """Ids with an undated row of ``relation``: it holds on every date, so as a ``via``
        relation they have an occurrence on every date (never in :meth:`dates_of`)."""
        t = self._tables.get(relation)
        return t.undated if t is not None else _EMPTY

    def sources_on(self, relation: str, on: date) -> frozenset[str]:
        t = self._tables.get(relation)
        return t.on_date.get(on, _EMPTY) if t is not None else _EMPTY

    def dated_span(self, relation: str) -> tuple[date, date] | None:
        return self._spans.get(relation)

    def holes(self, relation: str) -> frozenset[date]:
        return self._holes.get(relation, _EMPTY_DATES)

    def universe(self, entity_type: str, on: date) -> int | None:
        a = self._always_ids.get(entity_type)
        d = self._dated_ids.get(entity_type, {}).get(on)
        if a is None and d is None:
            return None
        return len((a or _EMPTY) | (d or _EMPTY))


EMPTY_RELATIONS = InMemoryRelations({})


def known_on(store: RelationStore, via: str, on: date) -> bool:
    """Whether ``via`` says who occurs on ``on``: it has a dated row that day (module
    docstring: undated rows alone leave the date unknown)."""
    return bool(store.sources_on(via, on))


def unknown_on(store: RelationStore, relation: str, on: date) -> bool:
    """Whether ``relation`` says nothing about ``on``: it has dated rows and ``on`` is before
    its first dated date or after its last (that date's data is not loaded; its undated rows
    say nothing about who else is related then), or ``on`` is a hole of an ``every_day``
    relation (:meth:`RelationStore.holes`: its daily snapshot of that day is missing). Any
    other date inside that span with no dated row is known: nobody is related that day but
    by the undated rows (a schedule's day without games). A wholly undated relation holds
    on every date (SPEC), so no date is unknown."""
    span = store.dated_span(relation)
    return span is not None and (not (span[0] <= on <= span[1]) or on in store.holes(relation))


def occurring_on(store: RelationStore, via: str, on: date) -> frozenset[str] | None:
    """The ids with an occurrence on ``on`` (its dated rows and every undated row), or None
    when the date is unknown (no dated row)."""
    dated = store.sources_on(via, on)
    if not dated:
        return None
    every = store.undated_sources(via)
    return dated | every if every else dated


def knows(store: RelationStore, via: str, entity_id: str) -> bool:
    """Whether ``via`` has any row for ``entity_id`` (dated or not). An id it does not know
    at all has unknown occurrences (module docstring): callers cover every date up to
    their as-of date for it, as for a date without dated rows."""
    return bool(store.dates_of(via, entity_id)) or entity_id in store.undated_sources(via)


def next_occurrences(
    store: RelationStore, via: str, entity_id: str, after: date, n: int
) -> tuple[date, ...]:
    """The entity's first ``n`` occurrence dates after ``after``: the next ``n`` dates with
    an undated row (it occurs on every date), else its next dated rows -- fewer than ``n``
    when the data knows fewer (callers then cover up to their as-of date)."""
    if entity_id in store.undated_sources(via):
        return tuple(after + timedelta(days=k) for k in range(1, n + 1))
    ds = store.dates_of(via, entity_id)
    i = bisect_right(ds, after)
    return ds[i : i + n]


def nth_previous_occurrence(
    store: RelationStore, via: str, entity_id: str, on: date, n: int
) -> date | None:
    """The date of the entity's ``n``-th occurrence before ``on`` (``on - n`` days with an
    undated row), or None when fewer than ``n`` are known."""
    if entity_id in store.undated_sources(via):
        return on - timedelta(days=n)
    ds = store.dates_of(via, entity_id)
    i = bisect_left(ds, on)
    return ds[i - n] if i >= n else None


def load_csv_relations(
    directory: Path,
    base_relations: Mapping[str, tuple[str, str]],
    inverses: Mapping[str, str],
    inverse_types: Mapping[str, tuple[str, str]],
    every_day: Collection[str] = (),
) -> InMemoryRelations:
    """Load ``<directory>/<relation>.csv`` for every base relation (``every_day``: those
    whose dated rows are a daily snapshot); the result's ``warnings`` name the ids that
    differ from another only by case (:func:`case_clashes`), the files mixing dated and
    undated rows (:func:`mixed_dates`), the ``every_day`` files with missing days inside
    their span (:func:`missing_days`) and the files whose latest date stands far after the
    rest (:func:`isolated_last_date`)."""
    rows: dict[str, list[Row]] = {}
    read: list[tuple[str, tuple[str, str], list[Row], list[int]]] = []
    for name, ends in base_relations.items():
        path, at = directory / f"{name}.csv", list[int]()
        rows[name] = read_relation_csv(path, at)
        read.append((str(path), ends, rows[name], at))
    types = dict(base_relations)
    types.update(inverse_types)
    daily = [f for f, name in zip(read, base_relations, strict=True) if name in every_day]
    warnings = (
        *case_clashes(read),
        *mixed_dates(read),
        *missing_days(daily),
        *isolated_last_date(read),
    )
    return InMemoryRelations(
        rows, inverses=inverses, types=types, warnings=warnings, every_day=every_day
    )

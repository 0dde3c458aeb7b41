"""Interop with today's dependency-tracking columns.

Invariant: the tracking columns are never an event's ``changed_fields``: they are columns
of this processor's rows, not the output fields its readers' ``fields:`` name, so such an
event would skip every consumer that lists fields (``irrelevant_fields``). They are
:attr:`UpstreamDiff.changed_columns`; ``UpstreamDiff`` has no ``changed_fields``.

Production processors record, for each upstream source they read, four columns on their
output rows (najicham/nba-stats-scraper ``data_processors/analytics/mixins/
metadata_mixin.py:80-84`` and ``:104-110``; the ``field_prefix`` of ``get_dependencies()``
already starts with ``source_``)::

    source_{prefix}_last_updated      TIMESTAMP   when the upstream data was last written
    source_{prefix}_rows_found        INT64       rows found upstream for the scope
    source_{prefix}_completeness_pct  FLOAT64     share of expected rows present
    source_{prefix}_hash              STRING      the upstream ``data_hash`` (may be NULL)

When both runs recorded a hash, the hash alone decides whether the source changed (as
production's ``should_skip_processing`` does, ``metadata_mixin.py:259-288``: a rewrite that
moved ``last_updated`` but not the content is no change); otherwise the other three
columns decide, and a hash that appears or disappears is a change.

:func:`compare_sources` compares the values stored by the previous run with the ones
observed now and tells the processor whether anything upstream changed (``skip`` when
not) and which tracking columns moved (``changed_columns``, for logs)::

    diff = compare_sources(previous_row, current_metadata)
    if diff.skip:
        return  # nothing upstream changed: no work, no event
    # ... recompute; announce the output fields a row diff found (ChangeDetector), or:
    publisher.publish(..., changed_fields=None)  # unknown: relevant to every reader

A missing previous row (first run) or a source that appears or disappears counts as a
change; an empty hash counts as none. Per entity, :func:`entities_with_upstream_change`
keeps only the ids whose metadata moved, appeared or disappeared.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

SUFFIXES = ("last_updated", "rows_found", "completeness_pct", "hash")
BASE_SUFFIXES = SUFFIXES[:3]  # what every run records; ``hash`` only where upstream has one
_COLUMN_RE = re.compile(
    r"source_(?P<prefix>[A-Za-z0-9_]+?)_(?P<suffix>last_updated|rows_found|completeness_pct|hash)"
)


@dataclass(frozen=True)
class SourceState:
    """One upstream source's tracking values (``None`` = not recorded)."""

    last_updated: datetime | None = None
    rows_found: int | None = None
    completeness_pct: float | None = None
    hash: str | None = None


def column_name(prefix: str, suffix: str) -> str:
    """``source_{prefix}_{suffix}``; ``suffix`` is one of :data:`SUFFIXES`."""
    if suffix not in SUFFIXES:
        raise ValueError(
            f"unknown dependency suffix {suffix!r}; expected one of {', '.join(SUFFIXES)}"
        )
    if not re.fullmatch(r"[A-Za-z0-9_]+", prefix):
        raise ValueError(f"invalid source prefix {prefix!r}")
    return f"source_{prefix}_{suffix}"


def _timestamp(value: object, col: str) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        ts = value
    elif isinstance(value, date):
        ts = datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        try:
            ts = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise ValueError(f"{col}: not an ISO timestamp: {value!r}") from exc
    else:
        raise ValueError(f"{col}: expected a timestamp, got {type(value).__name__}")
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def _int(value: object, col: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"{col}: expected an integer, got {value!r}")
    try:
        number = float(value)
    except ValueError as exc:
        raise ValueError(f"{col}: expected an integer, got {value!r}") from exc
    if math.isnan(number):
        return None  # a NULL INT64 read through pandas: not recorded, as a NaN percentage
    if not number.is_integer():
        raise ValueError(f"{col}: expected an integer, got {value!r}")
    return int(number)


def _float(value: object, col: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"{col}: expected a number, got {value!r}")
    try:
        number = float(value)
    except ValueError as exc:
        raise ValueError(f"{col}: expected a number, got {value!r}") from exc
    if math.isnan(number):
        return None
    return number


def _str(value: object, col: str) -> str | None:
    """A hash; an empty one is none (production keeps only truthy hashes,
    ``metadata_mixin.py:246``): two empty hashes are no evidence of equal content."""
    if value is None or isinstance(value, str):
        return value or None
    raise ValueError(f"{col}: expected a string hash, got {type(value).__name__}")


def source_states(row: Mapping[str, Any]) -> dict[str, SourceState]:
    """Every ``source_{prefix}_*`` group of ``row`` as ``{prefix: SourceState}``. Other keys are ignored."""
    raw: dict[str, dict[str, Any]] = {}
    for key, value in row.items():
        m = _COLUMN_RE.fullmatch(key)
        if m:
            raw.setdefault(m.group("prefix"), {})[m.group("suffix")] = (key, value)
    out: dict[str, SourceState] = {}
    for prefix, parts in raw.items():
        lu = parts.get("last_updated", (None, None))
        rf = parts.get("rows_found", (None, None))
        cp = parts.get("completeness_pct", (None, None))
        hs = parts.get("hash", (None, None))
        out[prefix] = SourceState(
            last_updated=_timestamp(lu[1], lu[0] or prefix),
            rows_found=_int(rf[1], rf[0] or prefix),
            completeness_pct=_float(cp[1], cp[0] or prefix),
            hash=_str(hs[1], hs[0] or prefix),
        )
    return out


def dependency_columns(prefix: str, state: SourceState) -> dict[str, object]:
    """The columns to store on the output row for ``prefix`` (the hash when known)."""
    cols: dict[str, object] = {
        column_name(prefix, "last_updated"): state.last_updated,
        column_name(prefix, "rows_found"): state.rows_found,
        column_name(prefix, "completeness_pct"): state.completeness_pct,
    }
    if state.hash is not None:
        cols[column_name(prefix, "hash")] = state.hash
    return cols


def _suffixes(*states: SourceState | None) -> tuple[str, ...]:
    """The columns a source is described by: the hash too when any side recorded one."""
    return SUFFIXES if any(s is not None and s.hash is not None for s in states) else BASE_SUFFIXES


@dataclass(frozen=True)
class UpstreamDiff:
    """What changed upstream between two runs: the sources that moved and their tracking
    columns (``source_{prefix}_*``) that did -- never an event's ``changed_fields``."""

    changed_sources: tuple[str, ...]
    changed_columns: tuple[str, ...]
    first_run: bool = False

    @property
    def changed_fields(self) -> tuple[str, ...]:
        """Removed (was these columns): publishing them as an event's ``changed_fields``
        made every reader with ``fields:`` skip the change."""
        raise AttributeError(
            "UpstreamDiff.changed_fields is now changed_columns: these are dependency-tracking "
            "columns, not output fields -- publish changed_fields=None (unknown) or the fields "
            "a row diff found (ChangeDetector)"
        )

    @property
    def skip(self) -> bool:
        """True when nothing upstream changed: the processor can skip the work."""
        return not self.changed_sources and not self.first_run

    @property
    def reason(self) -> str:
        if self.first_run:
            return "no previous run"
        if self.skip:
            return "no upstream change"
        return "upstream changed: " + ", ".join(self.changed_sources)


def _wanted(sources: Iterable[str] | None, known: set[str]) -> set[str] | None:
    """The prefixes ``sources`` names: bare (``odds``) or as production's ``field_prefix``
    (``source_odds``: ``get_dependencies()``, ``data_processors/analytics/
    player_game_summary/player_game_summary_processor.py:256,306``). A name neither row
    records raises: filtering to nothing would read as "nothing upstream changed"."""
    if sources is None:
        return None
    if isinstance(sources, str):
        raise TypeError("sources must be a list of source prefixes, not a string")
    wanted: set[str] = set()
    for name in sources:
        bare = name.removeprefix("source_")
        prefix = name if name in known else bare if bare in known else None
        if prefix is None:
            raise ValueError(
                f"source {name!r} is recorded by neither row (known: {', '.join(sorted(known))})"
            )
        wanted.add(prefix)
    return wanted


def compare_sources(
    previous: Mapping[str, Any] | None,
    current: Mapping[str, Any],
    *,
    sources: Iterable[str] | None = None,
    completeness_tolerance: float = 0.0,
) -> UpstreamDiff:
    """Compare two rows (or metadata dicts) of ``source_{prefix}_*`` columns.

    ``sources`` restricts the comparison to some prefixes (bare, ``odds``, or production's
    ``field_prefix``, ``source_odds``); one that neither row records raises ValueError. ``completeness_tolerance``
    (percentage points) ignores tiny completeness moves. A column present on one side only
    counts as changed. ``previous=None`` is a first run: not skippable, every column
    of ``current`` listed as changed.
    """
    if completeness_tolerance < 0:
        raise ValueError("completeness_tolerance must be >= 0")
    cur = source_states(current)
    prev = source_states(previous) if previous is not None else None
    wanted = _wanted(sources, set(prev or {}) | set(cur))
    return _compare(prev, cur, wanted, completeness_tolerance)


def _compare(
    prev: Mapping[str, SourceState] | None,
    cur: Mapping[str, SourceState],
    wanted: set[str] | None,
    completeness_tolerance: float,
) -> UpstreamDiff:
    """:func:`compare_sources` of parsed states (``prev`` None: a first run)."""
    if prev is None:
        prefixes = sorted(p for p in cur if wanted is None or p in wanted)
        fields = tuple(column_name(p, s) for p in prefixes for s in _suffixes(cur[p]))
        return UpstreamDiff(changed_sources=tuple(prefixes), changed_columns=fields, first_run=True)
    changed_sources: list[str] = []
    changed_columns: list[str] = []
    for prefix in sorted(set(prev) | set(cur)):
        if wanted is not None and prefix not in wanted:
            continue
        a = prev.get(prefix)
        b = cur.get(prefix)
        moved: list[str] = []
        if a is None or b is None:
            moved = list(_suffixes(a, b))
        elif a.hash is not None and b.hash is not None and a.hash == b.hash:
            moved = []  # same content: a rewrite is no change (metadata_mixin.py:275-280)
        else:
            if a.last_updated != b.last_updated:
                moved.append("last_updated")
            if a.rows_found != b.rows_found:
                moved.append("rows_found")
            ca, cb = a.completeness_pct, b.completeness_pct
            if (ca is None) != (cb is None) or (
                ca is not None and cb is not None and abs(ca - cb) > completeness_tolerance
            ):
                moved.append("completeness_pct")
            if a.hash != b.hash:  # differ, or one side has none (metadata_mixin.py:271-273)
                moved.append("hash")
        if moved:
            changed_sources.append(prefix)
            changed_columns.extend(column_name(prefix, s) for s in moved)
    return UpstreamDiff(
        changed_sources=tuple(changed_sources), changed_columns=tuple(changed_columns)
    )


def entities_with_upstream_change(
    previous: Mapping[str, Mapping[str, Any]],
    current: Mapping[str, Mapping[str, Any]],
    *,
    sources: Iterable[str] | None = None,
    completeness_tolerance: float = 0.0,
) -> tuple[str, ...]:
    """Sorted ids whose dependency columns differ between ``previous`` and ``current``: new
    ids, and ids of ``previous`` missing from ``current`` (their upstream rows are gone, so
    their output is stale: a source that disappears is a change).

    ``sources`` is checked against every entity's rows together (one that no row records
    raises ValueError): an entity that records none of them (a rookie without odds) is no
    error, and has no change of theirs."""
    if completeness_tolerance < 0:
        raise ValueError("completeness_tolerance must be >= 0")
    ids = set(previous) | set(current)
    prev = {eid: source_states(previous[eid]) for eid in ids if eid in previous}
    cur = {eid: source_states(current.get(eid, {})) for eid in ids}
    known = {p for states in (*prev.values(), *cur.values()) for p in states}
    wanted = _wanted(sources, known)
    return tuple(
        sorted(
            eid
            for eid in ids
            if not _compare(prev.get(eid), cur[eid], wanted, completeness_tolerance).skip
        )
    )

"""Ground-truth minimum work of a game day (:class:`MinimumWork`), independent of both runs.

Invariant: computed from full recomputes of the reference pipeline only; never from what
the router or the date-level run did.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from scoperouter.errors import EventError
from scoperouter.examples.nba.processors import (
    BY_NAME,
    ORDER,
    OUTPUT_SOURCES,
    build_all,
)
from scoperouter.examples.nba.routers import lookback_dates
from scoperouter.examples.nba.stream import apply_update
from scoperouter.examples.nba.warehouse import diff_dumps
from scoperouter.messages.normalize import normalize_event

if TYPE_CHECKING:
    from scoperouter.examples.nba.harness import GameDay


Dump = Mapping[str, Mapping[tuple[str, str], tuple[object, ...]]]
_PUBLISHER = {BY_NAME[n].publishes: n for n in ORDER}


@dataclass(frozen=True)
class MinimumWork:
    """Entity rows that no correct pipeline can avoid, per processor, from ground truth.

    ``per_update``: the stream's updates are applied one at a time, in arrival order, and
    after each one every date it can reach is rebuilt from the raw tables (a full recompute,
    independent of both runs). Every output row that differs from before the update counts
    once. A date-granularity processor can only recompute its whole date, so it counts the
    whole date (every row it has on that date) for each update that changed any row of it.
    This is the least work of a pipeline that brings every output up to date after every
    update; coalescing updates in a window can go below it.

    ``per_day``: the same between the overnight state and the end of the day -- each changed
    row once, a date-granularity processor's date once. Only a pipeline that held every
    update until the end of the day (stale outputs all day) could reach it; reported for
    transparency, not as a target.

    ``dag_date_level_rows`` is not a minimum but a second baseline, for comparison: the rows
    an orchestrator would process if it ran the registry's DAG once per update at date
    level -- every (processor, date) reachable from the update's message (consumers,
    their lookback dates, and so on downstream), each once, for the whole date. Today's
    pipeline is worse: it re-runs a consumer for every completion message it receives.
    """

    per_update: Mapping[str, int]
    per_day: Mapping[str, int]
    dag_date_level_rows: int = 0

    def rows(self, *, per_day: bool = False, entity_processors_only: bool = False) -> int:
        counts = self.per_day if per_day else self.per_update
        return sum(
            n
            for name, n in counts.items()
            if not (entity_processors_only and BY_NAME[name].granularity == "date")
        )


def _count_changes(before: Dump, after: Dump, into: Counter[str]) -> None:
    """Add the rows that differ between two dumps to ``into``, per processor (a
    date-granularity processor: all of its rows on every date with a difference)."""
    for source, keys in diff_dumps(before, after).items():
        name = _PUBLISHER[source]
        if BY_NAME[name].granularity != "date":
            into[name] += len(keys)
            continue
        for day in {d for d, _ in keys}:
            into[name] += _rows_on(before, after, source, day)


def _rows_on(before: Dump, after: Dump, source: str, day: str) -> int:
    """Rows ``source`` has on ``day`` (ISO) before or after: what a whole-date run processes."""
    return len({k for k in (*before[source], *after[source]) if k[0] == day})


def minimum_work(day: GameDay) -> MinimumWork:
    """Ground-truth minimum work of ``day`` (see :class:`MinimumWork`)."""
    wh = day.overnight.copy()
    dates = day.season.dates()
    per_update: Counter[str] = Counter()
    dag_rows = 0
    start = wh.dump(OUTPUT_SOURCES)
    for u in sorted(day.updates, key=lambda u: u.at):  # the order simulate() applies them
        before = wh.dump(OUTPUT_SOURCES, since=u.day)
        msg = apply_update(wh, u, day.game_date)
        # processors read dates <= the date they compute: dates before u.day cannot change
        build_all(wh, tuple(d for d in dates if d >= u.day))
        after = wh.dump(OUTPUT_SOURCES, since=u.day)
        _count_changes(before, after, per_update)
        for name, d in _dag_reach(day, msg):
            dag_rows += _rows_on(before, after, BY_NAME[name].publishes, d.isoformat())
    per_day: Counter[str] = Counter()
    _count_changes(start, wh.dump(OUTPUT_SOURCES), per_day)
    wh.close()
    return MinimumWork(dict(per_update), dict(per_day), dag_rows)


def _dag_reach(day: GameDay, msg: Mapping[str, Any] | None) -> set[tuple[str, date]]:
    """Every (processor, date) a date-level DAG run for ``msg`` executes (see MinimumWork)."""
    if msg is None:
        return set()
    try:
        ev = normalize_event(dict(msg), day.registry)
    except EventError:
        return set()
    if ev.status not in ("success", "partial") or ev.game_date is None:
        return set()
    seen: set[tuple[str, date]] = set()
    frontier = [(ev.source, ev.game_date)]
    while frontier:
        source, d = frontier.pop()
        for ci in day.registry.by_source.get(source, ()):
            proc = day.registry.processors[ci.processor]
            for dd in (d, *lookback_dates(proc, day.relations, d, day.game_date)):
                if (ci.processor, dd) not in seen:
                    seen.add((ci.processor, dd))
                    frontier.append((BY_NAME[ci.processor].publishes, dd))
    return seen

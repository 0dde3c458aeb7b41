"""The registry's current ``max_entities``, granularity and window durations applied to a
store's open windows, once, when a router starts on the store (a restart may come with a
routes.yaml that changed them).

Invariant: afterwards every open window carries its processor's threshold now (the
defaults' for a processor no longer in the registry); a window holding more ids than that
is full date, reason ``fallback_threshold`` (the rule
:func:`scoperouter.router.window_state.past_limit` that the in-memory book applies at
restore: every id stays covered); a window holding ids of another type than its
processor's granularity now is full date, reason ``date_granularity`` (the processor is
never entity-level now) or ``unmapped_entity_type`` (the rule
:func:`scoperouter.router.window_state.regrain_reason`, the book's at restore), so no id is
sent labelled as a type its processor no longer takes; a full-date window stays full
date, a raised threshold shrinks nothing. Every open window takes its processor's
``quiet`` / ``max_wait`` now (the defaults' for a processor no longer in the registry) and
the deadline they give, ``min(last_at + quiet, opened_at + max_wait)`` -- what the in-memory
book does at restore, so a window whose ``quiet`` shrank may be due at once; its times and
causes are untouched. Runs in the caller's transaction; on PostgreSQL the rows are locked in key order,
the order an ingest locks them in. Windows already at the threshold and granularity are
not read: a start with an unchanged registry reads one row per processor with open
windows.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any

from scoperouter.router.window_state import past_limit, regrain_reason
from scoperouter.state.shared_sql import Executes

_PROCESSORS = "SELECT DISTINCT processor FROM sr_windows"
# windows of another threshold, or holding ids of another type than the granularity
# ("": a processor no longer in the registry keeps its ids)
_OTHER_LIMIT = (
    "SELECT day, entity_ids, entity_type, max_entities FROM sr_windows WHERE processor = %s "
    "AND (max_entities <> %s OR (%s <> '' AND entity_ids IS NOT NULL AND entity_type <> %s)) "
    "ORDER BY day"
)
_TO_DATE = (
    "UPDATE sr_windows SET entity_ids = NULL, date_reason = %s, "
    "max_entities = %s WHERE processor = %s AND day = %s"
)
_SET_LIMIT = "UPDATE sr_windows SET max_entities = %s WHERE processor = %s AND max_entities <> %s"
# windows of other durations (a CASE for the smaller: SQLite's MIN is PostgreSQL's LEAST)
_OTHER_DURATIONS = (
    "SELECT day FROM sr_windows WHERE processor = %s AND (quiet_s <> %s OR max_wait_s <> %s) "
    "ORDER BY day"
)
_SET_DURATIONS = (
    "UPDATE sr_windows SET quiet_s = %s, max_wait_s = %s, deadline = CASE "
    "WHEN last_at + %s < opened_at + %s THEN last_at + %s ELSE opened_at + %s END "
    "WHERE processor = %s AND (quiet_s <> %s OR max_wait_s <> %s)"
)
Durations = tuple[float, float]
"""A processor's window ``(quiet_s, max_wait_s)``."""

IdsOf = Callable[[Any], "frozenset[str] | None"]
"""A store's ``entity_ids`` column value as the window's ids (None: full date)."""


def apply_limits(
    db: Executes,
    limits: Mapping[str, int],
    default: int,
    ids_of: IdsOf,
    *,
    placeholder: str,
    lock: bool,
    granularities: Mapping[str, str] | None = None,
    durations: Mapping[str, Durations] | None = None,
    default_durations: Durations | None = None,
    skip: Collection[str] = (),
) -> int:
    """Give every open window (but those of processors in ``skip``: other replicas route
    them, :mod:`scoperouter.state.pg_roster`) its processor's threshold in ``limits`` (``default`` for one
    not listed), granularity in ``granularities`` (none for one not listed) and durations
    in ``durations`` (``default_durations`` for one not listed; both None: durations kept);
    returns how many windows changed. ``lock``: take the changed rows with ``FOR UPDATE``
    (PostgreSQL; SQLite's transaction holds the database)."""
    grains = granularities or {}
    spans = durations or {}

    def q(sql: str) -> str:
        return sql.replace("%s", placeholder)

    tail = " FOR UPDATE" if lock else ""
    select, reslow = q(_OTHER_LIMIT) + tail, q(_OTHER_DURATIONS) + tail
    changed = 0
    for proc in sorted(str(r[0]) for r in db.execute(_PROCESSORS).fetchall()):
        if proc in skip:
            continue
        limit = limits.get(proc, default)
        grain = grains.get(proc, "")
        rows = db.execute(select, (proc, limit, grain, grain)).fetchall()
        relimited = False
        touched: set[Any] = set()
        for day, ids, etype, stored_limit in rows:
            have = ids_of(ids)
            reason = "fallback_threshold" if past_limit(have, limit) else None
            reason = reason or regrain_reason(have, str(etype or ""), grain)
            if reason is not None:
                db.execute(q(_TO_DATE), (reason, limit, proc, day))
            relimited = relimited or stored_limit != limit
            if reason is not None or stored_limit != limit:
                touched.add(day)
        if relimited:
            db.execute(q(_SET_LIMIT), (limit, proc, limit))
        span = spans.get(proc, default_durations)
        if span is not None:
            qs, mw = span
            days = [r[0] for r in db.execute(reslow, (proc, qs, mw)).fetchall()]
            if days:
                db.execute(q(_SET_DURATIONS), (qs, mw, qs, mw, qs, mw, proc, qs, mw))
                touched.update(days)
        changed += len(touched)
    return changed

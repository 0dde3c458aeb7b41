"""The registry's current ``max_entities`` and granularity applied to a store's open
windows, once, when a router starts on the store (a restart may come with a routes.yaml
that changed them).

Invariant: afterwards every open window carries its processor's threshold now (the
defaults' for a processor no longer in the registry); a window holding more ids than that
is full date, reason ``fallback_threshold`` (the rule
:func:`scoperouter.router.window_state.past_limit` that the in-memory book applies at
restore: every id stays covered); a window holding ids of another type than its
processor's granularity now is full date, reason ``date_granularity`` (the processor is
never entity-level now) or ``unmapped_entity_type`` (the rule
:func:`scoperouter.router.window_state.regrain_reason`, the book's at restore), so no id is
sent labelled as a type its processor no longer takes; a full-date window stays full
date, a raised threshold shrinks nothing. Times and causes are untouched, so no deadline
moves. Runs in the caller's transaction; on PostgreSQL the rows are locked in key order,
the order an ingest locks them in. Windows already at the threshold and granularity are
not read: a start with an unchanged registry reads one row per processor with open
windows.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
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
) -> int:
    """Give every open window its processor's threshold in ``limits`` (``default`` for one
    not listed) and granularity in ``granularities`` (none for one not listed); returns
    how many windows changed. ``lock``: take the changed rows with ``FOR UPDATE``
    (PostgreSQL; SQLite's transaction holds the database)."""
    grains = granularities or {}

    def q(sql: str) -> str:
        return sql.replace("%s", placeholder)

    select = q(_OTHER_LIMIT) + (" FOR UPDATE" if lock else "")
    changed = 0
    for proc in sorted(str(r[0]) for r in db.execute(_PROCESSORS).fetchall()):
        limit = limits.get(proc, default)
        grain = grains.get(proc, "")
        rows = db.execute(select, (proc, limit, grain, grain)).fetchall()
        relimited = False
        for day, ids, etype, stored_limit in rows:
            have = ids_of(ids)
            reason = "fallback_threshold" if past_limit(have, limit) else None
            reason = reason or regrain_reason(have, str(etype or ""), grain)
            if reason is not None:
                db.execute(q(_TO_DATE), (reason, limit, proc, day))
            relimited = relimited or stored_limit != limit
            changed += reason is not None or stored_limit != limit
        if relimited:
            db.execute(q(_SET_LIMIT), (limit, proc, limit))
    return changed

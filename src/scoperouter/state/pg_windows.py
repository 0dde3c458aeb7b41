"""The PostgreSQL store's window statements and row conversions (the ingest's lock-or-create
upsert, its update, the fire), apart from :mod:`scoperouter.state.postgres`'s transactions.

Invariant: ``LOCK_WINDOWS`` locks-or-creates every touched window in one statement, in
key order (``rev = 0`` marks a row it created); ``UPDATE_WINDOW`` with ``cont`` appends a
batch's causes to the stored row's, re-capped at ``CAUSED_BY_CAP`` in code-point order
with the rest counted; a row read by ``FIRE_DUE``, ``FIRE_AHEAD`` or ``LOCK_WINDOWS``
becomes a :class:`WindowState` through :func:`window` only (the row conversions live in
:mod:`scoperouter.state.window_rows`, with the SQLite store's).
"""

from __future__ import annotations

from scoperouter.router.window_state import CAUSED_BY_CAP
from scoperouter.state.pg_roster import owned
from scoperouter.state.window_rows import PG_WINDOW_COLS as WINDOW_COLS
from scoperouter.state.window_rows import pg_update_params as update_params
from scoperouter.state.window_rows import pg_window as window
from scoperouter.state.window_rows import pg_with_stored as with_stored

__all__ = [
    "FIRE_AHEAD",
    "FIRE_AHEAD_OWNED",
    "FIRE_DUE",
    "FIRE_DUE_OWNED",
    "INSERT_FIRED",
    "LOCK_WINDOWS",
    "STORED_CAUSES",
    "UPDATE_WINDOW",
    "WINDOW_COLS",
    "update_params",
    "window",
    "with_stored",
]

# lock-or-create every touched window in key order (code-point order, COLLATE "C": the order
# apply_limits locks them in, Python's, whatever the database's collation); rev = 0 marks a
# row created here.
# caused_by is not returned (it holds up to CAUSED_BY_CAP ids): new causes are appended
# (and the row re-capped, counting the rest) by UPDATE_WINDOW, and read back only when the
# window fires. A batch's causes may hold ids the row holds (an event delivered again past
# the dedup horizon): those add nothing, as in state.merge.union_causes.
LOCK_WINDOWS = f"""
INSERT INTO sr_windows (processor, day, opened_at, last_at, deadline, entity_ids,
    entity_type, caused_by, priority, quiet_s, max_wait_s, max_entities)
SELECT k.p, k.d, %(now)s, %(now)s, 'Infinity', '{{}}', '', '{{}}', 'normal', 0, 0, 0
FROM unnest(%(procs)s::text[], %(days)s::date[]) AS k(p, d)
ORDER BY k.p COLLATE "C", k.d
ON CONFLICT (processor, day) DO UPDATE SET rev = sr_windows.rev + 1
RETURNING rev, {WINDOW_COLS.replace("caused_by", "NULL::text[]").replace("caused_more", "0")}
"""
UPDATE_WINDOW = f"""
UPDATE sr_windows SET opened_at = %(opened_at)s, last_at = %(last_at)s,
    deadline = %(deadline)s, entity_ids = %(entity_ids)s::text[],
    entity_type = %(entity_type)s, date_reason = %(date_reason)s,
    correlation_id = %(correlation_id)s, priority = %(priority)s, quiet_s = %(quiet_s)s,
    max_wait_s = %(max_wait_s)s, max_entities = %(max_entities)s, live = %(live)s,
    caused_by = CASE WHEN NOT %(cont)s THEN %(causes)s::text[]
        WHEN cardinality(sr_windows.caused_by) + cardinality(%(causes)s::text[])
             <= {CAUSED_BY_CAP}
        THEN sr_windows.caused_by || ARRAY(
            SELECT x COLLATE "C" FROM unnest(%(causes)s::text[]) AS x
            EXCEPT SELECT y COLLATE "C" FROM unnest(sr_windows.caused_by) AS y)
        ELSE ARRAY(SELECT DISTINCT x COLLATE "C" AS id
                   FROM unnest(sr_windows.caused_by || %(causes)s::text[]) AS x
                   ORDER BY id LIMIT {CAUSED_BY_CAP}) END,
    caused_more = CASE WHEN NOT %(cont)s THEN %(more)s
        WHEN cardinality(sr_windows.caused_by) + cardinality(%(causes)s::text[])
             <= {CAUSED_BY_CAP}
        THEN sr_windows.caused_more + %(more)s
        ELSE sr_windows.caused_more + %(more)s + greatest(0, (
            SELECT count(DISTINCT x COLLATE "C")
            FROM unnest(sr_windows.caused_by || %(causes)s::text[]) AS x) - {CAUSED_BY_CAP}) END
WHERE processor = %(processor)s AND day = %(day)s
"""
STORED_CAUSES = """
SELECT w.processor, w.day, w.caused_by, w.caused_more FROM sr_windows w
JOIN unnest(%s::text[], %s::date[]) AS k(p, d) ON w.processor = k.p AND w.day = k.d
"""
FIRE_DUE = f"""
WITH due AS (
    SELECT processor, day FROM sr_windows WHERE deadline <= %s
    ORDER BY deadline LIMIT %s FOR UPDATE SKIP LOCKED)
DELETE FROM sr_windows w USING due WHERE w.processor = due.processor AND w.day = due.day
RETURNING {", ".join("w." + c.strip() for c in WINDOW_COLS.split(","))}
"""
# windows a wall clock stepped back left ahead of now (last_at past now + CLOCK_SLACK_S):
# due now (a scan, run only when the store may hold one: PostgresStateStore.fire_due)
FIRE_AHEAD = f"""
WITH due AS (
    SELECT processor, day FROM sr_windows WHERE last_at > %s AND deadline > %s
    ORDER BY processor, day FOR UPDATE SKIP LOCKED)
DELETE FROM sr_windows w USING due WHERE w.processor = due.processor AND w.day = due.day
RETURNING {", ".join("w." + c.strip() for c in WINDOW_COLS.split(","))}
"""
# the same, of the windows this replica may fire (pg_roster.owned: two parameters more,
# after the deadline's)
FIRE_DUE_OWNED = FIRE_DUE.replace(
    "WHERE deadline <= %s", f"WHERE deadline <= %s AND {owned('sr_windows')}"
)
FIRE_AHEAD_OWNED = FIRE_AHEAD.replace(
    "AND deadline > %s", f"AND deadline > %s AND {owned('sr_windows')}"
)
INSERT_FIRED = """
INSERT INTO sr_outbox (trigger_id, processor, body, mode, status, claims, created_at,
    available_at, lease_owner, lease_until) VALUES (%s, %s, %s, %s, 'leased', 1, %s, %s, %s, %s)
RETURNING id
"""

"""The text of the statements both stores run alike (outbox marks and rescue, lane claims
and expiry, dead letters, the completion ledger, legacy import and hand-over, pruning,
introspection), as templates with ``%s`` placeholders:
:class:`scoperouter.state.shared_sql.Sql` fills them in for one store and runs them.

Invariant: every statement here is plain SQL that SQLite (3.35+, ``RETURNING``, upsert)
and PostgreSQL run with the same meaning; only the placeholder differs (``%s`` for
psycopg, ``?`` for sqlite3), and a lane's claim or expiry takes its rows with
``FOR UPDATE SKIP LOCKED`` on PostgreSQL (SQLite's database lock serialises writers),
chosen by :class:`~scoperouter.state.shared_sql.Sql` (:func:`pick`). Statements that must
differ more (window locking) stay in their store's module. Nothing here does I/O.
"""

from __future__ import annotations


def _bounded(table: str, key: str, where: str) -> str:
    """DELETE at most ``LIMIT`` (the last parameter) of ``table``'s rows matching ``where``."""
    return f"DELETE FROM {table} WHERE {key} IN (SELECT {key} FROM {table} WHERE {where} LIMIT %s)"


TEMPLATES = {
    "done": "UPDATE sr_outbox SET status = 'done', attempts = %s, finished_at = %s, "
    "lease_owner = NULL, lease_until = NULL, error = NULL "
    "WHERE id = %s AND status IN ('pending', 'leased')",
    "attempted": "UPDATE sr_outbox SET attempts = %s, error = %s WHERE id = %s "
    "AND status = 'leased' AND lease_owner = %s",
    "retry": "UPDATE sr_outbox SET status = 'pending', attempts = %s, available_at = %s, "
    "error = %s, lease_owner = NULL, lease_until = NULL WHERE id = %s "
    "AND status = 'leased' AND lease_owner = %s",
    # giving up needs this owner's lease (or a row nobody holds): a replica whose lease was
    # rescued and reclaimed must not kill the row under the live owner's delivery
    "dead": "UPDATE sr_outbox SET status = 'dead', attempts = %s, finished_at = %s, error = %s, "
    "lease_owner = NULL, lease_until = NULL WHERE id = %s AND (status = 'pending' "
    "OR (status = 'leased' AND lease_owner = %s)) RETURNING trigger_id, body",
    "released": "UPDATE sr_outbox SET status = 'pending', lease_owner = NULL, "
    "lease_until = NULL WHERE id = %s AND status = 'leased' AND lease_owner = %s",
    "redrive_lane": "UPDATE sr_outbox SET available_at = %s WHERE status = 'pending' "
    "AND processor = %s AND available_at > %s",
    "next_due": "SELECT min(available_at) FROM sr_outbox WHERE status = 'pending' "
    "AND processor = %s AND available_at > %s",
    # after a claim took fewer rows than it asked: due rows still pending were skipped
    # (locked by another transaction) or committed since the claim's snapshot
    "lane_held": "SELECT 1 FROM sr_outbox WHERE status = 'pending' AND processor = %s "
    "AND available_at <= %s LIMIT 1",
    # sorted by Sql.pending_processors (code-point order: PostgreSQL's ORDER BY follows the
    # database's collation, and SQLite knows no COLLATE "C")
    "pending_processors": "SELECT DISTINCT processor FROM sr_outbox WHERE status = 'pending' "
    "AND available_at <= %s",
    "pending_count": "SELECT count(*) FROM sr_outbox WHERE status = 'pending'",
    "drop_dead_letters": "DELETE FROM sr_dead_letters WHERE kind = 'trigger' AND ref IN "
    "(SELECT trigger_id || '#' || id FROM sr_outbox WHERE status = 'dead' AND "
    "(%s OR processor = %s))",
    "redrive_dead": "UPDATE sr_outbox SET status = 'pending', attempts = 0, available_at = %s, "
    "created_at = %s, finished_at = NULL, error = NULL WHERE status = 'dead' "
    "AND (%s OR processor = %s) RETURNING trigger_id, id",
    "drop_letter": "DELETE FROM sr_dead_letters WHERE kind = 'trigger' AND ref = %s",
    "discard_dead": "DELETE FROM sr_outbox WHERE status = 'dead' AND (%s OR processor = %s) "
    "RETURNING trigger_id, id",
    "extend": "UPDATE sr_outbox SET lease_until = %s WHERE id = %s AND status = 'leased' "
    "AND lease_owner = %s",
    # a plain UPDATE re-checks its condition on rows changed concurrently (PostgreSQL): a
    # lease renewed or finished meanwhile is not rescued
    "rescue": "UPDATE sr_outbox SET status = 'pending', lease_owner = NULL, "
    "lease_until = NULL, rescues = rescues + 1 WHERE status = 'leased' "
    "AND (%s OR lease_until < %s)",
    "outbox_rows": "SELECT id, trigger_id, processor, status, attempts, claims, rescues, "
    "available_at, lease_owner, lease_until, finished_at, error, mode FROM sr_outbox "
    "ORDER BY id",
    "outbox_counts": "SELECT status, count(*) FROM sr_outbox GROUP BY status",
    "dead_letter": "INSERT INTO sr_dead_letters(kind, ref, reason, detail, payload, at, "
    "topic_record) VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
    "dead_letter_payload": "SELECT payload FROM sr_dead_letters WHERE kind = %s AND ref = %s",
    "dead_letters": "SELECT id, kind, ref, reason, detail, payload, at, topic_record "
    "FROM sr_dead_letters ORDER BY id",
    # the letters whose record the dead-letter topic has not received yet, oldest first
    "letters_owed": "SELECT id, topic_record FROM sr_dead_letters "
    "WHERE topic_record IS NOT NULL ORDER BY id LIMIT %s",
    "letter_copied": "UPDATE sr_dead_letters SET topic_record = NULL WHERE id = %s "
    "AND topic_record IS NOT NULL",
    "completion": "INSERT INTO sr_completions(trigger_id, state, first_at, last_at, reports) "
    "VALUES (%s, %s, %s, %s, 1) ON CONFLICT (trigger_id) DO UPDATE SET "
    "state = CASE WHEN excluded.last_at >= sr_completions.last_at "
    "THEN excluded.state ELSE sr_completions.state END, "
    "first_at = CASE WHEN excluded.first_at < sr_completions.first_at "
    "THEN excluded.first_at ELSE sr_completions.first_at END, "
    "last_at = CASE WHEN excluded.last_at > sr_completions.last_at "
    "THEN excluded.last_at ELSE sr_completions.last_at END, "
    "reports = sr_completions.reports + 1",
    "completion_get": "SELECT trigger_id, state, first_at, last_at, reports FROM sr_completions "
    "WHERE trigger_id = %s",
    "seen_at": "SELECT seen_at FROM sr_seen WHERE event_id = %s",
    "is_empty": "SELECT NOT EXISTS (SELECT 1 FROM sr_seen) AND NOT EXISTS "
    "(SELECT 1 FROM sr_windows) AND NOT EXISTS (SELECT 1 FROM sr_outbox)",
    "import_seen": "INSERT INTO sr_seen(event_id, seen_at) VALUES (%s, %s) ON CONFLICT DO NOTHING",
    "import_pending": "INSERT INTO sr_outbox(trigger_id, processor, body, status, attempts, "
    "created_at, available_at, mode) VALUES (%s, %s, %s, 'pending', %s, %s, %s, %s)",
    "import_dead": "INSERT INTO sr_outbox(trigger_id, processor, body, status, attempts, "
    "created_at, available_at, finished_at, error, mode) "
    "VALUES (%s, %s, %s, 'dead', %s, %s, %s, %s, %s, %s) RETURNING id",
    # the trigger ids of the rows still to send, and of the dead ones (a hand-over writes
    # a trigger the store holds so already once, not twice)
    "unfinished_ids": "SELECT DISTINCT trigger_id FROM sr_outbox "
    "WHERE status IN ('pending', 'leased')",
    "dead_ids": "SELECT DISTINCT trigger_id FROM sr_outbox WHERE status = 'dead'",
    "letter_unnamed": "SELECT 1 FROM sr_dead_letters WHERE kind = %s AND ref IS NULL "
    "AND reason = %s AND at = %s",
    # rows still to send that fired live, per processor (a start-up count, no hot path)
    "live_backlog": "SELECT processor, count(*) FROM sr_outbox WHERE mode = 'live' "
    "AND status IN ('pending', 'leased') GROUP BY processor ORDER BY processor",
    # open windows and rows still to send, per processor (a start-up count, no hot path)
    "work_by_processor": "SELECT processor, sum(w), sum(t) FROM ("
    "SELECT processor, 1 AS w, 0 AS t FROM sr_windows UNION ALL "
    "SELECT processor, 0, 1 FROM sr_outbox WHERE status IN ('pending', 'leased')"
    ") AS work GROUP BY processor ORDER BY processor",
    # each prune deletes at most its LIMIT of rows (Retention.limit): the rows a subquery
    # picks by their primary key (neither store has DELETE .. LIMIT)
    "prune_seen": _bounded("sr_seen", "event_id", "seen_at < %s"),
    "prune_done": _bounded("sr_outbox", "id", "status = 'done' AND finished_at < %s"),
    # the same among the rows up to an id (SQLite: a rowid range, see SqliteStateStore.prune)
    "prune_done_upto": _bounded(
        "sr_outbox", "id", "id <= %s AND status = 'done' AND finished_at < %s ORDER BY id"
    ),
    "prune_dead": _bounded("sr_outbox", "id", "status = 'dead' AND finished_at < %s"),
    # a letter still owing the dead-letter topic its record stays while one is configured
    # (the first parameter: none is)
    "prune_letters": _bounded(
        "sr_dead_letters", "id", "kind != 'trigger' AND (%s OR topic_record IS NULL) AND at < %s"
    ),
    "prune_trigger_letters": _bounded("sr_dead_letters", "id", "kind = 'trigger' AND at < %s"),
    "prune_completions": _bounded("sr_completions", "trigger_id", "last_at < %s"),
}


BACKLOG_COLS = "id, trigger_id, processor, body, attempts, claims, created_at, mode"
# a lane's rows: leased to the caller (claim) or dead past the horizon (expire)
LANE_CLAIM = (
    "status = 'leased', lease_owner = %s, lease_until = %s, claims = claims + 1",
    "SELECT id FROM sr_outbox WHERE status = 'pending' AND processor = %s "
    "AND available_at <= %s ORDER BY available_at, id LIMIT %s",
)
# only rows that failed at least once, or any with the target's circuit open (the last
# parameter): a row never attempted while the circuit is closed (a backlog waiting for a
# slow target's slots, or pending across a stop longer than the horizon) is no target "that
# kept failing" -- killed, it was a trigger that never reached its processor
LANE_EXPIRE = (
    "status = 'dead', finished_at = %s, error = %s",
    "SELECT id FROM sr_outbox WHERE status = 'pending' AND processor = %s "
    "AND created_at < %s AND (attempts > 0 OR %s) ORDER BY id LIMIT %s",
)


def pick(placeholder: str, skip_locked: bool, change: tuple[str, str]) -> str:
    """UPDATE the rows a subquery picks, RETURNING them as backlog rows. PostgreSQL
    locks the picked rows and skips those another transaction holds (replicas never wait
    on, nor take, each other's rows); SQLite has one writer at a time."""
    set_sql, sub = change
    if skip_locked:
        cols = ", ".join("o." + c.strip() for c in BACKLOG_COLS.split(","))
        sql = (
            f"UPDATE sr_outbox o SET {set_sql} FROM ({sub} FOR UPDATE SKIP LOCKED) AS c "
            f"WHERE o.id = c.id RETURNING {cols}"
        ).replace("claims = claims", "claims = o.claims")
    else:
        sql = f"UPDATE sr_outbox SET {set_sql} WHERE id IN ({sub}) RETURNING {BACKLOG_COLS}"
    return sql.replace("%s", placeholder)

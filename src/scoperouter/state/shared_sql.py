"""The statements both stores run alike (outbox marks and rescue, dead letters, the
completion ledger, pruning, introspection), written once.

Invariant: every statement here is plain SQL that SQLite (3.35+, ``RETURNING``, upsert)
and PostgreSQL run with the same meaning; only the placeholder differs (``%s`` for
psycopg, ``?`` for sqlite3), chosen by :class:`Sql`. Statements that must differ (window
locking, claiming with ``SKIP LOCKED``) stay in their store's module.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from scoperouter.state.legacy import LegacyState
from scoperouter.state.model import (
    Attempted,
    Completion,
    CompletionState,
    DeadLetter,
    DeadLetterIn,
    Done,
    Mark,
    OutboxRow,
    Pruned,
    Retention,
    RetryLater,
    WindowState,
)


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class Executes(Protocol):
    """A sqlite3 or psycopg connection (both have ``execute`` returning a cursor)."""

    def execute(self, sql: Any, params: Sequence[Any] = ...) -> Any: ...


_TEMPLATES = {
    "done": "UPDATE sr_outbox SET status = 'done', attempts = %s, finished_at = %s, "
    "lease_owner = NULL, lease_until = NULL, error = NULL "
    "WHERE id = %s AND status IN ('pending', 'leased')",
    "attempted": "UPDATE sr_outbox SET attempts = %s, error = %s WHERE id = %s "
    "AND status = 'leased' AND lease_owner = %s",
    "retry": "UPDATE sr_outbox SET status = 'pending', attempts = %s, available_at = %s, "
    "error = %s, lease_owner = NULL, lease_until = NULL WHERE id = %s "
    "AND status = 'leased' AND lease_owner = %s",
    "dead": "UPDATE sr_outbox SET status = 'dead', attempts = %s, finished_at = %s, error = %s, "
    "lease_owner = NULL, lease_until = NULL "
    "WHERE id = %s AND status IN ('pending', 'leased') RETURNING trigger_id, body",
    "extend": "UPDATE sr_outbox SET lease_until = %s WHERE id = %s AND status = 'leased' "
    "AND lease_owner = %s",
    # a plain UPDATE re-checks its condition on rows changed concurrently (PostgreSQL): a
    # lease renewed or finished meanwhile is not rescued
    "rescue": "UPDATE sr_outbox SET status = 'pending', lease_owner = NULL, "
    "lease_until = NULL, rescues = rescues + 1 WHERE status = 'leased' "
    "AND (%s OR lease_until < %s)",
    "outbox_rows": "SELECT id, trigger_id, processor, status, attempts, claims, rescues, "
    "available_at, lease_owner, lease_until, finished_at, error FROM sr_outbox ORDER BY id",
    "outbox_counts": "SELECT status, count(*) FROM sr_outbox GROUP BY status",
    "dead_letter": "INSERT INTO sr_dead_letters(kind, ref, reason, detail, payload, at) "
    "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
    "dead_letters": "SELECT id, kind, ref, reason, detail, payload, at FROM sr_dead_letters "
    "ORDER BY id",
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
    "created_at, available_at) VALUES (%s, %s, %s, 'pending', %s, %s, %s)",
    "prune_seen": "DELETE FROM sr_seen WHERE seen_at < %s",
    "prune_done": "DELETE FROM sr_outbox WHERE status = 'done' AND finished_at < %s",
    "prune_dead": "DELETE FROM sr_outbox WHERE status = 'dead' AND finished_at < %s",
    "prune_letters": "DELETE FROM sr_dead_letters WHERE at < %s",
    "prune_completions": "DELETE FROM sr_completions WHERE last_at < %s",
}


class Sql:
    """The shared statements for one placeholder style, and the steps built on them."""

    def __init__(self, placeholder: str) -> None:
        self.q = {k: v.replace("%s", placeholder) for k, v in _TEMPLATES.items()}

    def mark(self, db: Executes, m: Mark, owner: str) -> bool:
        """Apply one dispatch outcome; True when it changed its row."""
        q = self.q
        if isinstance(m, Done):
            cur = db.execute(q["done"], (m.attempts, m.at, m.item_id))
        elif isinstance(m, Attempted):
            cur = db.execute(q["attempted"], (m.attempts, m.error, m.item_id, owner))
        elif isinstance(m, RetryLater):
            cur = db.execute(q["retry"], (m.attempts, m.available_at, m.error, m.item_id, owner))
        else:
            row = db.execute(q["dead"], (m.attempts, m.at, m.error, m.item_id)).fetchone()
            if row is None:
                return False
            ref = f"{row[0]}#{m.item_id}"
            self.dead_letter(
                db, DeadLetterIn("trigger", ref, m.reason, m.error, bytes(row[1]), m.at)
            )
            return True
        return int(cur.rowcount) > 0

    def extend(self, db: Executes, ids: Sequence[int], until: float, owner: str) -> int:
        return sum(int(db.execute(self.q["extend"], (until, i, owner)).rowcount) for i in ids)

    def rescue(self, db: Executes, now: float, all_leases: bool) -> int:
        return int(db.execute(self.q["rescue"], (all_leases, now)).rowcount)

    def outbox_rows(self, db: Executes) -> list[OutboxRow]:
        return [OutboxRow(*r) for r in db.execute(self.q["outbox_rows"]).fetchall()]

    def outbox_counts(self, db: Executes) -> dict[str, int]:
        return {str(s): int(n) for s, n in db.execute(self.q["outbox_counts"]).fetchall()}

    def dead_letter(self, db: Executes, d: DeadLetterIn) -> bool:
        params = (d.kind, d.ref, d.reason, d.detail, d.payload, d.at)
        return int(db.execute(self.q["dead_letter"], params).rowcount) > 0

    def dead_letters(self, db: Executes) -> list[DeadLetter]:
        return [
            DeadLetter(r[0], r[1], r[2], r[3], r[4], None if r[5] is None else bytes(r[5]), r[6])
            for r in db.execute(self.q["dead_letters"]).fetchall()
        ]

    def record_completion(
        self, db: Executes, trigger_id: str, state: CompletionState, at: float
    ) -> None:
        db.execute(self.q["completion"], (trigger_id, state, at, at))

    def completion(self, db: Executes, trigger_id: str) -> Completion | None:
        row = db.execute(self.q["completion_get"], (trigger_id,)).fetchone()
        return None if row is None else Completion(row[0], row[1], *row[2:])

    def seen_at(self, db: Executes, event_id: str) -> float | None:
        row = db.execute(self.q["seen_at"], (event_id,)).fetchone()
        return None if row is None else float(row[0])

    def import_legacy(
        self,
        db: Executes,
        state: LegacyState,
        insert_window: Callable[[WindowState], None],
        now: float,
    ) -> bool:
        """Write ``state`` when the store is empty (caller holds the transaction)."""
        if not db.execute(self.q["is_empty"]).fetchone()[0]:
            return False
        for eid, at in state.seen:
            db.execute(self.q["import_seen"], (eid, at))
        for w in state.windows:
            insert_window(w)
        for t in state.pending:
            db.execute(
                self.q["import_pending"],
                (t.trigger_id, t.processor, t.body, t.attempts, t.created_at, now),
            )
        for d in state.dead_letters:
            self.dead_letter(db, d)
        return True

    def prune(self, db: Executes, r: Retention, now: float) -> Pruned:
        def n(key: str, horizon: float) -> int:
            return int(db.execute(self.q[key], (now - horizon,)).rowcount)

        return Pruned(
            seen=n("prune_seen", r.seen_s),
            done=n("prune_done", r.done_s),
            dead=n("prune_dead", r.dead_s),
            dead_letters=n("prune_letters", r.dead_s),
            completions=n("prune_completions", r.completions_s),
        )


PG = Sql("%s")
SQLITE = Sql("?")

"""The steps both stores run alike (outbox marks and rescue, lane claims, dead letters, the
completion ledger, legacy import and hand-over, pruning, introspection), written once on the
shared statements (:mod:`scoperouter.state.shared_sql_text`).

Invariant: no step begins, commits or rolls back a transaction (the caller holds it: one
store method, one transaction), and both stores run the same steps: they differ only where
the statements do (the placeholder, and PostgreSQL's ``SKIP LOCKED`` lane picks with the
``held`` check those need). Statements that must differ more (window locking) stay in
their store's module.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Sequence
from typing import Any, Protocol

from scoperouter.state import letter_refs
from scoperouter.state.legacy import Carried, DeadTrigger, LegacyState, PendingTrigger, carry_rows
from scoperouter.state.model import (
    HORIZON_DETAIL,
    HORIZON_REASON,
    Attempted,
    BacklogRow,
    Completion,
    CompletionState,
    DeadLetter,
    DeadLetterIn,
    Done,
    LaneClaim,
    LaneClaimed,
    Mark,
    OutboxRow,
    Pruned,
    RedriveLane,
    Released,
    Retention,
    RetryLater,
    WindowState,
)
from scoperouter.state.shared_sql_text import LANE_CLAIM, LANE_EXPIRE, TEMPLATES, pick


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class Executes(Protocol):
    """A sqlite3 or psycopg connection (both have ``execute`` returning a cursor)."""

    def execute(self, sql: Any, params: Sequence[Any] = ...) -> Any: ...


def _bytes(value: Any) -> bytes | None:
    return None if value is None else bytes(value)


def _backlog_rows(rows: list[Any]) -> tuple[BacklogRow, ...]:
    return tuple(
        BacklogRow(int(r[0]), str(r[1]), str(r[2]), bytes(r[3]), int(r[4]), int(r[5]), r[6], r[7])
        for r in sorted(rows, key=lambda r: r[0])
    )


class Sql:
    """The shared statements for one placeholder style, and the steps built on them."""

    def __init__(self, placeholder: str, *, skip_locked: bool = False) -> None:
        self.q = {k: v.replace("%s", placeholder) for k, v in TEMPLATES.items()}
        self.skip_locked = skip_locked
        self.q["lane_claim"] = pick(placeholder, skip_locked, LANE_CLAIM)
        self.q["lane_expire"] = pick(placeholder, skip_locked, LANE_EXPIRE)

    def mark(self, db: Executes, m: Mark, owner: str) -> bool:
        """Apply one dispatch outcome; True when it changed its row. Its error text (a
        target's answer, as received) is stored with any NUL escaped
        (:func:`~scoperouter.state.letter_refs.nul_free`)."""
        q, nul_free = self.q, letter_refs.nul_free
        if isinstance(m, Done):
            cur = db.execute(q["done"], (m.attempts, m.at, m.item_id))
        elif isinstance(m, Attempted):
            cur = db.execute(q["attempted"], (m.attempts, nul_free(m.error), m.item_id, owner))
        elif isinstance(m, RetryLater):
            retry = (m.attempts, m.available_at, nul_free(m.error), m.item_id, owner)
            cur = db.execute(q["retry"], retry)
        elif isinstance(m, Released):
            cur = db.execute(q["released"], (m.item_id, owner))
        elif isinstance(m, RedriveLane):
            cur = db.execute(q["redrive_lane"], (m.at, m.processor, m.at))
        else:
            error = nul_free(m.error)
            row = db.execute(q["dead"], (m.attempts, m.at, error, m.item_id, owner)).fetchone()
            if row is None:
                return False
            ref = letter_refs.trigger_ref(row[0], m.item_id)
            self.dead_letter(db, DeadLetterIn("trigger", ref, m.reason, error, bytes(row[1]), m.at))
            return True
        return int(cur.rowcount) > 0

    def claim_lanes(
        self,
        db: Executes,
        claims: Sequence[LaneClaim],
        owner: str,
        lease_until: Callable[[], float],
        now: float,
    ) -> tuple[LaneClaimed, ...]:
        """Per lane (caller holds the transaction): dead-letter pending rows fired before
        ``expire_before`` (reason ``retry_horizon``), lease up to ``limit`` due rows to
        ``owner`` until ``lease_until()`` (asked when the lease is written), find the
        next later availability and, where rows are skipped when locked, whether due rows
        were left pending (``held``)."""
        q = self.q
        out = []
        for c in claims:
            expired: tuple[BacklogRow, ...] = ()
            if c.expire_before is not None and c.expire_limit > 0:
                gone = (
                    now,
                    HORIZON_DETAIL,
                    c.processor,
                    c.expire_before,
                    c.expire_untried,
                    c.expire_limit,
                )
                expired = _backlog_rows(db.execute(q["lane_expire"], gone).fetchall())
                for r in expired:
                    ref = letter_refs.trigger_ref(r.trigger_id, r.item_id)
                    letter = DeadLetterIn(
                        "trigger", ref, HORIZON_REASON, HORIZON_DETAIL, r.body, now
                    )
                    self.dead_letter(db, letter)
            claimed: tuple[BacklogRow, ...] = ()
            held = False
            if c.limit > 0:
                take = (owner, lease_until(), c.processor, c.due_at, c.limit)
                claimed = _backlog_rows(db.execute(q["lane_claim"], take).fetchall())
                if self.skip_locked and len(claimed) < c.limit:
                    left = db.execute(q["lane_held"], (c.processor, c.due_at)).fetchone()
                    held = left is not None
            row = db.execute(q["next_due"], (c.processor, now)).fetchone()
            nd = None if row is None or row[0] is None else float(row[0])
            more = len(claimed) >= c.limit > 0
            out.append(LaneClaimed(c.processor, claimed, more, nd, expired, held))
        return tuple(out)

    def pending_processors(self, db: Executes, due_at: float) -> list[str]:
        rows = db.execute(self.q["pending_processors"], (due_at,)).fetchall()
        return sorted(str(r[0]) for r in rows)

    def pending_count(self, db: Executes) -> int:
        return int(db.execute(self.q["pending_count"]).fetchone()[0])

    def live_backlog(self, db: Executes) -> dict[str, int]:
        """Rows still to send (pending or leased) that fired live, per processor."""
        return {str(p): int(n) for p, n in db.execute(self.q["live_backlog"]).fetchall()}

    def work_by_processor(self, db: Executes) -> dict[str, tuple[int, int]]:
        """Open windows and rows still to send (pending or leased), per processor."""
        rows = db.execute(self.q["work_by_processor"]).fetchall()
        return {str(p): (int(w), int(t)) for p, w, t in rows}

    def redrive_dead(self, db: Executes, now: float, processor: str | None) -> int:
        """Dead rows (of ``processor``, or all) back to pending, due ``now``, with a fresh
        attempt count and horizon; their dead letters go (caller holds the transaction).
        The letters dropped are those of the rows the UPDATE redrove (locked, now pending):
        deleting the letters of the rows dead at an earlier statement's snapshot missed a
        row that died in between, redriven with its letter left behind."""
        every = processor is None
        rows = db.execute(self.q["redrive_dead"], (now, now, every, processor)).fetchall()
        for trigger_id, item_id in rows:
            db.execute(self.q["drop_letter"], (letter_refs.trigger_ref(trigger_id, item_id),))
        return len(rows)

    def discard_dead(self, db: Executes, processor: str | None) -> int:
        """Delete dead rows (of ``processor``, or all) and their dead letters (caller holds
        the transaction). As :meth:`redrive_dead`: the letters dropped are those of the rows
        the DELETE took (locked, gone). Deleting the letters of the rows dead at an earlier
        statement's snapshot first left the letter of a row that died in between (a
        replica's ``Dead`` mark committed between the statements, PostgreSQL's READ
        COMMITTED) behind, its row deleted by the later statement; and a redrive racing it
        deadlocked (it locked the row, then waited for a letter this discard held)."""
        every = processor is None
        rows = db.execute(self.q["discard_dead"], (every, processor)).fetchall()
        for trigger_id, item_id in rows:
            db.execute(self.q["drop_letter"], (letter_refs.trigger_ref(trigger_id, item_id),))
        return len(rows)

    def extend(
        self, db: Executes, ids: Sequence[int], until: Callable[[], float], owner: str
    ) -> frozenset[int]:
        """Renew ``owner``'s leases on ``ids`` to ``until()`` (asked per row, when its lease
        is written); the ids renewed (the others are not ``owner``'s, or not leased)."""
        q = self.q["extend"]
        return frozenset(i for i in ids if int(db.execute(q, (until(), i, owner)).rowcount) > 0)

    def rescue(self, db: Executes, now: float, all_leases: bool) -> int:
        return int(db.execute(self.q["rescue"], (all_leases, now)).rowcount)

    def outbox_rows(self, db: Executes) -> list[OutboxRow]:
        return [OutboxRow(*r) for r in db.execute(self.q["outbox_rows"]).fetchall()]

    def outbox_counts(self, db: Executes) -> dict[str, int]:
        return {str(s): int(n) for s, n in db.execute(self.q["outbox_counts"]).fetchall()}

    def dead_letter(self, db: Executes, d: DeadLetterIn) -> bool:
        """Store ``d``; False when the same one is stored already (same ``(kind, ref)`` and,
        but for a trigger's, same payload): another payload under a taken ref is stored
        under another ref (:func:`~scoperouter.state.letter_refs.place`). Its ref, reason
        and detail are stored with any NUL escaped (:func:`~scoperouter.state.letter_refs.nul_free`;
        a ref so grown past the bound is shortened, as any other)."""
        nul_free = letter_refs.nul_free
        detail = None if d.detail is None else nul_free(d.detail)
        q, rest = self.q, (nul_free(d.reason), detail, d.payload, d.at, d.topic_record)
        given = None if d.ref is None else letter_refs.bounded(nul_free(d.ref))

        def insert(ref: str | None) -> bool:
            return int(db.execute(q["dead_letter"], (d.kind, ref, *rest)).rowcount) > 0

        def stored_payload(ref: str) -> object:
            row = db.execute(q["dead_letter_payload"], (d.kind, ref)).fetchone()
            return letter_refs.MISSING if row is None else row[0]

        return letter_refs.place(d.kind, given, d.payload, insert, stored_payload)

    def dead_letters(self, db: Executes) -> list[DeadLetter]:
        return [
            DeadLetter(r[0], r[1], r[2], r[3], r[4], _bytes(r[5]), r[6], _bytes(r[7]))
            for r in db.execute(self.q["dead_letters"]).fetchall()
        ]

    def letters_owed(self, db: Executes, limit: int) -> list[tuple[int, bytes]]:
        """Up to ``limit`` letters whose record the dead-letter topic is owed, oldest first:
        ``(id, record)``."""
        rows = db.execute(self.q["letters_owed"], (limit,)).fetchall()
        return [(int(r[0]), bytes(r[1])) for r in rows]

    def letters_copied(self, db: Executes, ids: Sequence[int]) -> int:
        """The records of the letters ``ids`` went out: nothing more is owed for them."""
        return sum(int(db.execute(self.q["letter_copied"], (i,)).rowcount) for i in ids)

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

        def put(w: WindowState) -> bool:
            insert_window(w)
            return False

        self.carry(db, state, put, now)
        return True

    def carry(
        self,
        db: Executes,
        state: LegacyState,
        put_window: Callable[[WindowState], bool],
        now: float,
        staged: Container[str] = (),
    ) -> Carried:
        """Write ``state`` into the store, whatever it holds (caller holds the transaction):
        each window by ``put_window`` (True: it joined one of its key), the rows by
        :func:`~scoperouter.state.legacy.carry_rows` (``staged``: seen ids the store holds
        elsewhere)."""
        joined = sum(1 for w in state.windows if put_window(w))
        rows = carry_rows(state, now, _Rows(self, db), staged)
        return Carried(len(state.windows), joined, *rows)

    def prune(self, db: Executes, r: Retention, now: float, done_upto: int | None = None) -> Pruned:
        """One pass of every prune, each statement deleting at most ``r.limit`` rows
        (``done_upto``: done rows only among ids up to it, which must hold every row created
        before the done horizon; -1: none). ``more`` when a statement reached its limit."""
        if r.limit < 1:
            raise ValueError(f"prune limit must be at least 1, not {r.limit}")
        full = False

        def n(key: str, *params: float) -> int:
            nonlocal full
            got = int(db.execute(self.q[key], (*params, r.limit)).rowcount)
            full = full or got >= r.limit
            return got

        dead = letters = 0
        if r.dead_s is not None:
            dead = n("prune_dead", now - r.dead_s)
            letters = n("prune_trigger_letters", now - r.dead_s)
        seen = n("prune_seen", now - r.seen_s)
        if done_upto is None:
            done = n("prune_done", now - r.done_s)
        else:
            done = n("prune_done_upto", done_upto, now - r.done_s)
        letters += n("prune_letters", not r.keep_owed, now - r.letters_s)
        completions = n("prune_completions", now - r.completions_s)
        return Pruned(seen, done, dead, letters, completions, full)


class _Rows:
    """:class:`~scoperouter.state.legacy.RowSink` on ``sr_outbox``, ``sr_seen`` and
    ``sr_dead_letters`` (a store's transaction)."""

    def __init__(self, sql: Sql, db: Executes) -> None:
        self.sql, self.db, self.q = sql, db, sql.q

    def add_seen(self, event_id: str, at: float) -> bool:
        return int(self.db.execute(self.q["import_seen"], (event_id, at)).rowcount) > 0

    def trigger_ids(self, dead: bool) -> set[str]:
        rows = self.db.execute(self.q["dead_ids" if dead else "unfinished_ids"]).fetchall()
        return {str(r[0]) for r in rows}

    def add_pending(self, t: PendingTrigger, due: float) -> None:
        params = (t.trigger_id, t.processor, t.body, t.attempts, t.created_at, due, t.mode)
        self.db.execute(self.q["import_pending"], params)

    def add_dead(self, d: DeadTrigger) -> int:
        error = None if d.error is None else letter_refs.nul_free(d.error)
        params = (d.trigger_id, d.processor, d.body, d.attempts, d.created_at, d.finished_at,
                  d.finished_at, error, d.mode)  # fmt: skip
        return int(self.db.execute(self.q["import_dead"], params).fetchone()[0])

    def add_letter(self, d: DeadLetterIn) -> bool:
        return self.sql.dead_letter(self.db, d)

    def has_unnamed(self, d: DeadLetterIn) -> bool:
        params = (d.kind, letter_refs.nul_free(d.reason), d.at)
        return self.db.execute(self.q["letter_unnamed"], params).fetchone() is not None


PG = Sql("%s", skip_locked=True)
SQLITE = Sql("?")

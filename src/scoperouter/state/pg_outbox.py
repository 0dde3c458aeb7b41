"""The PostgreSQL store's outbox, dead letters and completion ledger: the methods of
:class:`~scoperouter.state.postgres.PostgresStateStore` that run the statements both stores
share (:data:`scoperouter.state.shared_sql.PG`), apart from its ingest and windows.

Invariant: every method is one transaction of the store's (``_run``; the renewals on
their own connection); a lane of a processor another replica routes claims nothing, and
pages leave such processors out (:mod:`scoperouter.state.pg_roster`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import psycopg

from scoperouter.messages.models import Trigger
from scoperouter.state import pg_roster
from scoperouter.state.model import (
    Completion,
    CompletionState,
    DeadLetter,
    DeadLetterIn,
    LaneClaim,
    LaneClaimed,
    Mark,
    OutboxItem,
    OutboxRow,
    StoreOptions,
)
from scoperouter.state.pg_renewals import RenewalSession
from scoperouter.state.shared_sql import PG

_T = TypeVar("_T")
Conn = psycopg.Connection[tuple[Any, ...]]


class _Call(threading.local):
    began = 0.0  # monotonic time the thread's current call began


class PgOutbox:
    """The outbox half of :class:`~scoperouter.state.postgres.PostgresStateStore` (which
    gives the attributes and the two methods declared here)."""

    options: StoreOptions
    monotonic: Callable[[], float]
    _call: _Call
    _renewals: RenewalSession
    _roster_at: float | None

    def _run(self, fn: Callable[[Conn], _T]) -> _T:
        raise NotImplementedError

    def _lease_until(self, now: float) -> float:
        raise NotImplementedError

    # ------------------------------------------------------------------ outbox
    def claim(self, now: float, limit: int = 100) -> list[OutboxItem]:
        o = self.options
        rows = self._run(
            lambda c: c.execute(
                "UPDATE sr_outbox o SET status = 'leased', lease_owner = %s, lease_until = %s, "
                "claims = o.claims + 1 FROM (SELECT id FROM sr_outbox WHERE status = 'pending' "
                "AND available_at <= %s ORDER BY available_at, id LIMIT %s "
                "FOR UPDATE SKIP LOCKED) AS c WHERE o.id = c.id "
                "RETURNING o.id, o.body, o.attempts, o.claims, o.mode",
                (o.owner, self._lease_until(now), now, limit),
            ).fetchall()
        )
        rows.sort()
        return [
            OutboxItem(r[0], Trigger.model_validate_json(r[1]), bytes(r[1]), r[2], r[3], r[4])
            for r in rows
        ]

    def extend_leases(self, item_ids: Sequence[int], now: float) -> frozenset[int]:
        owner = self.options.owner

        def run(c: Conn) -> frozenset[int]:
            # the rows' locks first (an UPDATE computes its new row before it waits)
            c.execute(
                "SELECT 1 FROM sr_outbox WHERE id = ANY(%s) ORDER BY id FOR UPDATE",
                (sorted(item_ids),),
            ).fetchall()
            return PG.extend(c, item_ids, lambda: self._lease_until(now), owner)

        self._call.began = self.monotonic()  # (this thread's: the renewals' own)
        return self._renewals.run(run)

    def apply_marks(self, marks: Sequence[Mark]) -> tuple[bool, ...]:
        owner = self.options.owner
        return self._run(lambda c: tuple(PG.mark(c, m, owner) for m in marks))

    def rescue_expired(self, now: float, *, all_leases: bool = False) -> int:
        return self._run(lambda c: PG.rescue(c, now, all_leases))

    def claim_lanes(
        self, claims: Sequence[LaneClaim], marks: Sequence[Mark], now: float
    ) -> tuple[LaneClaimed, ...]:
        o = self.options

        def run(c: Conn) -> tuple[LaneClaimed, ...]:
            for m in marks:
                PG.mark(c, m, o.owner)
            # a lane of a processor another replica routes claims nothing here (pg_roster)
            kept, left = pg_roster.split_claims(c, o, claims, now)
            got = PG.claim_lanes(c, kept, o.owner, lambda: self._lease_until(now), now)
            if not left:
                return got
            by = {x.processor: x for x in got} | left
            return tuple(by[x.processor] for x in claims)

        return self._run(run)

    def pending_processors(self, due_at: float = float("inf")) -> list[str]:
        """Of the processors this replica pages: not those other replicas route at the
        last :meth:`announce_processors` (its time: ``due_at`` may be infinite)."""
        at = self._roster_at

        def run(c: Conn) -> list[str]:
            got = PG.pending_processors(c, due_at)
            gone = set() if at is None else pg_roster.routed_elsewhere(c, self.options, got, at)
            return [p for p in got if p not in gone]

        return self._run(run)

    def pending_count(self) -> int:
        return self._run(PG.pending_count)

    def live_backlog(self) -> dict[str, int]:
        return self._run(PG.live_backlog)

    def work_by_processor(self) -> dict[str, tuple[int, int]]:
        return self._run(PG.work_by_processor)

    def redrive_dead(self, now: float, processor: str | None = None) -> int:
        return self._run(lambda c: PG.redrive_dead(c, now, processor))

    def discard_dead(self, processor: str | None = None) -> int:
        return self._run(lambda c: PG.discard_dead(c, processor))

    def outbox_rows(self) -> list[OutboxRow]:
        return self._run(PG.outbox_rows)

    def outbox_counts(self) -> dict[str, int]:
        return self._run(PG.outbox_counts)

    # ------------------------------------------------------------------ dead letters
    def dead_letter(self, letter: DeadLetterIn) -> bool:
        return self._run(lambda c: PG.dead_letter(c, letter))

    def dead_letters(self) -> list[DeadLetter]:
        return self._run(PG.dead_letters)

    def letters_owed(self, limit: int = 100) -> list[tuple[int, bytes]]:
        return self._run(lambda c: PG.letters_owed(c, limit))

    def letters_copied(self, ids: Sequence[int]) -> int:
        return self._run(lambda c: PG.letters_copied(c, ids))

    # ------------------------------------------------------------------ completion ledger
    def record_completion(self, trigger_id: str, state: CompletionState, at: float) -> None:
        self._run(lambda c: PG.record_completion(c, trigger_id, state, at))

    def completion(self, trigger_id: str) -> Completion | None:
        return self._run(lambda c: PG.completion(c, trigger_id))

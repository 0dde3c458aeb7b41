"""The dispatcher's backlog on a :class:`~scoperouter.state.api.StateStore`: the state
store's side of :mod:`scoperouter.runtime.backlog` (``serve`` on the embedded per-window
SQLite store, ``--state sqlite:///...`` or ``postgresql://...``).

Invariant: one page is ONE store transaction (:meth:`StateStore.claim_lanes`): the queued
outcome marks are written first, then each lane's rows past their retry horizon become
dead letters and up to its free slots of due rows are LEASED to this replica -- a row
reaches the dispatcher only leased, so no other replica sends it meanwhile, and every
row this replica holds unstarted is given back (``Release``) when its lane cannot start
it. Memory holds at most the lanes' pages, never the backlog.

Not in that transaction: a dead letter of another kind than ``trigger`` among the marks,
written after it in one of its own (as the mark flusher writes it). The dispatcher makes
none today -- its dead letters are its triggers', which the store writes with their
``Dead`` rows inside the transaction -- so a page is one transaction in practice; a
mark of a new kind belongs in :meth:`StateStore.claim_lanes`'s transaction.
"""

from __future__ import annotations

import logging

from scoperouter.runtime.backlog import EXPIRE_PAGE, LanePage, LaneRequest
from scoperouter.runtime.marks import Mark
from scoperouter.runtime.metrics import Metrics
from scoperouter.runtime.shared_ingest import StateMarks, state_marks
from scoperouter.runtime.store import PendingTrigger
from scoperouter.state.api import StateStore
from scoperouter.state.model import BacklogRow, LaneClaim

logger = logging.getLogger("scoperouter.runtime")


def pending_trigger(r: BacklogRow) -> PendingTrigger:
    """A claimed row as the dispatcher's lanes hold it (``starts``: earlier claims)."""
    return PendingTrigger(
        r.item_id,
        r.trigger_id,
        r.processor,
        r.body.decode(),
        r.claims - 1,
        r.attempts,
        r.created_at,
        r.mode,
    )


def page(
    state: StateStore, marks: list[Mark], requests: list[LaneRequest], now: float
) -> tuple[list[LanePage], StateMarks, set[int]]:
    """State thread: one transaction for ``marks`` and every lane's claim (non-trigger
    dead letters, none today, after it: see the module). Returns the pages, the marks as
    written (the caller forgets finished leases) and the row ids leased by this page."""
    sm = state_marks(marks)
    claims = [
        LaneClaim(
            rq.processor,
            rq.slots,
            rq.due_at,
            rq.expire_before,
            EXPIRE_PAGE if rq.expire_before is not None else 0,
            rq.expire_untried,
        )
        for rq in requests
    ]
    got = state.claim_lanes(claims, sm.marks, now)
    for letter in sm.letters:  # dispatch marks carry trigger letters only; kept for others
        state.dead_letter(letter)
    leased: set[int] = set()
    pages = []
    for rq, lc in zip(requests, got, strict=True):
        leased.update(r.item_id for r in lc.claimed)
        pages.append(
            LanePage(
                lc.processor,
                [pending_trigger(r) for r in lc.claimed],
                lc.more,
                lc.next_due,
                [pending_trigger(r) for r in lc.expired],
                rq.slots > 0,
                lc.held,
            )
        )
    return pages, sm, leased


def announce_restart(state: StateStore, metrics: Metrics, rescued: int) -> int:
    """At start: one WARNING with the count of triggers waiting in the store (the
    dispatcher claims them page by page; memory and log volume do not grow with the
    backlog). Returns the count."""
    n = state.pending_count()
    if n:
        metrics.redispatched.inc(n)
        logger.warning(
            "restart: %d pending triggers wait in the state store (%d were leased by the "
            "previous process: possible duplicates downstream); dispatched page by page",
            n,
            rescued,
            extra={"redispatched": n, "rescued": rescued},
        )
    return n

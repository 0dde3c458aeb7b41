"""Housekeeping of the state store: seen ids past the dedup horizon, delivered triggers
and rejected-event dead letters past their retention.

Invariant: only rows that can no longer matter go -- pending triggers never, done ones
after ``done_retention_s``, rejected-event dead letters after ``dead_letter_retention_s``.
Dead triggers and their dead letters are never pruned: they are acked work that was not
delivered, kept until an operator redrives or discards them
(``scoperouter outbox``).

Bounded: a pass is one transaction whose statements each delete at most
:data:`~scoperouter.state.model.PRUNE_LIMIT` rows, so it holds SQLite's one write lock --
the ingest's -- for a bounded time however large the backlog past a horizon (after an
outage, or a burst a retention ago). A pass that reached a limit says so (``more``):
the router runs the next one after :data:`CATCH_UP_PAUSE_S` instead of a full
``housekeeping_interval``, with the ingest's transactions queued in between, until the
backlog is gone. Nothing is skipped: what a pass leaves is still past its horizon.
"""

from __future__ import annotations

from scoperouter.runtime.options import RouterOptions
from scoperouter.runtime.store import Store
from scoperouter.state.model import CATCH_UP_PAUSE_S as CATCH_UP_PAUSE_S
from scoperouter.state.model import PRUNE_LIMIT


def prune(
    store: Store, options: RouterOptions, now: float, limit: int = PRUNE_LIMIT
) -> tuple[int, bool]:
    """One transaction of pruning (state thread), each statement deleting at most
    ``limit`` rows. Returns the seen ids pruned, and whether a statement reached its
    limit (rows past a horizon may be left for the next pass)."""
    o = options
    with store.transaction():
        seen = store.prune_seen(now - o.dedup_horizon_s, limit)
        done = store.prune_triggers(now - o.done_retention_s, limit=limit)  # dead rows: kept
        letters = store.prune_event_dead_letters(now - o.dead_letter_retention_s, limit)
    return seen, max(seen, done, letters) >= limit

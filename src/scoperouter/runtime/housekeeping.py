"""Housekeeping of the state store: seen ids past the dedup horizon, delivered triggers
and rejected-event dead letters past their retention.

Invariant: only rows that can no longer matter go -- pending triggers never, done ones
after ``done_retention_s``, rejected-event dead letters after ``dead_letter_retention_s``.
Dead triggers and their dead letters are never pruned: they are acked work that was not
delivered, kept until an operator redrives or discards them
(``scoperouter outbox``).
"""

from __future__ import annotations

from scoperouter.runtime.options import RouterOptions
from scoperouter.runtime.store import Store


def prune(store: Store, options: RouterOptions, now: float) -> int:
    """One transaction of pruning (state thread). Returns the seen ids pruned."""
    o = options
    with store.transaction():
        pruned = store.prune_seen(now - o.dedup_horizon_s)
        store.prune_triggers(now - o.done_retention_s)  # dead rows: kept
        store.prune_event_dead_letters(now - o.dead_letter_retention_s)
    return pruned

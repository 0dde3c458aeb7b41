"""Small pieces of :mod:`scoperouter.runtime.router` kept apart (the module stays under 500
lines): the heavy-backfill rule of the ingest queue, the shutdown message of a failing
store, and the router's restart counters.

Invariant: plain values and one pure predicate; nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from scoperouter.messages.models import Event
from scoperouter.runtime.ingest import Item

HEAVY_DAYS = 31  # a backfill longer than this runs in a transaction of its own
SHUTDOWN_STORE_FAILED = (
    "store failing at shutdown (%s): %d dispatch outcomes not recorded; their triggers stay "
    "pending and are re-dispatched at the next start; open windows are rebuilt from the "
    "journal (nothing acked is lost)"
)


def is_heavy(item: Item) -> bool:
    """Whether ``item``'s event has a range of more than :data:`HEAVY_DAYS` dates (a
    backfill, or a game date beside a range: the planner runs every date of it too)."""
    ev = item.parsed
    if not isinstance(ev, Event) or ev.start_date is None or ev.end_date is None:
        return False
    return (ev.end_date - ev.start_date).days + 1 > HEAVY_DAYS


@dataclass
class Stats:
    redispatched: int = 0
    restored_windows: int = 0
    journal_replayed: int = 0
    extras: dict[str, int] = field(default_factory=dict)

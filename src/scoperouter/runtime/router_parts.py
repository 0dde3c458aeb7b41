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
    ev = item.parsed
    if not isinstance(ev, Event) or ev.game_date is not None or not ev.is_backfill:
        return False  # (most events name a date: no property call for them)
    assert ev.start_date is not None and ev.end_date is not None
    return (ev.end_date - ev.start_date).days + 1 > HEAVY_DAYS


@dataclass
class Stats:
    redispatched: int = 0
    restored_windows: int = 0
    journal_replayed: int = 0
    extras: dict[str, int] = field(default_factory=dict)

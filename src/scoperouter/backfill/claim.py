"""Starting a backfill next to the others running on the same store, whichever process runs
them (``scoperouter backfill``, the daemon's ``POST /backfills``).

Invariant: a backfill is claimed -- its run lock held and its status stored ``running`` --
only under the store's start lock (:meth:`BackfillStore.starting`) and only after every
other backfill a live process runs on that store (:meth:`BackfillStore.live`: stored
``running`` with its run lock held) was found not to conflict with it
(:func:`scoperouter.backfill.overlap.conflict`); of two conflicting backfills started at
once, the second sees the first. A record left ``running`` by a dead process is stored
``interrupted`` by that check and blocks nothing. A conflict is a value
(:class:`Overlap`, reason ``overlapping_backfill``), never a half-started backfill.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from scoperouter.backfill.overlap import Reach, conflict
from scoperouter.backfill.plan import BackfillPlan
from scoperouter.backfill.store import BackfillStore

REASON = "overlapping_backfill"


@dataclass(frozen=True)
class Overlap:
    """The running backfill a new one conflicts with, and the processors that collide."""

    backfill_id: str  # the running one
    processors: tuple[str, ...]  # its processors
    start: str  # its requested first date
    last: str  # the last date it rewrites (lookback dates included)
    mine: str  # the new backfill's processor whose runs collide
    theirs: str  # the running one's processor it collides with
    reason: str = REASON

    def detail(self, retry: str) -> str:
        """Which backfill, what it rewrites, and how to proceed (``retry``: start it again)."""
        return (
            f"backfill {self.backfill_id} is running ({', '.join(self.processors)}; "
            f"{self.start} .. {self.last}) and rewrites what this one's {self.mine} runs read "
            f"or write ({self.theirs}, overlapping dates): run at once, a run of one could "
            f"finish after the other's and leave stale rows; {retry} once it has ended"
        )


class Claimed:
    """A claimed backfill: its run lock is held until :meth:`release`."""

    def __init__(self, lock: contextlib.AbstractContextManager[None]) -> None:
        self._lock = lock

    def release(self) -> None:
        self._lock.__exit__(None, None, None)


def claim(
    store: BackfillStore, reach: Reach, plan: BackfillPlan, bid: str, now: float
) -> Claimed | Overlap:
    """Claim backfill ``bid`` (module docstring), or the live one it conflicts with.
    Raises :class:`~scoperouter.backfill.store.AlreadyRunning` when another process holds
    ``bid``'s own run lock."""
    with store.starting():
        for other in store.live(now):
            if other == bid:
                continue  # its own lock decides (AlreadyRunning)
            theirs = store.load_plan(other)
            hit = conflict(reach, plan, theirs)
            if hit is not None:
                return Overlap(
                    other,
                    theirs.processors,
                    theirs.request.start.isoformat(),
                    max(theirs.last_day.values(), default=theirs.request.end).isoformat(),
                    *hit,
                )
        lock = store.running(bid)
        lock.__enter__()  # raises AlreadyRunning
        try:
            # running from now on (the runner stores it again): a process checking after
            # this one releases the start lock sees it
            store.set_status(bid, "running", now)
        except BaseException:
            lock.__exit__(None, None, None)
            raise
    return Claimed(lock)

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

On a shared (PostgreSQL) state store the backfill is also claimed there, under the same
start lock and before it is stored ``running`` (:mod:`scoperouter.backfill.shared_claim`):
backfills other processes run on other state dirs -- replicas -- are checked the same way,
and a backfill whose shared claim is lost is stopped (:meth:`Claimed.run`). A backfill
another process runs is known here only by its live shared claim (:class:`RunningElsewhere`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any, TypeVar

from scoperouter.backfill.overlap import Reach, conflict
from scoperouter.backfill.plan import BackfillPlan
from scoperouter.backfill.store import BackfillStore

if TYPE_CHECKING:
    from scoperouter.backfill.shared_claim import SharedClaims, SharedLease

REASON = "overlapping_backfill"
_T = TypeVar("_T")


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
    where: str | None = None  # the replica running it (shared store), None: this state dir

    def detail(self, retry: str) -> str:
        """Which backfill, what it rewrites, and how to proceed (``retry``: start it again)."""
        on = f" on replica {self.where}" if self.where is not None else ""
        return (
            f"backfill {self.backfill_id} is running{on} ({', '.join(self.processors)}; "
            f"{self.start} .. {self.last}) and rewrites what this one's {self.mine} runs read "
            f"or write ({self.theirs}, overlapping dates): run at once, a run of one could "
            f"finish after the other's and leave stale rows; {retry} once it has ended"
        )


def overlap(
    bid: str, theirs: BackfillPlan, hit: tuple[str, str], where: str | None = None
) -> Overlap:
    """The :class:`Overlap` of running backfill ``bid`` (plan ``theirs``) and ``hit``."""
    last = max(theirs.last_day.values(), default=theirs.request.end)
    return Overlap(
        bid,
        theirs.processors,
        theirs.request.start.isoformat(),
        last.isoformat(),
        *hit,
        where=where,
    )


# the owner of the CLI's shared claims (``cli-`` + its host's replica id): a process, not a
# replica, whose progress is kept in its own state dir
CLI_OWNER_PREFIX = "cli-"


@dataclass(frozen=True)
class RunningElsewhere:
    """A backfill a live claim on the shared state store says another process runs."""

    backfill_id: str
    owner: str  # the replica (or ``cli-HOST``) running it
    processors: tuple[str, ...]
    start: date  # its requested dates
    end: date

    def answer(self) -> dict[str, Any]:
        """What ``GET /backfills/ID`` answers for it on a replica that does not run it: the
        fields the claim holds (runs, counts: only its owner knows them)."""
        if self.owner.startswith(CLI_OWNER_PREFIX):
            where = (
                f"running in scoperouter backfill ({self.owner}); its progress is kept in that "
                "process's state dir"
            )
        else:
            where = (
                f"running on replica {self.owner}; its progress is kept there: GET it from "
                "that replica"
            )
        return {
            "backfill_id": self.backfill_id,
            "status": "running",
            "replica": self.owner,
            "processors": list(self.processors),
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "detail": where,
        }


class SharedStoreUnavailable(RuntimeError):
    """The shared state store could not be asked: nothing was claimed (start it again)."""


class ClaimLost(RuntimeError):
    """The backfill's claim on the shared state store was lost; it was stopped."""

    def __init__(self, bid: str, why: str) -> None:
        super().__init__(
            f"backfill {bid} stopped: its claim on the shared state store was lost ({why}: "
            "not renewed in time, or it ran out and another process took its place), so an "
            "overlapping backfill may have started elsewhere; start it again to resume it"
        )
        self.why = why


class Claimed:
    """A claimed backfill: its run lock (and shared claim) held until :meth:`release`."""

    def __init__(
        self, lock: contextlib.AbstractContextManager[None], lease: SharedLease | None = None
    ) -> None:
        self._lock = lock
        self.lease = lease

    async def run(self, work: Awaitable[_T]) -> _T:
        """Await ``work`` (the backfill's run) while the shared claim is renewed; when the
        claim is lost, ``work`` is cancelled (its backfill stored ``stopped``) and
        :class:`ClaimLost` raised."""
        if self.lease is None:
            return await work
        job = asyncio.ensure_future(work)
        keeper = asyncio.ensure_future(self.lease.keep())
        try:
            await asyncio.wait({job, keeper}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            job.cancel()
            keeper.cancel()
            await asyncio.gather(job, keeper, return_exceptions=True)
            raise
        if job.done():
            keeper.cancel()
            await asyncio.gather(keeper, return_exceptions=True)
            return job.result()
        job.cancel()
        await asyncio.gather(job, return_exceptions=True)
        raise ClaimLost(self.lease.backfill_id, keeper.result())

    def release(self) -> None:
        if self.lease is not None:
            self.lease.release()
        self._lock.__exit__(None, None, None)


def claim(
    store: BackfillStore,
    reach: Reach,
    plan: BackfillPlan,
    bid: str,
    now: float,
    shared: SharedClaims | None = None,
) -> Claimed | Overlap:
    """Claim backfill ``bid`` (module docstring), or the live one it conflicts with;
    ``shared``: the shared state store's claims, checked too. Raises
    :class:`~scoperouter.backfill.store.AlreadyRunning` when another process holds ``bid``'s
    own run lock (or its live shared claim), :class:`SharedStoreUnavailable` when the shared
    store cannot be asked."""
    with store.starting():
        for other in store.live(now):
            if other == bid:
                continue  # its own lock decides (AlreadyRunning)
            theirs = store.load_plan(other)
            hit = conflict(reach, plan, theirs)
            if hit is not None:
                return overlap(other, theirs, hit)
        lock = store.running(bid)
        lock.__enter__()  # raises AlreadyRunning
        lease = None
        try:
            if shared is not None:
                got = shared.claim(reach, plan, bid)
                if isinstance(got, Overlap):
                    lock.__exit__(None, None, None)
                    return got
                lease = got
            # running from now on (the runner stores it again): a process checking after
            # this one releases the start lock sees it
            store.set_status(bid, "running", now)
        except BaseException:
            if lease is not None:
                lease.release()
            lock.__exit__(None, None, None)
            raise
    return Claimed(lock, lease)

"""The event ids of the completions the trigger ledger has taken, so that each is applied
once: Pub/Sub delivers at least once, and a report naming only its processor and date (no
trigger id) would otherwise close the *next* open trigger of that key when redelivered.

Invariant: bounded -- an id is kept :data:`APPLIED_TTL_S` after it was taken, in one of two
memories of at most :data:`APPLIED_MAX` ids each (oldest dropped first, counted in
:attr:`AppliedCompletions.evicted`): the ids of completions applied to an entry, and those
of completions that matched none. A flood of the second (reports of runs the router never
sent, other dates) cannot push out the first. In taking order, so a snapshot lists them in
the order a replay of the journal takes them again. Pure: times are passed in.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable

APPLIED_TTL_S = 86400.0
"""How long an applied completion's event id is remembered (a day: Pub/Sub redelivers an
unacked message within its ack deadline, and the ledger keeps closed entries as long)."""
APPLIED_MAX = 20_000
"""At most this many ids are remembered in each memory (the snapshot and ``loop.json``
carry them)."""

_Ids = dict[str, tuple[str | None, float]]


class AppliedCompletions:
    """event id -> (the trigger id it was applied to, or None: it matched none; when)."""

    def __init__(self) -> None:
        self._ids: _Ids = {}  # applied to an entry
        self._unmatched: _Ids = {}  # matched none (a newer trigger might match a redelivery)
        # ids dropped for room before their TTL was up, per memory (only counts up): the
        # memory covered less than its day -- a redelivery of one is applied again
        self.evicted = {"applied": 0, "unmatched": 0}

    def __len__(self) -> int:
        return len(self._ids) + len(self._unmatched)

    def get(self, event_id: str) -> tuple[str | None, float] | None:
        """(trigger id, when) of an id taken before (None: not taken, or forgotten)."""
        got = self._ids.get(event_id)
        return got if got is not None else self._unmatched.get(event_id)

    def add(self, event_id: str, trigger_id: str | None, at: float) -> None:
        """Remember ``event_id`` as taken at ``at`` (dropping the expired and the excess)."""
        self.expire(at)
        ids, kind = (
            (self._ids, "applied") if trigger_id is not None else (self._unmatched, "unmatched")
        )
        ids[event_id] = (trigger_id, at)
        while len(ids) > APPLIED_MAX:
            del ids[next(iter(ids))]
            self.evicted[kind] += 1

    def expire(self, now: float) -> None:
        """Forget the ids taken more than :data:`APPLIED_TTL_S` before ``now``."""
        for ids in (self._ids, self._unmatched):
            while ids:
                _tid, at = next(iter(ids.values()))
                if now - at <= APPLIED_TTL_S:
                    break
                del ids[next(iter(ids))]

    def items(self) -> list[list[object]]:
        """``[event id, trigger id, when]`` of each, in taking order (the snapshot)."""
        rows = heapq.merge(self._ids.items(), self._unmatched.items(), key=lambda kv: kv[1][1])
        return [[e, t, at] for e, (t, at) in rows]

    def load(self, rows: Iterable[list[object]]) -> None:
        """Restore :meth:`items` (a malformed row raises ValueError or TypeError)."""
        for row in rows:
            eid, tid, at = row
            ids = self._ids if tid is not None else self._unmatched
            ids[str(eid)] = (None if tid is None else str(tid), float(at))  # type: ignore[arg-type]

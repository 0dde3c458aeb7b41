"""The event ids of the completions the trigger ledger has taken, so that each is applied
once: Pub/Sub delivers at least once, and a report naming only its processor and date (no
trigger id) would otherwise close the *next* open trigger of that key when redelivered.

Invariant: bounded -- an id is kept :data:`APPLIED_TTL_S` after it was taken and at most
:data:`APPLIED_MAX` are kept (oldest dropped first); in taking order, so a snapshot lists
them in the order a replay of the journal takes them again. Pure: times are passed in.
"""

from __future__ import annotations

from collections.abc import Iterable

APPLIED_TTL_S = 86400.0
"""How long an applied completion's event id is remembered (a day: Pub/Sub redelivers an
unacked message within its ack deadline, and the ledger keeps closed entries as long)."""
APPLIED_MAX = 20_000
"""At most this many ids are remembered (the snapshot and ``loop.json`` carry them)."""


class AppliedCompletions:
    """event id -> (the trigger id it was applied to, or None: it matched none; when)."""

    def __init__(self) -> None:
        self._ids: dict[str, tuple[str | None, float]] = {}

    def __len__(self) -> int:
        return len(self._ids)

    def get(self, event_id: str) -> tuple[str | None, float] | None:
        """(trigger id, when) of an id taken before (None: not taken, or forgotten)."""
        return self._ids.get(event_id)

    def add(self, event_id: str, trigger_id: str | None, at: float) -> None:
        """Remember ``event_id`` as taken at ``at`` (dropping the expired and the excess)."""
        self.expire(at)
        self._ids[event_id] = (trigger_id, at)
        while len(self._ids) > APPLIED_MAX:
            del self._ids[next(iter(self._ids))]

    def expire(self, now: float) -> None:
        """Forget the ids taken more than :data:`APPLIED_TTL_S` before ``now``."""
        ids = self._ids
        while ids:
            _tid, at = next(iter(ids.values()))
            if now - at <= APPLIED_TTL_S:
                break
            del ids[next(iter(ids))]

    def items(self) -> list[list[object]]:
        """``[event id, trigger id, when]`` of each, in taking order (the snapshot)."""
        return [[e, t, at] for e, (t, at) in self._ids.items()]

    def load(self, rows: Iterable[list[object]]) -> None:
        """Restore :meth:`items` (a malformed row raises ValueError or TypeError)."""
        for row in rows:
            eid, tid, at = row
            self._ids[str(eid)] = (None if tid is None else str(tid), float(at))  # type: ignore[arg-type]

"""Completions parked by the trigger ledger: those naming a Pub/Sub message id the
dispatcher has not recorded yet (the processor's report overtook the publish's answer),
kept until that id is recorded (:meth:`ParkedCompletions.take`) and then applied in
arrival order, as if the id had been recorded before they came.

Invariant: bounded -- at most :data:`ORPHAN_MAX` wait, and a success (``success``,
``no_data``, a ``partial`` naming no missed ids) waits at most :data:`ORPHAN_TTL_S`; every
drop is counted (``dropped`` only counts up) and reported to the caller as a change, so the
book's driver journals the tick that dropped it. A report of missed ids or a failure is
never dropped for its age, and for room only once no success waits: dropping it could lose
an update -- its run's success (a change event before the report, or a redelivery of one)
parked after it would then close the trigger once the id is recorded, where applied after
the report it is stale (``tests/loop/test_loop_oracle.py``, ``_FAILURE_OUTLIVES_TTL``).
Dropping a success costs at most a re-run (the trigger times out). A redelivered report
(same event id, same message id) is parked once. Pure: times are passed in.
"""

from __future__ import annotations

from scoperouter.router.completion_ref import CompletionRef

ORPHAN_TTL_S = 600.0
"""How long a success naming an unknown message id waits for that id to be recorded (a
publish's answer takes milliseconds; its retries, up to the client's deadline). Reports
of missed ids or a failure wait until the id is recorded or they are dropped for room."""
ORPHAN_MAX = 10_000
"""At most this many such completions wait (completions of runs the router never sent, e.g.
while production's own triggers still run, must not grow the book without bound):
successes are dropped first, oldest first; then the oldest report of a failure."""


class ParkedCompletions:
    """Every parked completion in arrival order: seq -> (message id, completion, when); the
    seqs naming each message id; and the seqs of the successes, in arrival order (those
    the age bound drops, and the first dropped for room)."""

    def __init__(self, limit: int = ORPHAN_MAX) -> None:
        self.limit = limit  # at most this many wait (ORPHAN_MAX; tests give a smaller one)
        self._by_seq: dict[int, tuple[str, CompletionRef, float]] = {}
        self._by_id: dict[str, list[int]] = {}
        self._successes: dict[int, None] = {}  # an ordered set of seqs
        self._seq = 0
        self.dropped = 0  # expired or evicted (only counts up)

    def __len__(self) -> int:
        return len(self._by_seq)

    def park(self, ref: CompletionRef, now: float) -> int:
        """Park ``ref`` (it names a message id); the number of changes made (drops, and
        the park itself: 0 for a redelivered report)."""
        assert ref.message_id is not None
        changes = self.expire(now)
        mid = ref.message_id
        seqs = self._by_id.get(mid, ())
        if ref.event_id is not None and any(
            self._by_seq[q][1].event_id == ref.event_id for q in seqs
        ):
            return changes  # a redelivered report: the ledger ignores it once the first applies
        self.push(mid, ref, now)
        while len(self._by_seq) > self.limit:
            self._drop(next(iter(self._successes or self._by_seq)))
            changes += 1
        return changes + 1

    def push(self, mid: str, ref: CompletionRef, at: float) -> None:
        """Keep ``ref`` under ``mid`` as it was at ``at`` (also a snapshot's restore)."""
        self._seq += 1
        self._by_seq[self._seq] = (mid, ref, at)
        self._by_id.setdefault(mid, []).append(self._seq)
        if ref.says_success:
            self._successes[self._seq] = None

    def take(self, mid: str) -> list[CompletionRef] | None:
        """The completions parked under ``mid``, in arrival order, removed; None: none."""
        seqs = self._by_id.pop(mid, None)
        if seqs is None:
            return None
        for seq in seqs:
            self._successes.pop(seq, None)
        return [self._by_seq.pop(seq)[1] for seq in seqs]

    def expire(self, now: float) -> int:
        """Drop the successes older than :data:`ORPHAN_TTL_S`; how many went."""
        n = 0
        successes, parked = self._successes, self._by_seq
        while successes:
            seq = next(iter(successes))
            if now - parked[seq][2] <= ORPHAN_TTL_S:
                break
            self._drop(seq)
            n += 1
        return n

    def items(self) -> list[tuple[str, CompletionRef, float]]:
        """(message id, completion, when) of each, in arrival order (the snapshot)."""
        return list(self._by_seq.values())

    def _drop(self, seq: int) -> None:
        mid, _ref, _at = self._by_seq.pop(seq)
        self._successes.pop(seq, None)
        seqs = self._by_id[mid]
        seqs.remove(seq)
        if not seqs:
            del self._by_id[mid]
        self.dropped += 1

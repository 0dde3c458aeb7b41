"""A per-target circuit breaker (pure: times are passed in).

Invariant: ``closed`` lets the dispatcher fill every free slot; after ``threshold``
consecutive retryable failures it is ``open`` and lets nothing through until
``open_until``; then ``half_open`` lets exactly one probe through. A success (probe or
not) closes it; a failed probe opens it again for twice as long, capped at ``cap_s``.
Only failures of deliveries started since it last closed count (each delivery carries
its :class:`Start`, with the breaker's ``epoch``): one that started before (the probe too,
when an older delivery's success closed it) says nothing of the target since, and never
reopens a breaker that just closed. A failed call counts once, whatever the rows it carried.
Only the target's answers are reported to it: a delivery the router refused itself before
sending anything (``DispatchError.local``) is neither a success nor a failure.
While it is not closed the target's backlog stays in the state store, not in tasks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

State = Literal["closed", "open", "half_open"]


@dataclass(frozen=True, slots=True)
class Start:
    """A delivery's start as its breaker saw it: the half-open ``probe`` or not, and the
    breaker's ``epoch`` (how many times it had closed) when it started."""

    probe: bool
    epoch: int


@dataclass
class Breaker:
    threshold: int
    base_s: float
    cap_s: float
    state: State = "closed"
    failures: int = 0  # consecutive retryable failures
    trips: int = 0  # times opened since it was last closed
    open_until: float = 0.0
    probing: bool = False  # the half-open probe is in flight
    epoch: int = 0  # times it closed after being open or half-open

    def slots(self, now: float, free: int) -> int:
        """How many new deliveries may start now, given ``free`` in-flight slots."""
        if self.state == "open" and now >= self.open_until:
            self.state = "half_open"
        if self.state == "closed":
            return max(0, free)
        if self.state == "half_open" and not self.probing and free > 0:
            return 1
        return 0

    def started(self) -> Start:
        """A delivery starts (``probe``: it is the half-open probe); hand the answer back
        with its :class:`Start`."""
        if self.state == "half_open" and not self.probing:
            self.probing = True
            return Start(True, self.epoch)
        return Start(False, self.epoch)

    def ended(self, start: Start) -> None:
        """A delivery ended, however: the probe's slot is free again."""
        if start.probe and start.epoch == self.epoch:
            self.probing = False

    def succeeded(self) -> bool:
        """The target answered; True when this closes a breaker that was not closed."""
        reopened = self.state != "closed"
        if reopened:
            self.epoch += 1  # deliveries started until now cannot reopen it
        self.state, self.failures, self.trips, self.probing = "closed", 0, 0, False
        return reopened

    def failed(self, now: float, start: Start) -> bool:
        """A retryable failure of the delivery that started as ``start``; True when the
        breaker opens now."""
        if start.epoch != self.epoch:
            return False  # started before the breaker last closed
        if start.probe:
            self.probing = False
            return self._open(now)
        if self.state != "closed":
            return False  # an attempt started before the breaker opened
        self.failures += 1
        return self.failures >= self.threshold and self._open(now)

    def _open(self, now: float) -> bool:
        self.trips += 1
        self.state = "open"
        self.open_until = now + min(self.cap_s, self.base_s * 2 ** min(self.trips - 1, 30))
        return True

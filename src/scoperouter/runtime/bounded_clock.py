"""The wall clock bounded by monotonic time, for measuring horizons back from "now":
housekeeping's (the dedup horizon and the retentions: :mod:`~scoperouter.runtime.housekeeping`)
and the dispatcher's (each target's ``retry_horizon``). Rows carry wall-clock stamps
(``created_at``, ``seen_at`` ...); a wall clock stepped forward (NTP correcting a host that
booted with a stale clock) would make every row look older at once and end it early. Here
"now" never advances faster than monotonic time, so no row passes a horizon sooner in real
time than the horizon; a step back is followed at once (rows stamped before it pass their
horizons later by the step, never sooner).

Invariant: for a row stamped by this process's wall clock while it runs, a horizon's
``now - stamp`` (:meth:`BoundedClock.horizon_now`) never exceeds the row's real age by more
than :data:`LAG_SLACK_S`. A row stamped by another replica carries that replica's wall
clock: skew between the replicas is not corrected (only this process's "now" is bounded).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

logger = logging.getLogger("scoperouter.runtime")

CLOCK_STEP_WARN_S = 300.0  # wall and monotonic time disagreeing by more: logged once
LAG_SLACK_S = 1.0  # a lag behind the wall clock that grows by less is not a new step


class BoundedClock:
    """The time horizons are measured back from: the wall clock ``now``, but never
    further from the last call's (or the seed's) than monotonic time went since --
    ``min(now, last + (monotonic() - last_monotonic))``; so each cutoff ``now - H`` is
    ``min(now - H, last_cutoff + elapsed)``. A wall clock stepped back is followed at
    once (a later cutoff ends less, never too much). ``monotonic`` is injectable (tests
    need no sleeping); ``what`` names the user in the one WARNING about a step.

    After a step forward the bounded time lags behind the wall clock by the step; rows
    stamped after it would pass a horizon late by the step -- never, for a clock years
    stale. :meth:`horizon_now` ends that: once the lag has not grown for a whole horizon
    of monotonic time, every row stamped before the step is past that horizon by the
    bounded time too, so measuring from the wall clock again ends none of them early."""

    def __init__(self, what: str, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.what = what
        self.monotonic = monotonic
        self._last: tuple[float, float] | None = None  # (bounded time, monotonic time)
        # the lag behind the wall clock: (monotonic time it last grew, its least size since)
        self._lag: tuple[float, float] | None = None
        self.warned = False

    def seed(self, now: float) -> None:
        """Start measuring from ``now`` (the router's start; else the first call)."""
        self._last, self._lag = (now, self.monotonic()), None

    def __call__(self, now: float) -> float:
        return self._bounded(now)[0]

    def horizon_now(self, now: float, horizon: float) -> float:
        """The time a ``horizon`` is measured back from: the bounded time, or the wall
        clock ``now`` once the bounded time has lagged behind it, by a lag that has not
        grown (by more than :data:`LAG_SLACK_S`), for ``horizon`` of monotonic time."""
        bounded, mono = self._bounded(now)
        lag = self._lag
        if lag is not None and mono - lag[0] >= horizon:
            return now
        return bounded

    def _bounded(self, now: float) -> tuple[float, float]:
        mono = self.monotonic()
        if self._last is None:
            self._last = (now, mono)
            return now, mono
        last, last_mono = self._last
        elapsed = max(0.0, mono - last_mono)
        bounded = min(now, last + elapsed)
        if not self.warned and abs(now - (last + elapsed)) > CLOCK_STEP_WARN_S:
            self.warned = True
            logger.warning(
                "wall clock and monotonic time disagree: %s measured by monotonic time",
                self.what,
                extra={"wall_ahead_s": round(now - (last + elapsed), 1)},
            )
        lag, seen = now - bounded, self._lag
        if lag <= LAG_SLACK_S:
            self._lag = None  # in step (or stepped back: followed)
        elif seen is None or lag > seen[1] + LAG_SLACK_S:
            self._lag = (mono, lag)  # a step forward: rows stamped from now on are ahead
        elif lag < seen[1]:
            self._lag = (seen[0], lag)  # stepped back part of the way: the least lag counts
        self._last = (bounded, mono)
        return bounded, mono

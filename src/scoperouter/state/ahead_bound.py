"""A store's upper bound on its open windows' ``last_at``: whether a wall clock stepped back
may have left a window past ``CLOCK_SLACK_S`` ahead of now (docs/engine.md, window rules).

Invariant: while the bound is known, every open window the store wrote has ``last_at`` at
most the bound; anything that may break that (opening the store, another writer, an
import or hand-over) forgets it, and an unknown bound answers "may hold" -- so the one scan
for such windows (``fire_due``) is skipped only when no such window can exist. No I/O.
"""

from __future__ import annotations

from scoperouter.router.window_state import CLOCK_SLACK_S


class AheadBound:
    """The bound (None: not known) and its three events: a write, a scan, a forget."""

    __slots__ = ("_latest",)

    def __init__(self) -> None:
        self._latest: float | None = None

    def may_hold_ahead(self, now: float) -> bool:
        """A window may lie past the slack ahead of ``now``: look for it."""
        return self._latest is None or self._latest > now + CLOCK_SLACK_S

    def wrote(self, now: float) -> None:
        """Window rows written at ``now`` (their ``last_at`` is ``now``)."""
        if self._latest is not None:
            self._latest = max(self._latest, now)

    def scanned(self, now: float) -> None:
        """Every window past the slack ahead of ``now`` fired: the rest lie within it."""
        self._latest = now + CLOCK_SLACK_S

    def forget(self) -> None:
        """Windows were written elsewhere (another writer, an import): not known."""
        self._latest = None

"""``serve``'s dedupe rule for the drivers on a virtual clock (``replay``, ``simulate``).

Invariant: an event whose ``event_id`` was routed less than ``server.dedup_horizon``
before the clock is a duplicate (a Pub/Sub redelivery): the driver ignores it -- never
planned, logged or windowed -- and only lets the clock fire due windows. The time kept is
when the id was first routed; a duplicate does not extend it. An event the planner could not
plan was not routed (``serve`` dead-letters it, ``planner_error``): its id is forgotten, so a
redelivery is planned (and rejected) again, as ``serve`` plans it again.
"""

from __future__ import annotations

from scoperouter.processor_registry.compiled import CompiledRegistry
from scoperouter.processor_registry.models import ServerSpec, parse_seconds


def dedup_horizon_s(registry: CompiledRegistry) -> float:
    """``server.dedup_horizon`` of the registry (24 h by default), as ``serve`` reads it."""
    server = registry.spec.server or ServerSpec()
    return parse_seconds(server.dedup_horizon)


class SeenIds:
    """The event ids a driver routed, with the virtual time of each (serve's seen ids)."""

    __slots__ = ("_at", "horizon_s")

    def __init__(self, horizon_s: float) -> None:
        self.horizon_s = horizon_s
        self._at: dict[str, float] = {}

    @classmethod
    def of(cls, registry: CompiledRegistry) -> SeenIds:
        """With the registry's ``server.dedup_horizon``."""
        return cls(dedup_horizon_s(registry))

    def duplicate(self, event_id: str, clock: float) -> bool:
        """True: ``event_id`` was routed within the horizon before ``clock`` (ignore it);
        False: it is routed now, at ``clock``."""
        routed_at = self._at.get(event_id)
        if routed_at is not None and clock - routed_at < self.horizon_s:
            return True
        self._at[event_id] = clock
        return False

    def forget(self, event_id: str) -> None:
        """``event_id`` was not routed after all (the planner raised on it)."""
        self._at.pop(event_id, None)

"""The routing engine: events in, decisions and fired triggers out. Sans-I/O.

Modelled on h11's ``Connection``: the caller owns every clock, socket and database; the
engine owns the rules. No await, no clock, no I/O: times are floats passed in.

One firing order for every driver (daemon, replay, ``report --what-if``, the simulation,
the demo harness):

1. :meth:`RoutingEngine.receive` at ``now`` first fires every window whose deadline is
   ``<= now``, each at its deadline, earliest first (``(deadline, processor, date)``): an
   event never joins a window that was already due;
2. plans the event (one decision per processor, sorted by processor name) and merges
   each run decision into its window per date (the rules:
   :data:`scoperouter.router.window_state.TRANSITIONS`); a critical event fires the
   windows it touched at once, in decision order;
3. fires what is due at ``now`` again (``quiet: 0s`` windows fire with their event).

:meth:`RoutingEngine.tick` fires due windows between events; :meth:`RoutingEngine.drain`
runs the clock on until every window has fired (end of a stream). A :class:`Fired` is a
trigger with the time it fired at; virtual-clock drivers stamp ``fired_at`` with it, the
daemon with its wall clock.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, NamedTuple

from scoperouter.messages.models import Event, Trigger
from scoperouter.processor_registry.compiled import CompiledRegistry
from scoperouter.processor_registry.relations import RelationStore
from scoperouter.router.decisions import Decision
from scoperouter.router.planner import planner_for
from scoperouter.router.windows import WindowBook


@dataclass(frozen=True, slots=True)
class Fired:
    """A trigger and the time (seconds) its window fired at."""

    trigger: Trigger
    at: float

    @property
    def fired_at(self) -> datetime:
        return datetime.fromtimestamp(self.at, UTC)

    def stamped(self) -> Trigger:
        """The trigger with ``fired_at`` set to :attr:`at` (virtual clocks)."""
        return self.trigger.model_copy(update={"fired_at": self.fired_at})


class Received(NamedTuple):
    """What one event did: its decisions, and every trigger fired while receiving it."""

    decisions: tuple[Decision, ...]
    fired: list[Fired]


Journal = Callable[[str, float, Event | None, Decision | None], None]
"""Told every state change: ``("add", now, event, decision)`` for a run decision merged,
``("due", now, None, None)`` for a tick that fired something. Replaying these calls on
:meth:`RoutingEngine.apply` / :meth:`RoutingEngine.tick` rebuilds the same windows."""


class RoutingEngine:
    """Planner + windows for one registry. Not thread-safe; drive it from one thread."""

    def __init__(
        self,
        registry: CompiledRegistry,
        book: WindowBook | None = None,
        journal: Journal | None = None,
    ) -> None:
        self.registry = registry
        self.planner = planner_for(registry)
        self.book = book if book is not None else WindowBook(registry)
        self.journal = journal

    # ------------------------------------------------------------------ input
    def receive(self, event: Event, relations: RelationStore, as_of: date, now: float) -> Received:
        """Route one event at ``now`` (see the module docstring for the order)."""
        decisions = self.plan(event, relations, as_of)
        return Received(decisions, self.accept(event, decisions, now))

    def plan(self, event: Event, relations: RelationStore, as_of: date) -> tuple[Decision, ...]:
        """The event's decisions (pure: no window changes; may raise on a planner bug)."""
        return self.planner.plan(relations, event, as_of)

    def accept(self, event: Event, decisions: Sequence[Decision], now: float) -> list[Fired]:
        """Steps 1-3 of :meth:`receive` for already-planned decisions."""
        fired = self.tick(now)
        fired.extend(self.apply(event, decisions, now))
        fired.extend(self.tick(now))
        return fired

    def apply(self, event: Event, decisions: Sequence[Decision], now: float) -> list[Fired]:
        """Step 2 only: merge run decisions into their windows (journal replay uses it).
        Returns the windows a critical event fired."""
        out: list[Fired] = []
        journal = self.journal
        for d in decisions:
            if d.action == "run":
                if journal is not None:
                    journal("add", now, event, d)
                out.extend(Fired(t, now) for t in self.book.add(event, d, now))
        return out

    # ------------------------------------------------------------------ timers
    def tick(self, now: float) -> list[Fired]:
        """Fire every window due at ``now``, each at its own deadline, earliest first."""
        fired = [Fired(t, dl) for dl, t in self.book.due_windows(now)]
        if fired and self.journal is not None:
            self.journal("due", now, None, None)
        return fired

    def next_deadline(self) -> float | None:
        """When :meth:`tick` next has something to fire (None: no open window)."""
        return self.book.next_deadline()

    def drain(self, now: float | None = None) -> list[Fired]:
        """Run the clock on until every window has fired (end of a stream)."""
        fired: list[Fired] = []
        while (dl := self.book.next_deadline()) is not None:
            fired.extend(self.tick(dl if now is None else max(now, dl)))
        return fired

    def flush(self, now: float) -> list[Fired]:
        """Fire every open window now, by key (shutdown)."""
        fired = [Fired(t, now) for t in self.book.flush(now)]
        if fired and self.journal is not None:
            self.journal("flush", now, None, None)
        return fired

    # ------------------------------------------------------------------ state
    @property
    def open_count(self) -> int:
        return self.book.open_count

    def snapshot(self) -> dict[str, object]:
        return self.book.snapshot()

    @classmethod
    def restore(cls, registry: CompiledRegistry, snapshot: dict[str, Any]) -> RoutingEngine:
        return cls(registry, WindowBook.restore(registry, snapshot))

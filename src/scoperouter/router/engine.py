"""The routing engine: events in, decisions and fired triggers out. Sans-I/O.

Modelled on h11's ``Connection``: the caller owns every clock, socket and database; the
engine owns the rules. No await, no clock, no I/O: times are floats passed in.

One firing order for every driver (daemon, replay, ``report --what-if``, the simulation,
the demo harness):

1. :meth:`RoutingEngine.receive` at ``now`` first fires every window whose deadline is
   ``<= now``, each at its deadline, earliest first (``(deadline, processor, date)``), and
   every window whose last decision lies past
   :data:`~scoperouter.router.window_state.CLOCK_SLACK_S` ahead of ``now`` (the clock was
   stepped back), at ``now``: an event never joins a window that was already due;
2. plans the event (one decision per processor, sorted by processor name) and merges
   each run decision into its window per date (the rules:
   :data:`scoperouter.router.window_state.TRANSITIONS`); a critical event fires the
   windows it touched at once, in decision order;
3. fires what is due at ``now`` again (``quiet: 0s`` windows fire with their event).

:meth:`RoutingEngine.tick` fires due windows between events; :meth:`RoutingEngine.drain`
runs the clock on until every window has fired (end of a stream). A :class:`Fired` is a
trigger with the time it fired at; virtual-clock drivers stamp ``fired_at`` with it, the
daemon with its wall clock.

Given the dispatch modes (``modes``, the daemon's), a window fires live when a decision
joined it while its processor fired live (its ``live`` bit), else in its processor's mode
then; only a trigger fired live opens a ledger entry (one fired in shadow is never sent: no
completion would close it).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, NamedTuple, Protocol

from scoperouter.messages.models import Event, Trigger
from scoperouter.processor_registry.compiled import CompiledRegistry
from scoperouter.processor_registry.relations import RelationStore
from scoperouter.router.closed_loop import ClosedLoop
from scoperouter.router.completion_ref import CompletionRef
from scoperouter.router.decisions import Decision
from scoperouter.router.ledger import Entry
from scoperouter.router.loop_params import LoopOverrides
from scoperouter.router.planner import planner_for
from scoperouter.router.window_state import WindowState, to_trigger
from scoperouter.router.windows import WindowBook

LIVE = "live"
SHADOW = "shadow"


class Modes(Protocol):
    """The dispatch mode each processor fires in now
    (:class:`scoperouter.state.model.FireModes`)."""

    def of(self, processor: str) -> str: ...


@dataclass(frozen=True, slots=True)
class Fired:
    """A trigger and the time (seconds) its window fired at; with the closed loop, which
    attempt this is (a re-dispatch keeps the trigger id) and how long a barrier held it."""

    trigger: Trigger
    at: float
    attempt: int = 1
    held_s: float = 0.0
    # upstream processors with open work on the date when it was sent (closed loop only):
    # non-empty = the run reads half-updated inputs
    upstream_busy: tuple[str, ...] = ()
    # the mode a window fired in (attempt 1; None: the engine was given no modes, or a
    # re-dispatch: the driver sends it as the trigger's first attempt was)
    mode: str | None = None

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
        *,
        loop: bool | LoopOverrides = False,
        modes: Modes | None = None,
    ) -> None:
        self.registry = registry
        # the mode each processor fires in now (None: not known -- no live bit is set, a
        # window fires in no mode the engine names and the ledger tracks every trigger).
        # The ledger does not track a trigger fired in shadow (never sent, so no completion
        # can name it; it must not time out, re-run or hold a barrier)
        self.modes = modes
        self.planner = planner_for(registry)
        self.book = book if book is not None else WindowBook(registry)
        self.journal = journal
        # the closed loop (docs/ledger.md): ledger of every trigger + fan-in barriers
        self.loop: ClosedLoop | None = None
        if loop is not False:
            overrides = loop if isinstance(loop, LoopOverrides) else None
            self.loop = ClosedLoop(registry, self.book, overrides)
        self._recheck_at: float | None = None  # a completion may release held windows

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
        states: list[tuple[float, WindowState]] = []
        out: list[Fired] = []
        journal, loop, modes = self.journal, self.loop, self.modes
        book, df = self.book, self.registry.date_field
        for d in decisions:
            if d.action == "run":
                if journal is not None:
                    journal("add", now, event, d)
                live = modes is not None and modes.of(d.processor) == LIVE
                if loop is None:  # without the loop: the book's triggers, as they fire
                    out.extend(
                        Fired(to_trigger(w, df), now, mode=self.fire_mode(w))
                        for w in book.add_states(event, d, now, live)
                    )
                    continue
                for day in d.dates:
                    loop.unpark(d.processor, day)
                states.extend((now, w) for w in book.add_states(event, d, now, live))
        return out + self._fire(states) if states else out

    def fire_mode(self, w: WindowState) -> str | None:
        """The mode window ``w`` fires in now: live when a decision joined it while its
        processor fired live, else its processor's mode now (None: no modes given)."""
        if w.live:
            return LIVE
        modes = self.modes
        return None if modes is None else modes.of(w.processor)

    def _fire(self, states: list[tuple[float, WindowState]]) -> list[Fired]:
        """Windows the book fired -> triggers (through the barrier, into the ledger)."""
        df = self.registry.date_field
        loop = self.loop
        if loop is None:
            return [Fired(to_trigger(w, df), at, mode=self.fire_mode(w)) for at, w in states]
        return self._opened([(g.window, g.at, g.held_s) for g in loop.gate(states)])

    def _opened(self, gated: list[tuple[Any, float, float]]) -> list[Fired]:
        """Open ledger entries for windows sent together (those fired live: one fired in
        shadow is never sent); note who was busy upstream."""
        assert self.loop is not None
        loop, df = self.loop, self.registry.date_field
        out: list[Fired] = []
        for w, at, held in gated:
            t, mode = to_trigger(w, df), self.fire_mode(w)
            if mode != SHADOW:
                loop.ledger.open(t, at)
            out.append(Fired(t, at, 1, held, self._busy(t), mode))
        return out

    def _busy(self, t: Trigger) -> tuple[str, ...]:
        assert self.loop is not None
        return tuple(sorted(self.loop.busy_upstreams(t.processor, t.game_date)))

    # ------------------------------------------------------------------ timers
    def tick(self, now: float) -> list[Fired]:
        """Fire every window due at ``now``, each at its own deadline, earliest first."""
        loop = self.loop
        version = loop.version if loop is not None else 0
        if loop is None:  # without the loop: exactly the book's due windows
            df = self.registry.date_field
            fired = [
                Fired(to_trigger(w, df), dl, mode=self.fire_mode(w))
                for dl, w in self.book.due_states(now)
            ]
        else:
            fired = self._fire(self.book.due_states(now))
        if loop is not None:
            self._recheck_at = None
            redispatch, released = loop.tick(now)
            fired.extend(
                Fired(r.trigger, r.at, r.attempt, 0.0, self._busy(r.trigger)) for r in redispatch
            )
            fired.extend(self._fire_released(released))
        changed = bool(fired) or (loop is not None and loop.version != version)
        if changed and self.journal is not None:
            self.journal("due", now, None, None)
        return fired

    def _fire_released(self, released: list[Any]) -> list[Fired]:
        return self._opened([(g.window, g.at, g.held_s) for g in released])

    def next_deadline(self, now: float | None = None) -> float | None:
        """When :meth:`tick` next has something to do (None: nothing open); asked at
        ``now``, ``now`` when a window lies past ``CLOCK_SLACK_S`` ahead of it."""
        dl = self.book.next_deadline(now)
        loop = self.loop
        if loop is None:
            return dl
        cands = [x for x in (dl, loop.next_deadline(), self._recheck_at) if x is not None]
        return min(cands) if cands else None

    # ------------------------------------------------------------------ completions
    def complete(self, ref: CompletionRef, now: float) -> Entry | None:
        """A completion report: close (or re-run) the trigger it names; held windows are
        re-checked at the next :meth:`tick` (at ``now``). None: no open loop or unknown."""
        if self.loop is None:
            return None
        entry = self.loop.complete(ref, now)
        if self.loop.has_held:
            self._recheck_at = now
        return entry

    def alias(self, message_id: str, trigger_id: str, now: float) -> Entry | None:
        """Trigger ``trigger_id`` was delivered as message ``message_id`` (the id a Pub/Sub
        publish returned): a completion naming it as ``trigger_message_id`` closes the
        trigger, also one that arrived before this (applied now: its entry is returned),
        and is attributed to the attempt the trigger is at now (the one being sent).
        A no-op without the loop (the driver journals it as ``alias``)."""
        if self.loop is None:
            return None
        entry = self.loop.ledger.alias(message_id, trigger_id, now)
        if entry is not None and self.loop.has_held:
            self._recheck_at = now
        return entry

    def redrive(self, trigger_ids: Sequence[str], now: float) -> list[Fired]:
        """Send dead letters again now (same trigger id, fresh retries)."""
        if self.loop is None:
            return []
        return [Fired(r.trigger, r.at, r.attempt) for r in self.loop.redrive(trigger_ids, now)]

    def drain(self, now: float | None = None) -> list[Fired]:
        """Run the clock on until every window has fired (end of a stream)."""
        fired: list[Fired] = []
        while (dl := self.next_deadline()) is not None:
            fired.extend(self.tick(dl if now is None else max(now, dl)))
        if self.loop is not None and self.loop.has_held:  # nothing left to wait for
            fired.extend(
                self._fire_released(self.loop.flush(dl if dl is not None else (now or 0.0)))
            )
        return fired

    def flush(self, now: float) -> list[Fired]:
        """Fire every open window now, by key (shutdown)."""
        df = self.registry.date_field
        fired = [
            Fired(to_trigger(w, df), now, mode=self.fire_mode(w))
            for w in self.book.flush_states(now)
        ]
        if self.loop is not None:
            for f in fired:
                if f.mode != SHADOW:
                    self.loop.ledger.open(f.trigger, now)
            self.loop.barrier.parked.clear()
            fired.extend(self._fire_released(self.loop.flush(now)))
        if fired and self.journal is not None:
            self.journal("flush", now, None, None)
        return fired

    # ------------------------------------------------------------------ state
    @property
    def open_count(self) -> int:
        return self.book.open_count

    def snapshot(self) -> dict[str, object]:
        snap = self.book.snapshot()
        if self.loop is not None:
            snap["loop"] = self.loop.snapshot()
        return snap

    @classmethod
    def restore(
        cls,
        registry: CompiledRegistry,
        snapshot: dict[str, Any],
        *,
        loop: bool | LoopOverrides = False,
        modes: Modes | None = None,
    ) -> RoutingEngine:
        engine = cls(registry, WindowBook.restore(registry, snapshot), loop=loop, modes=modes)
        if engine.loop is not None and "loop" in snapshot:
            engine.loop.restore(snapshot["loop"])
        return engine

    def under(
        self, registry: CompiledRegistry, *, loop: bool | LoopOverrides = False
    ) -> RoutingEngine:
        """This engine's state (windows, loop, a pending re-check) under ``registry``: a
        journal replayed under the registry that wrote it is handed to the current one."""
        engine = RoutingEngine.restore(registry, self.snapshot(), loop=loop, modes=self.modes)
        engine._recheck_at = self._recheck_at
        return engine

"""The book of open windows: :class:`WindowState` values keyed by ``(processor, date)``.

Invariant: the book only stores windows and orders their deadlines; every rule (merge,
fire at once, due) is applied by the pure functions of :mod:`scoperouter.router.window_state`
and its transition table. A decision with several dates joins one window per date. Due
windows fire in ``(deadline, processor, date)`` order; a window lying past
:data:`~scoperouter.router.window_state.CLOCK_SLACK_S` ahead of ``now`` (a clock stepped
back) is due too and fires at ``now``; :meth:`WindowBook.flush` fires by key order.

Times are floats (seconds) supplied by the caller: ``replay`` drives the book with a
virtual clock, the daemon with the wall clock (use epoch seconds so that a
:meth:`WindowBook.snapshot` restored after a restart keeps its deadlines). Nothing here
reads a clock or does I/O.
"""

from __future__ import annotations

import heapq
from datetime import date
from typing import Any

from scoperouter.messages.models import Event, Trigger
from scoperouter.processor_registry.compiled import CompiledRegistry
from scoperouter.processor_registry.models import parse_duration
from scoperouter.router.decisions import Decision
from scoperouter.router.window_state import (
    CLOCK_SLACK_S,
    WindowParams,
    WindowState,
    merge_decision,
    to_trigger,
    trigger_id,
    window_from_json,
    window_to_json,
)

SNAPSHOT_VERSION = 1
WindowKey = tuple[str, date]

__all__ = ["SNAPSHOT_VERSION", "WindowBook", "WindowKey", "trigger_id", "window_params"]


def window_params(registry: CompiledRegistry, processor: str) -> WindowParams:
    """The processor's window settings; a processor no longer in the registry gets the
    defaults (its work is never dropped)."""
    p = registry.processors.get(processor)
    if p is not None:
        return WindowParams(p.quiet_s, p.max_wait_s, p.max_entities, p.granularity)
    d = registry.spec.defaults
    return WindowParams(
        parse_duration(d.window.quiet), parse_duration(d.window.max_wait), d.max_entities, ""
    )


class WindowBook:
    """Open windows keyed by ``(processor, date)``. Not thread-safe; drive it from one task."""

    def __init__(self, registry: CompiledRegistry) -> None:
        self.registry = registry
        self._windows: dict[WindowKey, WindowState] = {}
        self._heap: list[tuple[float, str, date]] = []  # lazy: stale entries are skipped
        self._params: dict[str, WindowParams] = {}
        # at least every open window's last_at: only past now + CLOCK_SLACK_S (a clock
        # stepped back) does due_states look for windows ahead of now
        self._latest = float("-inf")

    def params(self, processor: str) -> WindowParams:
        got = self._params.get(processor)
        if got is None:
            got = self._params[processor] = window_params(self.registry, processor)
        return got

    # ------------------------------------------------------------------ state
    @property
    def open_count(self) -> int:
        return len(self._windows)

    def keys(self) -> tuple[WindowKey, ...]:
        """Open window keys, sorted."""
        return tuple(sorted(self._windows))

    def get(self, key: WindowKey) -> WindowState | None:
        return self._windows.get(key)

    def states(self) -> tuple[WindowState, ...]:
        """Every open window, by key."""
        return tuple(w for _k, w in sorted(self._windows.items()))

    @property
    def latest(self) -> float:
        """At least every open window's ``last_at`` (``-inf``: none opened)."""
        return self._latest

    def next_deadline(self, now: float | None = None) -> float | None:
        """When the earliest open window is due (None when nothing is open); asked at
        ``now``: ``now`` when a window lies past ``CLOCK_SLACK_S`` ahead of it."""
        if now is not None and self._latest > now + CLOCK_SLACK_S and self._ahead(now):
            return now
        self._prune()
        return self._heap[0][0] if self._heap else None

    def _ahead(self, now: float) -> list[WindowState]:
        """The windows lying past ``CLOCK_SLACK_S`` ahead of ``now``, by key; ``_latest``
        tightened to the open windows' latest ``last_at`` (a scan: a clock stepped back)."""
        ws = self._windows.values()
        self._latest = max((w.last_at for w in ws), default=float("-inf"))
        limit = now + CLOCK_SLACK_S
        return sorted((w for w in ws if w.last_at > limit), key=lambda w: (w.processor, w.day))

    # ------------------------------------------------------------------ input
    def add(self, event: Event, decision: Decision, now: float) -> list[Trigger]:
        """Merge a decision into its windows. Returns the triggers that fire at once
        (``priority: critical``); others fire from :meth:`due`."""
        return [
            to_trigger(w, self.registry.date_field) for w in self.add_states(event, decision, now)
        ]

    def add_states(
        self, event: Event, decision: Decision, now: float, live: bool = False
    ) -> list[WindowState]:
        """:meth:`add`, answering the windows that fire at once (a barrier may hold them);
        ``live``: the processor fires live now (its windows remember it)."""
        fired: list[WindowState] = []
        params = self.params(decision.processor)
        windows = self._windows
        for day in decision.dates:
            key = (decision.processor, day)
            w, fire = merge_decision(windows.get(key), event, decision, day, now, params, live)
            if w is None:
                continue
            if fire:
                self._windows.pop(key, None)
                fired.append(w)
            else:
                self._windows[key] = w
                heapq.heappush(self._heap, (w.deadline, key[0], key[1]))
                if now > self._latest:
                    self._latest = now
        return fired

    # ------------------------------------------------------------------ output
    def due_windows(self, now: float) -> list[tuple[float, Trigger]]:
        """Fire every window whose deadline is ``<= now``, earliest first, each with the
        deadline it fired at (and one lying past ``CLOCK_SLACK_S`` ahead of ``now``, at
        ``now``)."""
        df = self.registry.date_field
        return [(dl, to_trigger(w, df)) for dl, w in self.due_states(now)]

    def due_states(self, now: float) -> list[tuple[float, WindowState]]:
        """:meth:`due_windows`, answering the windows (a barrier may hold them)."""
        fired: list[tuple[float, WindowState]] = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            dl, proc, day = heapq.heappop(heap)
            w = self._windows.get((proc, day))
            if w is None or w.deadline != dl:
                continue  # stale entry
            del self._windows[(proc, day)]
            fired.append((dl, w))
        if self._latest > now + CLOCK_SLACK_S:  # a clock stepped back: due now
            ahead = self._ahead(now)
            if ahead:
                for w in ahead:
                    del self._windows[(w.processor, w.day)]
                fired.extend((now, w) for w in ahead)
                fired.sort(key=lambda f: (f[0], f[1].processor, f[1].day))
                self._latest = max(
                    (w.last_at for w in self._windows.values()), default=float("-inf")
                )
        return fired

    def due(self, now: float) -> list[Trigger]:
        """Fire every window whose quiet or max_wait elapsed at ``now``, earliest first."""
        return [t for _dl, t in self.due_windows(now)]

    def flush(self, now: float) -> list[Trigger]:
        """Fire everything still open (shutdown, end of replay), by key order."""
        df = self.registry.date_field
        return [to_trigger(w, df) for w in self.flush_states(now)]

    def flush_states(self, now: float) -> list[WindowState]:
        """:meth:`flush`, answering the windows."""
        fired = [self._windows[k] for k in sorted(self._windows)]
        self._windows.clear()
        self._heap.clear()
        self._latest = float("-inf")
        return fired

    def _prune(self) -> None:
        heap = self._heap
        while heap:
            dl, proc, day = heap[0]
            w = self._windows.get((proc, day))
            if w is not None and w.deadline == dl:
                return
            heapq.heappop(heap)

    # ------------------------------------------------------------------ persistence
    def snapshot(self) -> dict[str, object]:
        """JSON-able state of every open window."""
        return {
            "version": SNAPSHOT_VERSION,
            "windows": [window_to_json(w) for w in self.states()],
        }

    def put(self, w: WindowState) -> None:
        """Hold ``w`` (restore, or a store handing windows over)."""
        self._windows[(w.processor, w.day)] = w
        heapq.heappush(self._heap, (w.deadline, w.processor, w.day))
        self._latest = max(self._latest, w.last_at)

    @classmethod
    def restore(cls, registry: CompiledRegistry, snapshot: dict[str, Any]) -> WindowBook:
        """A book holding the windows of :meth:`snapshot`. Windows and durations follow the
        (possibly changed) registry; a window of a processor no longer in the registry is
        kept with the default window and threshold (work is never dropped silently).
        Raises ValueError on a malformed snapshot."""
        if not isinstance(snapshot, dict) or snapshot.get("version") != SNAPSHOT_VERSION:
            raise ValueError(f"unsupported window snapshot (expected version {SNAPSHOT_VERSION})")
        book = cls(registry)
        try:
            for item in snapshot.get("windows", []):
                book.put(window_from_json(item, book.params(str(item["processor"]))))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"malformed window snapshot: {exc}") from exc
        return book

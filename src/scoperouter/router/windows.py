"""Coalescing windows: the pure state machine between decisions and triggers (SPEC section 2).

One window per ``(processor, date)``. Decisions that land in an open window merge:

* entity sets unite; once the union passes the processor's ``max_entities`` the window
  becomes full date (reason ``fallback_threshold``);
* a full-date decision absorbs entity decisions (and later ones);
* ``caused_by`` accumulates event ids (sorted, unique); ``correlation_id`` is the first one
  seen; ``priority`` is critical if any event was.

A window fires after ``quiet`` seconds without a new decision, or ``max_wait`` seconds after
it opened, whichever comes first; an event with ``priority: critical`` fires its windows
at once. A decision with several dates joins one window per date. Skip decisions are
ignored.

Times are floats (seconds) supplied by the caller: ``replay`` drives the book with a
virtual clock, the daemon with the wall clock (use epoch seconds so that a
:meth:`WindowBook.snapshot` restored after a restart keeps its deadlines). Nothing here
reads a clock or does I/O.
"""

from __future__ import annotations

import hashlib
import heapq
import json
from dataclasses import dataclass
from datetime import date
from typing import Any, cast

from scoperouter.messages.models import Event, Priority, Trigger
from scoperouter.processor_registry.compiled import CompiledRegistry
from scoperouter.processor_registry.models import parse_duration
from scoperouter.router.decisions import REASON_ORDER, Decision, Reason

SNAPSHOT_VERSION = 1
WindowKey = tuple[str, date]


@dataclass(slots=True)
class _Window:
    processor: str
    day: date
    opened_at: float
    last_at: float
    entity_ids: set[str] | None  # None = full date
    date_reason: Reason | None
    caused_by: set[str]
    correlation_id: str | None
    priority: Priority
    quiet_s: float
    max_wait_s: float
    max_entities: int
    entity_type: str

    @property
    def deadline(self) -> float:
        return min(self.last_at + self.quiet_s, self.opened_at + self.max_wait_s)


def trigger_id(
    processor: str, day: date, scope: str, ids: tuple[str, ...] | None, caused_by: tuple[str, ...]
) -> str:
    """Deterministic id of a trigger: same window content -> same id (idempotent dispatch)."""
    payload = json.dumps(
        [
            processor,
            day.isoformat(),
            scope,
            list(ids) if ids is not None else None,
            list(caused_by),
        ],
        separators=(",", ":"),
    )
    return "t-" + hashlib.sha256(payload.encode("utf-8")).hexdigest()[:24]


class WindowBook:
    """Open windows keyed by ``(processor, date)``. Not thread-safe; drive it from one task."""

    def __init__(self, registry: CompiledRegistry) -> None:
        self.registry = registry
        self._windows: dict[WindowKey, _Window] = {}
        self._heap: list[tuple[float, str, date]] = []  # lazy: stale entries are skipped
        d = registry.spec.defaults
        self._default_quiet = parse_duration(d.window.quiet)
        self._default_max_wait = parse_duration(d.window.max_wait)
        self._default_max_entities = d.max_entities

    # ------------------------------------------------------------------ state
    @property
    def open_count(self) -> int:
        return len(self._windows)

    def keys(self) -> tuple[WindowKey, ...]:
        """Open window keys, sorted."""
        return tuple(sorted(self._windows))

    def next_deadline(self) -> float | None:
        """When the earliest open window is due (None when nothing is open)."""
        self._prune()
        return self._heap[0][0] if self._heap else None

    # ------------------------------------------------------------------ input
    def add(self, event: Event, decision: Decision, now: float) -> list[Trigger]:
        """Merge a decision into its windows. Returns the triggers that fire at once
        (``priority: critical``); others fire from :meth:`due`."""
        if decision.action != "run" or not decision.dates:
            return []
        fired: list[Trigger] = []
        critical = event.priority == "critical"
        for day in decision.dates:
            key = (decision.processor, day)
            w = self._windows.get(key)
            if w is None:
                w = self._open(decision.processor, day, now)
                self._windows[key] = w
            self._merge(w, event, decision)
            w.last_at = now
            if critical:
                del self._windows[key]
                fired.append(self._fire(w))
            else:
                heapq.heappush(self._heap, (w.deadline, key[0], key[1]))
        return fired

    def _open(self, processor: str, day: date, now: float) -> _Window:
        p = self.registry.processors.get(processor)
        return _Window(
            processor=processor,
            day=day,
            opened_at=now,
            last_at=now,
            entity_ids=set(),
            date_reason=None,
            caused_by=set(),
            correlation_id=None,
            priority="normal",
            quiet_s=p.quiet_s if p is not None else self._default_quiet,
            max_wait_s=p.max_wait_s if p is not None else self._default_max_wait,
            max_entities=p.max_entities if p is not None else self._default_max_entities,
            entity_type=p.granularity if p is not None else "",
        )

    @staticmethod
    def _merge(w: _Window, event: Event, decision: Decision) -> None:
        w.caused_by.add(event.event_id)
        if w.correlation_id is None and event.correlation_id is not None:
            w.correlation_id = event.correlation_id
        if event.priority == "critical":
            w.priority = "critical"
        if w.entity_ids is None:
            return  # full date absorbs everything
        if decision.scope == "date" or decision.entity_ids is None:
            w.entity_ids = None
            w.date_reason = decision.reason
            return
        if decision.entity_type:
            w.entity_type = decision.entity_type
        w.entity_ids.update(decision.entity_ids)
        if len(w.entity_ids) > w.max_entities:
            w.entity_ids = None
            w.date_reason = "fallback_threshold"

    # ------------------------------------------------------------------ output
    def due(self, now: float) -> list[Trigger]:
        """Fire every window whose quiet or max_wait elapsed at ``now``, earliest first."""
        fired: list[Trigger] = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            deadline, proc, day = heapq.heappop(heap)
            w = self._windows.get((proc, day))
            if w is None or w.deadline != deadline:
                continue  # stale entry
            del self._windows[(proc, day)]
            fired.append(self._fire(w))
        return fired

    def flush(self, now: float) -> list[Trigger]:
        """Fire everything still open (shutdown, end of replay), by key order."""
        fired = [self._fire(self._windows[k]) for k in sorted(self._windows)]
        self._windows.clear()
        self._heap.clear()
        return fired

    def _prune(self) -> None:
        heap = self._heap
        while heap:
            deadline, proc, day = heap[0]
            w = self._windows.get((proc, day))
            if w is not None and w.deadline == deadline:
                return
            heapq.heappop(heap)

    def _fire(self, w: _Window) -> Trigger:
        caused = tuple(sorted(w.caused_by))
        if w.entity_ids is None:
            scope = "date"
            ids: tuple[str, ...] | None = None
            reason: str = w.date_reason or "no_entities_in_event"
            etype: str | None = None
        elif (
            not w.entity_ids
        ):  # pragma: no cover - a run decision always names ids or is date scope
            scope, ids, reason, etype = "date", None, "no_entities_in_event", None
        else:
            scope = "entities"
            ids = tuple(sorted(w.entity_ids))
            reason = "entity_scope"
            etype = w.entity_type or None
        return Trigger(
            trigger_id=trigger_id(w.processor, w.day, scope, ids, caused),
            processor=w.processor,
            game_date=w.day,
            start_date=w.day,
            end_date=w.day,
            scope=cast(Any, scope),
            entity_type=etype,
            entity_ids=ids,
            reason=reason,
            caused_by=caused,
            correlation_id=w.correlation_id,
            priority=w.priority,
            date_field=self.registry.date_field,
        )

    # ------------------------------------------------------------------ persistence
    def snapshot(self) -> dict[str, object]:
        """JSON-able state of every open window."""
        return {
            "version": SNAPSHOT_VERSION,
            "windows": [
                {
                    "processor": w.processor,
                    "date": w.day.isoformat(),
                    "opened_at": w.opened_at,
                    "last_at": w.last_at,
                    "entity_ids": sorted(w.entity_ids) if w.entity_ids is not None else None,
                    "entity_type": w.entity_type,
                    "date_reason": w.date_reason,
                    "caused_by": sorted(w.caused_by),
                    "correlation_id": w.correlation_id,
                    "priority": w.priority,
                }
                for _k, w in sorted(self._windows.items())
            ],
        }

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
                day = date.fromisoformat(item["date"])
                w = book._open(str(item["processor"]), day, float(item["opened_at"]))
                w.last_at = float(item["last_at"])
                ids = item.get("entity_ids")
                w.entity_ids = set(map(str, ids)) if ids is not None else None
                if item.get("entity_type"):
                    w.entity_type = str(item["entity_type"])
                reason = item.get("date_reason")
                if reason is not None and reason not in REASON_ORDER:
                    raise ValueError(f"unknown reason {reason!r}")
                w.date_reason = cast(Reason | None, reason)
                w.caused_by = set(map(str, item.get("caused_by", [])))
                w.correlation_id = item.get("correlation_id")
                w.priority = "critical" if item.get("priority") == "critical" else "normal"
                book._windows[(w.processor, day)] = w
                heapq.heappush(book._heap, (w.deadline, w.processor, day))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"malformed window snapshot: {exc}") from exc
        return book

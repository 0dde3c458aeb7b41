"""The two routers the demo compares: today's date-level behaviour and the routing engine.

Invariant: both answer ``route(raw message, now)`` and ``due(now)`` with :class:`Job` values
and never execute anything; :func:`scoperouter.examples.nba.simulation.simulate` runs the
jobs. :class:`PlannedRouter` is a thin loop around
:class:`scoperouter.router.engine.RoutingEngine` (the daemon's firing order).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Literal, Protocol

from scoperouter.errors import EventError
from scoperouter.examples.nba.stream import produced_at
from scoperouter.execution_log.api import ExecutionLog
from scoperouter.messages.models import Event, Trigger
from scoperouter.messages.normalize import normalize_event
from scoperouter.processor_registry.compiled import CompiledProcessor, CompiledRegistry
from scoperouter.processor_registry.relations import (
    InMemoryRelations,
    next_occurrences,
    occurring_on,
)
from scoperouter.router.completion_ref import completion_ref, is_report_only
from scoperouter.router.engine import Fired, RoutingEngine
from scoperouter.router.loop_params import LoopOverrides


@dataclass(frozen=True)
class Job:
    """One processor run: dates and scope (``ids=None`` = full date)."""

    processor: str
    dates: tuple[date, ...]
    ids: tuple[str, ...] | None
    priority: Literal["normal", "critical"] = "normal"
    correlation_id: str | None = None
    run_id: str = ""
    attempt: int = 1  # > 1: a re-dispatch of the same trigger (the closed loop)
    upstream_busy: tuple[str, ...] = ()  # upstreams with open work when it was sent


class Router(Protocol):
    def route(self, raw: Mapping[str, Any], now: float) -> list[Job]: ...
    def due(self, now: float) -> list[Job]: ...
    def next_deadline(self) -> float | None: ...


def _date_range(start: date, end: date) -> tuple[date, ...]:
    return tuple(start + timedelta(days=i) for i in range((end - start).days + 1))


def lookback_dates(
    proc: CompiledProcessor, relations: InMemoryRelations, day: date, as_of: date
) -> tuple[date, ...]:
    """Later dates a date-level run of ``proc`` on ``day`` must also cover (capped at as_of)."""
    lb = proc.lookback
    if lb is None:
        return ()
    if lb.days is not None:
        return tuple(
            d
            for d in _date_range(day + timedelta(days=1), day + timedelta(days=lb.days))
            if d <= as_of
        )
    assert lb.count is not None and lb.via is not None
    # the router's occurrence rule (relations.py): undated via rows hold on every date, and
    # a date without any dated via row is unknown, so every later date up to as-of may hold
    # one of the next occurrences of whoever occurred on it
    who = occurring_on(relations, lb.via, day)
    if who is None:
        return _date_range(day + timedelta(days=1), as_of) if day < as_of else ()
    later: set[date] = set()
    for eid in who:
        later.update(
            d for d in next_occurrences(relations, lb.via, eid, day, lb.count) if d <= as_of
        )
    return tuple(sorted(later))


class DateLevelRouter:
    """Today's behaviour: every consumer of the source, full date, at once."""

    def __init__(
        self,
        registry: CompiledRegistry,
        relations: InMemoryRelations,
        as_of: date,
        *,
        rerun_lookback: bool = True,
    ) -> None:
        self.registry, self.relations, self.as_of = registry, relations, as_of
        self.rerun_lookback = rerun_lookback
        self.rejected = 0
        self._later: dict[tuple[str, date], tuple[date, ...]] = {}  # lookback_dates, memoised

    def route(self, raw: Mapping[str, Any], now: float) -> list[Job]:
        try:
            ev = normalize_event(dict(raw), self.registry)
        except EventError:
            self.rejected += 1
            return []
        if ev.status not in ("success", "partial") or ev.game_date is None:
            return []
        jobs = []
        for ci in self.registry.by_source.get(ev.source, ()):
            proc = self.registry.processors[ci.processor]
            key = (ci.processor, ev.game_date)
            if self.rerun_lookback and key not in self._later:
                self._later[key] = lookback_dates(proc, self.relations, ev.game_date, self.as_of)
            later = self._later[key] if self.rerun_lookback else ()
            dates = (ev.game_date, *later)
            jobs.append(Job(ci.processor, dates, None, ev.priority, ev.correlation_id, ev.event_id))
        return jobs

    def due(self, now: float) -> list[Job]:
        return []

    def next_deadline(self) -> float | None:
        return None


class PlannedRouter:
    """The router: planner + coalescing windows on the caller's clock. With ``log``, every
    decision, dispatch and completion goes to the execution log (virtual timestamps)."""

    def __init__(
        self,
        registry: CompiledRegistry,
        relations: InMemoryRelations,
        as_of: date,
        log: ExecutionLog | None = None,
        *,
        loop: bool | LoopOverrides = False,
    ) -> None:
        self.registry, self.relations, self.as_of = registry, relations, as_of
        self.engine = RoutingEngine(registry, loop=loop)
        self.rejected = 0
        self.decisions = 0
        self.duplicates = 0
        self.log = log
        self._seen: set[str] = set()  # event ids routed (the daemon dedupes the same way)

    def _jobs(self, fired: list[Fired]) -> list[Job]:
        return [self._job(f.trigger, f.at, f.attempt, f.upstream_busy) for f in fired]

    def _job(self, t: Trigger, now: float, attempt: int = 1, busy: tuple[str, ...] = ()) -> Job:
        if self.log is not None:
            at = produced_at(self.as_of, now)
            self.log.record_dispatch(
                t.model_copy(update={"fired_at": at}),
                status="ok",
                attempts=1,
                latency_ms=0.0,
                dispatched_at=at,
            )
        return Job(
            t.processor,
            _date_range(t.start_date, t.end_date),
            t.entity_ids if t.scope == "entities" else None,
            t.priority,
            t.correlation_id,
            t.trigger_id,
            attempt,
            busy,
        )

    def route(self, raw: Mapping[str, Any], now: float) -> list[Job]:
        """Route one message; with the closed loop, a completion that names a trigger
        also closes it (a bare completion report is not routed)."""
        loop = self.engine.loop
        if loop is not None and is_report_only(raw):
            ref = completion_ref(raw, date_field=self.registry.date_field)
            if ref is not None:
                self.engine.complete(ref, now)
            return self._jobs(self.engine.tick(now))
        jobs = self._route_event(raw, now)
        if loop is not None:
            ref = completion_ref(raw, date_field=self.registry.date_field)
            if ref is not None and (ref.trigger_id or ref.message_id):
                self.engine.complete(ref, now)
        return jobs

    def _route_event(self, raw: Mapping[str, Any], now: float) -> list[Job]:
        try:
            ev: Event = normalize_event(dict(raw), self.registry)
        except EventError:
            self.rejected += 1
            return []
        if ev.event_id in self._seen:
            self.duplicates += 1
            return self._jobs(self.engine.tick(now))
        self._seen.add(ev.event_id)
        decisions, fired = self.engine.receive(ev, self.relations, self.as_of, now)
        if self.log is not None:
            self.log.record_decisions(
                ev,
                decisions,
                produced_at(self.as_of, now),
                registry=self.registry,
                relations=self.relations,
                as_of=self.as_of,
            )
        self.decisions += sum(1 for d in decisions if d.action == "run")
        return self._jobs(fired)

    def due(self, now: float) -> list[Job]:
        return self._jobs(self.engine.tick(now))

    def redrive_dead(self, now: float) -> list[Job]:
        """An operator redrives every dead letter (``scoperouter deadletters redrive``)."""
        if self.engine.loop is None:
            return []
        ids = [e.trigger_id for e in self.engine.loop.ledger.dead_letters()]
        return self._jobs(self.engine.redrive(ids, now))

    def next_deadline(self) -> float | None:
        return self.engine.next_deadline()

    def completed(self, job: Job, rows: int, changed: int, duration_s: float) -> None:
        """What the processor reports after the run (the SDK's completion report)."""
        if self.log is not None:
            for day in job.dates:
                self.log.record_completion(
                    job.processor,
                    day,
                    trigger_id=job.run_id,
                    records_processed=rows,
                    entities_changed=changed,
                    duration_s=duration_s,
                )

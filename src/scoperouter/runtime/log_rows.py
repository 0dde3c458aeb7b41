"""What the event loop hands to the log thread, and how it becomes execution-log rows.

Invariant: no queue and no thread here -- the record types handed over, their conversion to
the rows the log takes (latency in ms, the time as epoch seconds), and the writes of those
rows, on whichever thread calls them; :func:`record_outcomes` logs a failing write and never
raises (a failed batch of dispatch outcomes is retried one by one: the good ones are kept).
A completion event naming a trigger has its status kept for that trigger, whatever its
record_count (:func:`record_completion`): what a backfill's run waits for.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime

from scoperouter.execution_log.api import ExecutionLog
from scoperouter.execution_log.base import DispatchOutcome
from scoperouter.execution_log.completions import completion_from_event
from scoperouter.messages.models import Event, Trigger
from scoperouter.processor_registry.compiled import CompiledRegistry
from scoperouter.router.decisions import Decision

logger = logging.getLogger("scoperouter.runtime")

Decided = tuple[Event, Sequence[Decision], str | None, str | None]
"""(event, its decisions, the trigger id it reports completing, its JSON or None)."""
LogOutcome = tuple[Trigger, str, int, float, float, str | None]
"""(trigger, status, attempts, latency_s, now, error): one dispatch outcome handed over."""
OkRow = tuple[int, Trigger, bytes | None, int, float]
"""A delivered row as the dispatcher holds it: (row id, trigger, body, attempts before,
created)."""


def ok_latencies(rows: Sequence[OkRow], now: float) -> list[float]:
    """Seconds from each row's trigger firing (else its row's creation) to ``now``, >= 0.
    A delivery's rows mostly share their ``fired_at``: a run of equal ones is converted to a
    timestamp once (~0.2 us a row saved)."""
    out: list[float] = []
    last: datetime | None = None
    fired_ts = 0.0
    for r in rows:
        fired = r[1].fired_at
        if fired is None:
            latency = now - r[4]
        else:
            if fired != last:  # equal datetimes: the same timestamp
                last, fired_ts = fired, fired.timestamp()
            latency = now - fired_ts
        out.append(latency if latency > 0.0 else 0.0)
    return out


class OkRows:
    """One successful delivery handed over as the dispatcher's rows: the log thread, not
    the event loop, builds each row's outcome (status ``ok``)."""

    __slots__ = ("now", "rows")

    def __init__(self, rows: Sequence[OkRow], now: float) -> None:
        self.rows = rows
        self.now = now

    def outcomes(self) -> list[DispatchOutcome]:
        """Each row's outcome as the log takes it (latency in ms, the time as epoch s)."""
        now, rows = float(self.now), self.rows
        return [
            (r[1], "ok", r[3] + 1, latency * 1000.0, now, None)
            for r, latency in zip(rows, ok_latencies(rows, now), strict=True)
        ]


def as_logged(outcomes: list[LogOutcome]) -> list[DispatchOutcome]:
    """Handed-over outcomes as the log takes them (latency in ms, the time as epoch s)."""
    return [  # the time as epoch seconds: formatted without a datetime
        (trigger, status, attempts, latency_s * 1000.0, float(now), error)
        for trigger, status, attempts, latency_s, now, error in outcomes
    ]


def record_outcomes(log: ExecutionLog | None, rows: list[DispatchOutcome]) -> None:
    """Write outcomes as the log takes them (:func:`as_logged`, :meth:`OkRows.outcomes`)."""
    if log is None:
        return
    many = getattr(log, "record_dispatches", None)
    if many is not None:
        try:
            many(rows)
            return
        except Exception:  # one by one below: the good ones are kept (ids dedupe)
            logger.exception("execution log: record_dispatches failed")
    for trigger, status, attempts, latency_ms, at, error in rows:
        try:
            log.record_dispatch(
                trigger,
                status=status,
                attempts=attempts,
                latency_ms=latency_ms,
                dispatched_at=datetime.fromtimestamp(at, UTC) if isinstance(at, float) else at,
                error=error,
            )
        except Exception:
            logger.exception("execution log: record_dispatch failed")


def record_trigger_report(log: ExecutionLog, trigger_id: str, status: str, event_id: str) -> None:
    """The status a completion (an event or a bare report) gives the run of ``trigger_id``,
    for a log that keeps such reports (the SQLite log's ``record_trigger_report``; others
    keep none)."""
    report = getattr(log, "record_trigger_report", None)
    if report is not None:
        report(trigger_id, status, event_id=event_id)


def record_completion(
    log: ExecutionLog, registry: CompiledRegistry, ev: Event, trigger_id: str | None
) -> None:
    """What an accepted event reports of a run: with a trigger id (the push attribute
    ``trigger_id``), its status for that trigger, whatever its record_count (a log that
    keeps such reports: the SQLite log); and a completion row when it is a processor's
    successful completion with a ``record_count`` (:func:`completion_from_event`)."""
    if trigger_id is not None:
        record_trigger_report(log, trigger_id, ev.status, ev.event_id)
        if ev.record_count is None:
            return
    rep = completion_from_event(registry, ev)
    if rep is None:
        return
    log.record_completion(
        rep.processor,
        rep.game_date,
        trigger_id=trigger_id,
        records_processed=rep.records_processed,
        entities_changed=rep.entities_changed,
        duration_s=0.0,  # unknown: not counted towards the measured seconds per entity
    )

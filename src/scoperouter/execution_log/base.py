"""What every execution-log writer shares: building the rows (:mod:`.rows`) and remembering,
from the decision rows, what a later dispatch row needs (the processor's phase and
granularity, the entity universe of its date). Subclasses only store the rows.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from scoperouter.execution_log.entity_counts import UniverseCache
from scoperouter.execution_log.memos import day_iso
from scoperouter.execution_log.row_values import iso, skips_text, utc
from scoperouter.execution_log.rows import (
    DECISION_COLUMNS,
    LOG_COLUMNS,
    IdList,
    Values,
    completion_row,
    decision_rows,
    dispatch_row,
    event_row,
)
from scoperouter.messages.models import Event, Trigger
from scoperouter.processor_registry.compiled import CompiledRegistry
from scoperouter.processor_registry.relations import RelationStore
from scoperouter.router.decisions import Decision

DispatchOutcome = tuple[Trigger, str, int, float | None, datetime | float, str | None]
"""(trigger, status, attempts, latency_ms, dispatched_at, error): one dispatch outcome
(``dispatched_at`` a datetime or epoch seconds)."""

_ID, _PROC, _DATE, _ACTION, _UNIVERSE = (
    LOG_COLUMNS.index(c)
    for c in ("decision_id", "processor", "game_date", "action", "entities_universe")
)
assert tuple(
    DECISION_COLUMNS.index(c)
    for c in ("decision_id", "processor", "game_date", "action", "entities_universe")
) == (_ID, _PROC, _DATE, _ACTION, _UNIVERSE)  # the same in narrow decision rows


_MISSING: Any = object()


class PendingOutcome:
    """One dispatch outcome with what its row needs from the writer (phase, granularity,
    universe, the trigger's date as ISO text), its row not built yet (:meth:`row`)."""

    __slots__ = (
        "attempts",
        "day",
        "dispatched_at",
        "error",
        "granularity",
        "latency_ms",
        "phase",
        "status",
        "trigger",
        "universe",
    )

    def __init__(
        self,
        trigger: Trigger,
        status: str,
        attempts: int,
        latency_ms: float | None,
        dispatched_at: datetime | float,
        error: str | None,
        phase: int | None,
        granularity: str | None,
        universe: int | None,
        day: str,
    ) -> None:
        self.trigger = trigger
        self.status = status
        self.attempts = attempts
        self.latency_ms = latency_ms
        self.dispatched_at = dispatched_at
        self.error = error
        self.phase = phase
        self.granularity = granularity
        self.universe = universe
        self.day = day

    def row(self, ids: IdList) -> Values:
        """Its dispatch row (:func:`~.rows.dispatch_row`)."""
        return dispatch_row(
            self.trigger,
            status=self.status,
            attempts=self.attempts,
            latency_ms=self.latency_ms,
            dispatched_at=self.dispatched_at,
            error=self.error,
            phase=self.phase,
            granularity=self.granularity,
            universe=self.universe,
            ids=ids,
            game_date_iso=self.day,
        )


class RowExecutionLog(ABC):
    """An :class:`~scoperouter.execution_log.api.ExecutionLog` that builds rows (tuples in
    column order, id lists encoded by :attr:`_ids`) and hands them to
    :meth:`_store_decisions` / :meth:`_store_dispatch` / :meth:`_store_completion` (called
    with ``_lock`` held, then :meth:`_maybe_flush`)."""

    _narrow_decisions = False
    """True: :meth:`_store_decisions` gets decision rows in ``DECISION_COLUMNS`` order
    (:func:`~.rows.decision_rows` ``narrow``), else in ``LOG_COLUMNS`` order."""

    @staticmethod
    def _ids(ids: Sequence[str]) -> Any:
        """How this writer stores a list of ids (a list; SQLite: JSON text)."""
        return list(ids)

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._procinfo: dict[str, tuple[int, str]] = {}
        self._procinfo_of: CompiledRegistry | None = None
        self._ucache = UniverseCache()
        self._universe: dict[tuple[str, str], int | None] = {}

    # ------------------------------------------------------------------ recording
    def record_modes(self, modes: Mapping[str, str], at: datetime | None = None) -> bool:
        """Keep each processor's effective mode (``live`` / ``shadow``), as the daemon
        runs them from now (``serve --shadow`` included), replacing the modes kept before;
        ``report`` reads them for a processor without runs. Returns whether this log keeps
        them: only the SQLite log does (its ``scoperouter_meta`` table); the BigQuery log has
        no such table, so a report of it says ``unknown`` for a processor without runs."""
        return False

    def record_demo(self, info: Mapping[str, Any]) -> bool:
        """Keep which demo wrote this log (:data:`~.api.DEMO_KEY`: seed, game date,
        registry), so ``report`` can rebuild its registry and relation data without
        ``--config``. Returns whether this log keeps it: only the SQLite log does."""
        return False

    def record_decisions(
        self,
        event: Event,
        decisions: Sequence[Decision],
        decided_at: datetime,
        *,
        registry: CompiledRegistry,
        relations: RelationStore | None = None,
        as_of: date | None = None,
    ) -> list[str]:
        return self.record_batch(
            [(event, decisions, None)],
            decided_at,
            registry=registry,
            relations=relations,
            as_of=as_of,
        )

    def record_batch(
        self,
        items: Sequence[tuple[Event, Sequence[Decision], str | None]],
        decided_at: datetime,
        *,
        registry: CompiledRegistry,
        relations: RelationStore | None = None,
        as_of: date | None = None,
    ) -> list[str]:
        """:meth:`record_decisions` for a whole ingest batch at once (one lock, one flush
        check): ``(event, decisions, event_json or None)`` per event, all decided at
        ``decided_at``. Returns the decision ids of the rows written."""
        built = []
        at = iso(decided_at)  # once per batch
        as_of_iso = day_iso(as_of or utc(decided_at).date())
        ids_of, ucache, narrow = self._ids, self._ucache, self._narrow_decisions
        for event, decisions, ev_json in items:
            reasons: list[str] = []
            rows = decision_rows(
                event,
                decisions,
                decided_at,
                registry=registry,
                relations=relations,
                universe_cache=ucache,
                decided_at_iso=at,
                ids=ids_of,
                skip_reasons=reasons,
                narrow=narrow,
            )
            ev = event_row(
                event, decided_at, as_of, skips_text(decisions, reasons), ev_json, at, as_of_iso
            )
            built.append((ev, rows))
        ids: list[str] = []
        with self._lock:
            if self._procinfo_of is not registry:
                self._procinfo_of = registry
                for name, p in registry.processors.items():
                    self._procinfo[name] = (p.phase, p.granularity)
            universe = self._universe
            for ev, rows in built:
                for r in rows:
                    if r[_ACTION] == "run" and r[_DATE] is not None:
                        universe[(r[_PROC], r[_DATE])] = r[_UNIVERSE]
                    ids.append(r[_ID])
                self._store_decisions(ev, rows)
            self._maybe_flush()
        return ids

    def record_dispatch(
        self,
        trigger: Trigger,
        *,
        status: str,
        attempts: int,
        latency_ms: float | None,
        dispatched_at: datetime,
        error: str | None = None,
    ) -> None:
        self.record_dispatches([(trigger, status, attempts, latency_ms, dispatched_at, error)])

    def record_dispatches(self, outcomes: Sequence[DispatchOutcome]) -> None:
        """:meth:`record_dispatch` for several outcomes at once (one lock, one flush check):
        ``(trigger, status, attempts, latency_ms, dispatched_at, error)`` each."""
        with self._lock:
            procinfo, universe = self._procinfo, self._universe
            store, unknown = self._store_outcome, (None, None)
            last_day, day = None, ""  # a delivery's triggers share their date
            for trigger, status, attempts, latency_ms, dispatched_at, error in outcomes:
                proc = trigger.processor
                phase, gran = procinfo.get(proc, unknown)
                if trigger.game_date != last_day:
                    last_day = trigger.game_date
                    day = day_iso(last_day)
                key = (proc, day)
                n = universe.get(key, _MISSING)
                # not complete e.g. after a restart: another process logged the decision rows
                store(
                    PendingOutcome(
                        trigger,
                        status,
                        attempts,
                        latency_ms,
                        dispatched_at,
                        error,
                        phase,
                        gran,
                        None if n is _MISSING else n,
                        day,
                    ),
                    n is not _MISSING and phase is not None,
                )
            self._maybe_flush()

    def record_completion(
        self,
        processor: str,
        game_date: date,
        *,
        trigger_id: str | None,
        records_processed: int,
        entities_changed: int | None,
        duration_s: float,
    ) -> None:
        row = completion_row(
            processor,
            game_date,
            trigger_id=trigger_id,
            records_processed=records_processed,
            entities_changed=entities_changed,
            duration_s=duration_s,
        )
        with self._lock:
            self._store_completion(row)
            self._maybe_flush()

    # ------------------------------------------------------------------ storage
    @abstractmethod
    def _store_decisions(self, event: Values, rows: list[Values]) -> None:
        """Keep one event row and its decision rows (see :attr:`_narrow_decisions`)."""

    def _store_outcome(self, o: PendingOutcome, complete: bool) -> None:
        """Keep one dispatch outcome (``complete``: see :meth:`_store_dispatch`); by default
        its row, built now."""
        self._store_dispatch(o.trigger, o.row(self._ids), complete=complete)

    @abstractmethod
    def _store_dispatch(self, trigger: Trigger, row: Values, *, complete: bool) -> None:
        """Keep one dispatch row. ``complete`` is false when phase, granularity or universe
        were unknown here (no decision row of this processor and date was logged by us)."""

    @abstractmethod
    def _store_completion(self, row: Values) -> None:
        """Keep one completion row."""

    @abstractmethod
    def _maybe_flush(self) -> None:
        """Flush when the buffers say so (after every ``_store_*``)."""

    @abstractmethod
    def flush(self) -> None:
        """Write everything buffered."""

    @abstractmethod
    def close(self) -> None:
        """Flush and release resources. Idempotent."""

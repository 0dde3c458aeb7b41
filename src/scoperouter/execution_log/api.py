"""The execution log API (SPEC section 5): what the daemon, replay and demo call.

Every decision and every dispatch outcome becomes a row of ``pipeline_execution_log``;
the normalised event behind the decisions goes to an ``events`` table (so ``report
--what-if`` can re-plan it) and processors' own completion reports go to a
``completions`` table (so waste is measured, not guessed). The SQLite log also keeps the
status each run reported, by trigger id (:data:`TRIGGER_REPORTS_TABLE`: what a backfill
with completion "event" waits for). See ``docs/report.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Protocol, runtime_checkable

from scoperouter.execution_log.base import RowExecutionLog
from scoperouter.execution_log.rows import Values
from scoperouter.messages.models import Event, Trigger
from scoperouter.processor_registry.compiled import CompiledRegistry
from scoperouter.processor_registry.relations import RelationStore
from scoperouter.router.decisions import Decision

DEFAULT_LOG_PATH = Path(".scoperouter") / "execution_log.sqlite"
"""Where ``serve``, ``demo`` and ``report`` read/write the log unless told otherwise."""

LOG_TABLE = "pipeline_execution_log"
EVENTS_TABLE = "pipeline_execution_events"
COMPLETIONS_TABLE = "pipeline_execution_completions"
TRIGGER_REPORTS_TABLE = "pipeline_execution_trigger_reports"
"""SQLite only: the status (success, partial, no_data, failed) the completion event naming a
trigger reported, whatever its record_count
(:meth:`.sqlite.SqliteExecutionLog.record_trigger_report`)."""

MODES_KEY = "processor_modes"
"""SQLite only: the ``scoperouter_meta`` key of each processor's effective mode, kept by
the daemon at its start (:meth:`.base.RowExecutionLog.record_modes`)."""

DEMO_KEY = "demo"
"""SQLite only: the ``scoperouter_meta`` key of the demo that wrote the log
(:meth:`.base.RowExecutionLog.record_demo`): ``{"seed", "game_date", "routes"}``, ``routes``
the registry's absolute path, null for the one shipped with the package."""

# dispatch_status values that mean the trigger did not reach its target (final outcome)
FAILED_STATUSES = frozenset({"failed", "dead_letter", "dead_lettered", "error", "rejected"})


@runtime_checkable
class ExecutionLog(Protocol):
    """Append-only log of routing decisions, dispatch outcomes and processor completions.

    Writers batch internally; call :meth:`flush` at checkpoints and :meth:`close` at
    shutdown. All times are timezone-aware UTC datetimes (naive ones are taken as UTC).
    """

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
        """Log one event and its decisions (one row per decision per date; a skip is one
        row). ``as_of`` is the planner's as-of date (default: ``decided_at``'s date), kept
        so ``report --what-if`` re-plans exactly. Returns the decision ids."""
        ...

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
        """Log one dispatch outcome of a fired trigger (``status`` e.g. ``ok``, ``retry``,
        ``dead_letter``) and link the decisions that caused it to ``trigger_id``."""
        ...

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
        """Log what a processor reported after a run (SDK): rows processed, how many
        entities actually changed, and how long it took."""
        ...

    def flush(self) -> None:
        """Write everything buffered."""
        ...

    def close(self) -> None:
        """Flush and release resources. Idempotent."""
        ...


class NullExecutionLog(RowExecutionLog):
    """Discards everything (``serve --no-log``, unit tests of other components). It builds
    the rows like the real logs, so the decision ids it returns are theirs."""

    def _store_decisions(self, event: Values, rows: list[Values]) -> None:
        return None

    def _store_dispatch(self, trigger: Trigger, row: Values, *, complete: bool) -> None:
        return None

    def _store_completion(self, row: Values) -> None:
        return None

    def _maybe_flush(self) -> None:
        return None

    def flush(self) -> None:
        return None

    def close(self) -> None:
        return None

"""Run a backfill through the real targets: one date-scope trigger with
``reason: backfill`` per run, sent through the processor's sink (routes.yaml ``target``),
then wait for its completion, by trigger id: in the daemon's execution log
(:func:`log_completions`), or on replicas in the shared state store's completion ledger
(:meth:`scoperouter.backfill.shared_claim.SharedClaims.completion`), where any replica
that received the completion recorded it.

Invariants: a run ends with the status its completion reported -- ``success``,
``partial`` and ``no_data`` done, ``failed`` failed at once (the attempt's error names it)
-- whatever its record_count, or fails after ``timeout_s`` without one; the trigger id is
derived from (backfill id, processor, date, attempt), so a redelivered trigger (a sink's
retry of one send, Pub/Sub's redelivery) is the same id (targets may dedupe on it) and each
attempt is distinct -- across invocations too: the runner numbers a resumed run's attempts
on from the stored count (:mod:`scoperouter.backfill.schedule`), so a run re-sent after a
failure, a stop or a crash is a new trigger, never answered by an earlier attempt's report
nor dropped by a target that saw the earlier id; the executor only sends and polls -- how a target maps ``reason: backfill`` to production's
``backfill_mode`` / ``skip_downstream_trigger`` (main_analytics_service.py:1175,
:1239; analytics_base.py:1567) is the target's ``mapping`` (docs/backfill.md). A run is
sent by the mode of its first attempt, stored by the runner (``execute(..., mode=)``):
``shadow`` sends nothing (done, ``skipped: shadow``), ``live`` sends it to its processor's
target even when the processor is in shadow mode now -- a target built then
(``build_sink``) when this executor has none for it.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

from scoperouter.backfill.executor import BACKFILL_REASON, RunOutcome
from scoperouter.errors import DispatchError
from scoperouter.execution_log.api import COMPLETIONS_TABLE, TRIGGER_REPORTS_TABLE
from scoperouter.messages.models import BACKFILL_TRIGGER_PREFIX, Trigger
from scoperouter.processor_registry.compiled import CompiledRegistry
from scoperouter.runtime.sinks import Sink

logger = logging.getLogger("scoperouter.backfill")

# trigger id -> its completion's status ("success", "partial", "no_data", "failed") once
# its completion is known, else None; may block (a file, a database): called off the event
# loop. An exception is a failed lookup, asked again at the next poll
CompletionLookup = Callable[[str], str | None]

_REPORTED = f"SELECT status FROM {TRIGGER_REPORTS_TABLE} WHERE trigger_id = ?"
_COMPLETED = f"SELECT 1 FROM {COMPLETIONS_TABLE} WHERE trigger_id = ? LIMIT 1"


_LOOKUP_THREADS: ThreadPoolExecutor | None = None
_LOOKUP_THREADS_LOCK = threading.Lock()


def _lookup_threads() -> ThreadPoolExecutor:
    """The threads completion lookups run on: two, shared by every executor of the process,
    so lookups stuck on an unreachable database hold these, never the event loop's default
    threads, which the daemon's other work (relation reloads, its shutdown) needs."""
    global _LOOKUP_THREADS
    with _LOOKUP_THREADS_LOCK:
        if _LOOKUP_THREADS is None:
            _LOOKUP_THREADS = ThreadPoolExecutor(2, thread_name_prefix="scoperouter-lookup")
        return _LOOKUP_THREADS


def log_completions(path: Path) -> CompletionLookup:
    """Completions the daemon records in its SQLite execution log: a completion event that
    carries the trigger id (push attribute ``trigger_id``) has its status kept for that id,
    whatever its record_count (the trigger reports table: runtime/log_rows.py
    ``record_completion``). A log written before that table (or a completion row recorded
    with the trigger id and no report) answers ``success`` for a completion row naming the
    id, as before. The trigger ledger of issue 11 can replace this lookup without touching
    the executor."""

    def lookup(trigger_id: str) -> str | None:
        if not path.exists():
            return None
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            try:
                reported = db.execute(_REPORTED, (trigger_id,)).fetchone()
            except sqlite3.OperationalError:  # a log from before the trigger reports
                reported = None
            if reported is not None:
                return str(reported[0])
            row = db.execute(_COMPLETED, (trigger_id,)).fetchone()
        except sqlite3.OperationalError:
            return None
        finally:
            db.close()
        return "success" if row else None

    return lookup


def backfill_trigger(
    backfill_id: str, processor: str, day: date, attempt: int, *, date_field: str = "game_date"
) -> Trigger:
    """The trigger of attempt ``attempt`` of the run (``processor``, ``day``) of backfill
    ``backfill_id``: the same four, the same id; another attempt, another id. Attempts are
    numbered across invocations (module docstring). The hash input is not the one of the
    numbering that restarted at 1 on every resume (``backfill|...|N``): an attempt numbered
    N by that code and one numbered N now are different triggers, never taken for each
    other by a target or by the completion lookup."""
    tid = hashlib.sha256(
        f"backfill-attempt|{backfill_id}|{processor}|{day.isoformat()}|{attempt}".encode()
    ).hexdigest()[:24]
    return Trigger(
        trigger_id=f"{BACKFILL_TRIGGER_PREFIX}{tid}",
        processor=processor,
        game_date=day,
        start_date=day,
        end_date=day,
        scope="date",
        reason=BACKFILL_REASON,
        caused_by=(f"backfill-{backfill_id}",),
        correlation_id=f"backfill-{backfill_id}",
        date_field=date_field,
    )


def shadow_processors(registry: CompiledRegistry) -> frozenset[str]:
    """Processors whose routes.yaml ``mode`` (or the default's) is shadow."""
    return frozenset(n for n, p in registry.processors.items() if p.mode == "shadow")


class TargetExecutor:
    """``sinks[processor].send(trigger)``, then poll ``completion(trigger_id)`` (off the
    event loop, :func:`_lookup_threads`)
    until a report arrives (``failed``: a failed attempt at once, ``completion state
    failed``) or ``timeout_s`` passes (a failed attempt; a lookup that fails -- the shared
    store unreachable -- is logged once and asked again at the next poll, its error named
    in the attempt's if the time runs out)."""

    def __init__(
        self,
        sinks: dict[str, Sink],
        completion: CompletionLookup,
        *,
        date_field: str = "game_date",
        poll_s: float = 2.0,
        timeout_s: float = 3600.0,
        ack_is_completion: bool = False,
        shadow: frozenset[str] = frozenset(),
        build_sink: Callable[[str], Sink] | None = None,
    ) -> None:
        self.sinks = sinks
        self.completion = completion
        self.date_field = date_field
        self.poll_s = poll_s
        self.timeout_s = timeout_s
        # synchronous targets (production's /process-date-range runs the processors before
        # it answers: main_analytics_service.py:1256-1300): a delivered trigger is a finished run
        self.ack_is_completion = ack_is_completion
        # processors in shadow mode (routes.yaml ``mode: shadow``): production still runs
        # them, so a backfill plans and reports them but sends them nothing -- the runs
        # first attempted now; a run first sent live is still sent (execute's mode)
        self.shadow = shadow
        # the target of a processor without a sink here (shadow now: the daemon built it
        # none), for its runs first sent live; None: such a run fails "no target"
        self.build_sink = build_sink

    def mode_now(self, processor: str) -> str:
        """``shadow`` for a processor in :attr:`shadow`, else ``live``."""
        return "shadow" if processor in self.shadow else "live"

    async def execute(
        self, processor: str, day: date, *, backfill_id: str, attempt: int, mode: str | None = None
    ) -> RunOutcome:
        if (mode or self.mode_now(processor)) == "shadow":
            return RunOutcome(True, rows=0, skipped="shadow")
        trig = backfill_trigger(backfill_id, processor, day, attempt, date_field=self.date_field)
        sink = self.sinks.get(processor) or self._late_sink(processor)
        if sink is None:
            return RunOutcome(False, error=f"no target for {processor!r}")
        t0 = time.monotonic()
        try:
            await sink.send(trig, message_id=trig.trigger_id)
        except DispatchError as exc:
            return RunOutcome(False, error=f"dispatch: {exc}"[:500])
        if self.ack_is_completion:
            return RunOutcome(True, seconds=time.monotonic() - t0)
        failing: str | None = None  # the last lookup's error while the lookups fail
        while time.monotonic() - t0 < self.timeout_s:
            try:
                state = await asyncio.get_running_loop().run_in_executor(
                    _lookup_threads(), self.completion, trig.trigger_id
                )
            except Exception as exc:
                if failing is None:
                    logger.warning(
                        "backfill run %s@%s: cannot look its completion up (%s: %s); asking "
                        "again every %gs",
                        processor,
                        day.isoformat(),
                        type(exc).__name__,
                        str(exc)[:300],
                        self.poll_s,
                        extra={"backfill_id": backfill_id, "trigger_id": trig.trigger_id},
                    )
                failing, state = f"{type(exc).__name__}: {exc}"[:300], None
            else:
                failing = None
            if state is not None:
                secs = time.monotonic() - t0
                if state in ("success", "partial", "no_data"):
                    return RunOutcome(True, rows=None, seconds=secs)
                return RunOutcome(False, seconds=secs, error=f"completion state {state}")
            await asyncio.sleep(self.poll_s)
        why = f"no completion within {self.timeout_s:g}s"
        if failing is not None:
            why += f" (its lookup failing: {failing})"
        return RunOutcome(False, error=why[:500])

    def _late_sink(self, processor: str) -> Sink | None:
        """The target of ``processor``, built now by :attr:`build_sink` (once), for a run
        first sent live of a processor given no sink (in shadow mode now)."""
        if self.build_sink is None:
            return None
        try:
            sink = self.build_sink(processor)
        except Exception:
            logger.exception("could not build the target of %s", processor)
            return None
        self.sinks[processor] = sink
        logger.info(
            "%s is in shadow mode, but backfill runs first sent live are retried: its target "
            "is built to send them",
            processor,
            extra={"processor": processor, "mode": "live"},
        )
        return sink

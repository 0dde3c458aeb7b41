"""The router's intake on the event loop: :meth:`RouterIntake.submit` and
:meth:`RouterIntake.enqueue` queue a message, the ingest worker runs batches of them in one
state transaction each, and answers them (a mixin of :class:`~scoperouter.runtime.router.Router`).

Invariant: a message is answered exactly once, and ``ack`` only after the transaction that
recorded it (seen-id, windows, fired triggers in the outbox) committed; a failed transaction
answers its batch ``unavailable`` (the source redelivers) and puts its marks back; committed
triggers reach the dispatcher only after the commit. The one message answered before any
transaction: a bare completion report (no source) of a backfill run, whose status goes to
the execution log, what the backfill's executor waits for (:meth:`RouterIntake._take_report`)
-- except on a shared state store (replicas), where it is queued and recorded in the
store's completion ledger by its batch's transaction before it is answered, as the
completion events of backfill runs are (a run's completion may reach any replica; the
replica running the backfill reads the ledger).
"""

from __future__ import annotations

import asyncio
import sqlite3
import time

from scoperouter.errors import EventError, StoreBusy
from scoperouter.messages.models import Event
from scoperouter.messages.push import message_key
from scoperouter.router.completion_ref import completion_ref, is_report_only
from scoperouter.runtime import intake
from scoperouter.runtime.batch_counts import count_committed, count_received
from scoperouter.runtime.ingest import BareReport, BatchResult, Item, process_batch
from scoperouter.runtime.intake import (
    Settle,
    backfill_completion,
    names_backfill_run,
    parse_inbound,
    take_lingering,
)
from scoperouter.runtime.loop_runtime import is_report, raw_of
from scoperouter.runtime.marks import Mark, write_marks
from scoperouter.runtime.metrics import observe_n
from scoperouter.runtime.outcomes import Inbound, Outcome
from scoperouter.runtime.router_core import RouterCore
from scoperouter.runtime.router_parts import is_heavy

_SQLITE_BUSY = (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def lock_wait(exc: BaseException) -> bool:
    """Whether a failed ingest transaction waited out a lock another session held: the
    PostgreSQL store's :class:`StoreBusy`, or SQLite's busy timeout on a state file another
    process writes (``database is locked``) -- counted as ``lock_timeout``, not
    ``store_error``."""
    if isinstance(exc, StoreBusy):
        return True
    return isinstance(exc, sqlite3.OperationalError) and (
        getattr(exc, "sqlite_errorcode", None) in _SQLITE_BUSY
    )


class RouterIntake(RouterCore):
    """Submission, the ingest worker and its batch transactions."""

    # ------------------------------------------------------------------ intake
    async def submit(self, inbound: Inbound) -> Outcome:
        """Route one message; returns once it is durably handled (see :class:`Outcome`)."""
        fut: asyncio.Future[Outcome] = self._running_loop().create_future()
        refused = self.enqueue(inbound, fut)
        # no shield: a cancelled caller cancels only its own future; the queued item is
        # still committed (its answer is dropped: ``fut.done()``)
        return refused if refused is not None else await fut

    def enqueue(self, inbound: Inbound, settle: Settle) -> Outcome | None:
        """Queue one message without waiting: ``settle`` gets what :meth:`submit` would
        return, once, after its batch commits (or fails). Returns the answer instead (and
        never touches ``settle``) when the message is refused at once (not ready, rejected)."""
        if not self._started or self._closing:
            # a failing store still takes submissions: each batch retries it (503 store_error
            # when it fails), and the first one that commits makes the router ready again
            return Outcome(
                "unavailable", reason="not_ready" if not self._closing else "shutting_down"
            )
        # received: counted per batch; ``event`` set: a source's fast path parsed it already
        ev = inbound.event
        if ev is not None:
            parsed: Event | EventError = ev
        else:
            unread: list[str] = []  # fields read as absent: counted (the normaliser logs them)
            parsed = parse_inbound(inbound, self.registry, unread)
            for key in unread:
                self.metrics.event_fields_ignored.labels(key).inc()
        if names_backfill_run(inbound.trigger_id):
            parsed = backfill_completion(parsed)
        if isinstance(parsed, EventError):  # (a bare report has no source: never an Event)
            report = self._backfill_report(inbound)
            if report is not None:
                return self._take_report(inbound, parsed, report, settle)
            if not self._closed_loop() and is_report(inbound):
                # a run's bare report (the SDK's report(): a run that changed nothing or
                # failed) with the closed loop off: nothing reads it -- accepted and counted,
                # never a dead letter or a 400 (every SDK processor reports every run)
                self.metrics.child(self.metrics.events_received, inbound.origin).inc()
                self.metrics.reports_unread.inc()
                return Outcome("accepted", parsed.event_id, "closed_loop_off")
        if (
            isinstance(parsed, EventError)
            and not inbound.dead_letter_on_reject
            and not (self._closed_loop() and is_report(inbound))  # a completion report
        ):
            self.metrics.child(self.metrics.events_received, inbound.origin).inc()
            self.metrics.events_rejected.labels(parsed.reason).inc()
            return Outcome("rejected", parsed.event_id, parsed.reason, parsed.detail)
        self._queue.put_nowait(Item(inbound, parsed, settle))
        self._unfinished += 1
        self._submitted += 1
        return None

    def _backfill_report(self, inbound: Inbound) -> BareReport | None:
        """What a bare completion report (no source: the SDK's
        ``CompletionPublisher.report``, when a run changed nothing or failed) naming a
        backfill run's trigger reports; None for any other message. Without it such a
        report was rejected as an event without a source, and the run waited out its
        timeout."""
        raw = raw_of(inbound)
        if raw is None or not is_report_only(raw):
            return None
        ref = completion_ref(raw, date_field=self.registry.date_field)
        tid = inbound.trigger_id or (ref.trigger_id if ref is not None else None)
        if ref is None or tid is None or not names_backfill_run(tid):
            return None
        mid = message_key(inbound.message_id, inbound.subscription)
        return BareReport(tid, ref.outcome, ref.event_id or mid or tid)

    def _take_report(
        self, inbound: Inbound, parsed: EventError, report: BareReport, settle: Settle
    ) -> Outcome | None:
        """A backfill run's bare report: its status handed to the execution log (what a
        backfill with completion "event" waits for on one daemon:
        ``backfill.daemon_executor.log_completions``), answered ``accepted`` at once -- like
        the log, not durable: a report lost in a crash makes the run time out and run
        again. On a shared store (:meth:`_ledger_reports`) it is queued instead (None): its
        batch's transaction records it in the completion ledger before it is answered."""
        self.log_bridge.trigger_report(report.trigger_id, report.status, report.event_id)
        if not self._ledger_reports():
            self.metrics.child(self.metrics.events_received, inbound.origin).inc()
            return Outcome("accepted", report.event_id)
        self._queue.put_nowait(Item(inbound, parsed, settle, report))
        self._unfinished += 1
        self._submitted += 1
        return None

    async def _ingest_worker(self) -> None:
        """Batches of light events, each followed by at most one heavy event (a long
        backfill) in a transaction of its own: a small event waits for one heavy event at
        most, never for a queue of them (issue 18), and heavy ones are never starved.
        After a failed transaction the next waits the store's backoff: a message nacked
        for it comes straight back (Pub/Sub redelivers at once), and retrying it at once
        spun on the failing store. The backoff grows with the worker's own consecutive
        failures: a store operation that succeeds in between (the window timer's poll)
        does not reset it."""
        heavy = self._heavy
        fails, failed = 0, False  # consecutive failed transactions; the last one failed
        while not self._stopping:  # (a stop waits for the batch in flight: see stop)
            if failed:
                failed = False
                backoff = self.health.retry_delay(fails)
                if backoff:
                    await asyncio.sleep(backoff)
            if self.log_bridge.full:  # backpressure: the execution log is behind
                await self.log_bridge.room()
            if not heavy or not self._queue.empty():
                o, q = self.options, self._queue
                if len(q) >= min(o.max_batch, intake.LINGER_BELOW):  # a batch already: no wait
                    items = [q.get_nowait() for _ in range(min(len(q), o.max_batch))]
                else:
                    items = await take_lingering(q, o.max_batch, o.ingest_linger_s)
                light: list[Item] = []
                for i in items:
                    ev = i.parsed
                    # dated without a range: never heavy (no call, no ABC isinstance on a
                    # pydantic model); a date beside a range runs the range too (is_heavy)
                    if ev.__class__ is Event and ev.game_date is not None and ev.start_date is None:
                        light.append(i)
                    else:
                        (heavy if is_heavy(i) else light).append(i)
                if light:
                    failed = not await self._run_batch(light)
                    fails = fails + 1 if failed else 0
            if heavy and not failed and not self._stopping:
                failed = not await self._run_batch([heavy.popleft()])
                fails = fails + 1 if failed else 0

    async def _run_batch(self, batch: list[Item]) -> bool:
        """One ingest transaction for ``batch``; answers every item's future. False when
        the transaction failed. Past the stop's drain deadline none starts: 503 / nack."""
        if self._stopping:
            self._unfinished -= len(batch)
            self._refuse(batch)
            return False
        count_received(self.metrics, batch)
        marks, t0 = self.marks.take(), time.perf_counter()
        self._in_batch = asyncio.current_task()
        try:
            result = await self._in_state(self._process_batch, batch, marks)
        except Exception as exc:
            busy = lock_wait(exc)
            self.metrics.ingest_failures.labels("lock_timeout" if busy else "store_error").inc()
            self.health.failed(
                "ingest transaction failed; messages will be retried by their source"
            )
            self.marks.put_back(marks)
            for item in batch:
                if not item.fut.done():
                    item.fut.set_result(Outcome("unavailable", reason="store_error"))
            # the engine may hold uncommitted changes
            await self._reload_windows()
            return False
        else:
            observe_n(self.metrics.ingest_seconds, time.perf_counter() - t0, 1)
            self.health.succeeded()
            self._apply_batch(batch, result)
            return True
        finally:
            self.marks.written(marks)  # (after a put_back: nothing left to forget)
            self._unfinished -= len(batch)
            self._in_batch = None

    def _refuse(self, items: list[Item]) -> None:
        """Answer ``items`` ``unavailable`` (shutting down): their sources nack / 503."""
        count_received(self.metrics, items)
        for item in items:
            if not item.fut.done():
                item.fut.set_result(Outcome("unavailable", reason="shutting_down"))

    def _process_batch(self, batch: list[Item], marks: list[Mark]) -> BatchResult:
        """State thread: one transaction for the batch (see :mod:`scoperouter.runtime.ingest`)."""
        return process_batch(
            batch,
            store=self.store,
            windows=self.windows,
            relations=self.relations,  # one consistent view for the batch
            as_of=self.options.as_of,
            now=self.clock(),
            write_marks=lambda: write_marks(
                self.store, marks, self.windows.alias, self.windows.undelivered
            ),
            letter_topic=self.letter_copies is not None,
        )

    def _apply_batch(self, batch: list[Item], res: BatchResult) -> None:
        """After the commit (event loop): count, ack, dispatch."""
        count_committed(self.metrics, len(batch), res)
        sources = self.registry.sources
        noted = res.noted if res.noted is not None else [d[0] for d in res.decided]
        for ev in noted:
            if ev.source not in sources:
                self.unknown_sources.observe(ev.source, ev.event_id)
            if ev.referenced_tables:
                self.undeclared_reads.observe(self.registry, ev)
        self.log_bridge.batch(res.decided, res.now_dt, res.as_of, res.relations)  # one hand-off
        for item, out in res.outcomes:
            if not item.fut.done():
                item.fut.set_result(out)
        self.dispatcher.fired(res.fired, res.other_modes)
        if res.waiting:
            self.dispatcher.rows_waiting(res.waiting)
        self.metrics.open_windows.set(self.open_window_count())
        self._loop_metrics()
        if res.letters_owed:  # stored with the records they owe the dead-letter topic
            self._copy_letters()
        self._window_wake.set()

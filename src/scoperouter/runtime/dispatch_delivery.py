"""One delivery of the dispatcher: rows of one lane started in one of its slots, sent
through the lane's sink (one call; several rows through a batching sink), each row's
outcome settled, the slot freed and refilled from the rows the lane holds (a base of
:class:`~scoperouter.runtime.dispatcher.Dispatcher`).

Invariant: a delivery takes exactly one slot of its lane (``busy``) and its rows stay
``inflight`` until it ends, however it ends (the slot and the rows are given back in a
``finally``); every row it carries gets exactly one outcome (a mark, through
:class:`~scoperouter.runtime.dispatch_outcomes.Outcomes`) unless the delivery is cancelled (a
stop) or dies of a bug (the supervisor's fatal error); a row left without one stays pending
in the store and is re-dispatched (at-least-once): unless the dispatcher is stopping (the
stop gives its leases back), such a row is given back at once (``Release``: a state store's
lease is freed, the lane pages it again), counted (``scoperouter_deliveries_unsettled_total``)
and logged (:meth:`Delivery._unsettled`). A
``CancelledError`` that a target raises while its delivery is not being cancelled (no stop,
no ``cancel()`` of the task: a client's own future cancelled elsewhere) is a send failure
like any other (retryable, counted, logged), not a cancellation. On a state store a queued
row starts only while this replica's lease on it is confirmed
(:mod:`scoperouter.runtime.leases`), and so does a row fired here; one that is not leaves
the lane (is not started), counted and logged, and waits in the store. A delivery carries
rows of one dispatch mode, the one each row fired in (:mod:`scoperouter.runtime.modes`): a
shadow row is marked done without a sink, a live row goes to its processor's own target,
also when the processor is in shadow mode now (its target built then:
:meth:`Delivery._late_sink`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable, Collection
from typing import Any

from scoperouter.errors import DispatchError
from scoperouter.messages.models import Trigger
from scoperouter.runtime.breaker import Start
from scoperouter.runtime.dispatch_outcomes import ROW_ID, Outcomes, Row
from scoperouter.runtime.lanes import Lane
from scoperouter.runtime.leases import LeaseBook
from scoperouter.runtime.marks import Alias, Release
from scoperouter.runtime.modes import LIVE, SHADOW
from scoperouter.runtime.sinks import Sink

logger = logging.getLogger("scoperouter.runtime")


class Delivery(Outcomes):
    """The delivery half of the dispatcher (its ``__init__`` sets these attributes)."""

    record_aliases: bool
    _paging: bool
    _stopped: bool
    leases: LeaseBook | None  # a state store's leases held here (None: no leases)
    sinks: dict[str, Sink]
    # builds the target of a processor that fires in shadow now, for a row of it that
    # fired live (None: no such target, the row is dead-lettered "no target")
    build_sink: Callable[[str], Sink] | None

    def _start_rows(self, lane: Lane, rows: list[Row], mode: str) -> None:
        """One delivery (one slot of the lane) carrying ``rows`` (more than one: a
        batching sink, :func:`_batch_of`), all sent by ``mode`` (the mode they fired in)."""
        ids = list(map(ROW_ID, rows))
        lane.inflight.update(ids)
        if self._paging:
            lane.started.update(ids)
        lane.busy += 1
        start = lane.breaker.started()
        if len(rows) == 1:
            self._spawn(self._deliver(lane, *rows[0], start, mode))
        else:
            self._spawn(self._deliver_batch(lane, rows, start, mode))

    def _drain(self, lane: Lane) -> None:
        """Start paged rows while the lane has room (the breaker decides how much), one
        delivery carrying rows of one stored mode; a row whose lease this replica cannot
        confirm leaves the lane unstarted."""
        leases = self.leases
        refused: dict[str, list[int]] = {}
        now_mode = self.mode_of(lane.name)  # of the rows stored without a mode
        while not self._stopped and lane.buffer and lane.breaker.slots(self.clock(), lane.free) > 0:
            n = lane.batch if lane.breaker.state == "closed" else 1  # a probe carries one row
            rows: list[Row] = []
            mode = ""
            now = self.clock()
            while lane.buffer and len(rows) < n:
                r = lane.buffer.popleft()
                if r.row_id in lane.inflight:
                    continue
                m = r.mode or now_mode
                if m != mode:
                    if rows:  # the next delivery starts with it
                        lane.buffer.appendleft(r)
                        break
                    mode = m
                why = None if leases is None else leases.refusal(r.row_id, now)
                if why is not None:
                    refused.setdefault(why, []).append(r.row_id)
                    continue
                trig = r.trigger
                try:
                    if trig is None:
                        trig = self._read_row(r.row_id, r.body)
                except ValueError as exc:  # a row written by an incompatible version
                    logger.exception(
                        "pending trigger row %d does not parse; dead-lettered", r.row_id
                    )
                    self._unreadable(r.row_id, r.trigger_id, r.attempts, r.body, exc)
                    continue
                rows.append((r.row_id, trig, r.body.encode() or None, r.attempts, r.created_at))
            if rows:
                self._start_rows(lane, rows, mode)
        for why, ids in refused.items():
            self._dropped(lane, ids, why)

    def _dropped(self, lane: Lane, ids: Collection[int], why: str) -> None:
        """Rows of ``lane`` (queued, or fired here) left unstarted: this replica no longer
        holds (or cannot confirm) their lease; they wait in the store for its holder or a
        rescue."""
        if not ids:
            return
        if self.leases is not None:
            self.leases.forget(ids)
        self.metrics.child(self.metrics.leases_dropped, why).inc(len(ids))
        logger.warning(
            "%d triggers of %s not started here (%s): another replica sends them",
            len(ids),
            lane.name,
            why,
            extra={"processor": lane.name, "dropped": len(ids), "reason": why},
        )

    def _freed(self, lane: Lane) -> None:
        """A delivery of ``lane`` ended (its slot is free). The pump is woken only when it
        has something to do for the lane: rows due in the store (or due later: a retry
        deferred, its sleep shortens; or held by another transaction) or a breaker not
        closed. Else the delivery's own
        :meth:`_drain` starts what the lane buffers, and the pump sleeps on (one pump pass
        per delivery was most of its cost at 1000 events/s)."""
        if lane.has_due or lane.held or lane.next_due is not None or lane.breaker.state != "closed":
            self._wake.set()

    async def _deliver(
        self,
        lane: Lane,
        row_id: int,
        trigger: Trigger,
        body: bytes | None,
        attempts_before: int,
        created: float,
        start: Start,
        mode: str,
    ) -> None:
        try:
            await self._attempt(lane, row_id, trigger, body, attempts_before, created, start, mode)
        except BaseException as exc:  # no outcome: cancelled, or a bug (re-raised)
            self._unsettled(lane, [row_id], exc)
            raise
        finally:
            lane.inflight.discard(row_id)
            lane.busy -= 1
            lane.breaker.ended(start)
            self._freed(lane)
        self._drain(lane)  # the freed slot takes the next paged row (not when cancelled)

    def _cancelling(self) -> bool:
        """The delivery running now is being cancelled for real: the dispatcher stops, or
        its task was asked to (``cancel()``). Else a ``CancelledError`` its target raised is
        the target's own (a client's future cancelled elsewhere): a failed send."""
        if self._stopped:
            return True
        task = asyncio.current_task()
        return task is not None and task.cancelling() > 0

    def _unsettled(self, lane: Lane, ids: list[int], exc: BaseException) -> None:
        """A delivery of ``lane`` ended without an outcome for its rows ``ids`` (cancelled,
        not by a stop; or a bug, which the supervisor reports): the rows are given back to
        the store at once (``Release``: a state store frees their lease, which its lease
        keeper would otherwise renew for ever) and the lane pages them again. At a stop
        nothing here: the stop gives back every lease this replica holds."""
        if self._stopped:
            return
        for row_id in ids:
            self.marks.append(Release(row_id))
        self.metrics.child(self.metrics.deliveries_unsettled, lane.name).inc(len(ids))
        lane.rows_left()
        self._wake.set()
        logger.warning(
            "delivery of %d triggers of %s ended without an outcome (%s); given back to the "
            "store, they are sent again",
            len(ids),
            lane.name,
            type(exc).__name__,
            extra={"processor": lane.name, "released": len(ids), "reason": "unsettled",
                   "error": f"{type(exc).__name__}: {exc}"},
        )  # fmt: skip

    async def _attempt(
        self,
        lane: Lane,
        row_id: int,
        trigger: Trigger,
        body: bytes | None,
        attempts_before: int,
        created: float,
        start: Start,
        mode: str,
    ) -> None:
        """One delivery attempt by the row's ``mode``; its outcome is a mark (done, retry
        later, or dead)."""
        if mode == SHADOW:
            self._shadow(row_id, trigger)
            return
        sink = lane.sink if lane.sink is not None else self._late_sink(lane)
        m = self.metrics
        attempts = attempts_before + 1
        error: DispatchError | None = None
        sent_as: str | None = None  # the id the target gave the message (Pub/Sub's)
        m.inflight.inc()
        try:
            if sink is None:
                error = DispatchError(
                    trigger.processor, "<none>", "no target", retryable=False, local=True
                )
            else:
                try:
                    sent_as = await sink.send(
                        trigger, message_id=f"{trigger.trigger_id}-{row_id}", body=body
                    )
                except DispatchError as exc:
                    error = exc
                except asyncio.CancelledError as exc:
                    if self._cancelling():
                        raise
                    error = _target_cancelled(trigger.processor, sink.name, exc)
                except Exception as exc:
                    error = DispatchError.from_exception(trigger.processor, sink.name, exc)
        finally:
            m.inflight.dec()
        if error is None and self.record_aliases and isinstance(sent_as, str) and sent_as:
            # a processor reports its run naming the message it received
            # (trigger_message_id): the ledger maps that id to the trigger
            self.marks.append(Alias(trigger.trigger_id, sent_as, self.clock()))
        self._settle(lane, row_id, trigger, body, attempts, created, start, error)

    async def _deliver_batch(self, lane: Lane, rows: list[Row], start: Start, mode: str) -> None:
        """One delivery of several rows (of one ``mode``) through a batching sink (one
        call): each row's outcome is its own mark, as if each had been sent alone at the
        same time, and the breaker hears the call's answer once (the attempt and its
        bookkeeping in one coroutine: it runs once per ingest batch)."""
        try:
            first = rows[0][1]
            if mode == SHADOW:
                for row_id, t, *_rest in rows:
                    self._shadow(row_id, t)
            else:
                sink: Any = lane.sink  # a batching sink (_batch_of)
                m = self.metrics
                error: DispatchError | None = None
                m.inflight.inc(len(rows))
                try:
                    await sink.send_batch([(t, body) for _id, t, body, _a, _c in rows])
                except DispatchError as exc:
                    error = exc
                except asyncio.CancelledError as exc:
                    if self._cancelling():
                        raise
                    error = _target_cancelled(first.processor, sink.name, exc)
                except Exception as exc:
                    error = DispatchError.from_exception(first.processor, sink.name, exc)
                finally:
                    m.inflight.dec(len(rows))
                if error is None:
                    self._settle_ok(lane, rows)
                else:
                    self._heard(lane, start, error, self.clock())  # one call: one failure
                    for row_id, t, body, attempts_before, created in rows:
                        err = error
                        if err.trigger_id not in (None, t.trigger_id):
                            err = dataclasses.replace(err, trigger_id=t.trigger_id)  # its own
                        self._settle(lane, row_id, t, body, attempts_before + 1, created, None, err)
        except BaseException as exc:  # no outcome: cancelled, or a bug (re-raised)
            self._unsettled(lane, list(map(ROW_ID, rows)), exc)
            raise
        finally:
            for r in rows:
                lane.inflight.discard(r[0])
            lane.busy -= 1
            lane.breaker.ended(start)
            self._freed(lane)
        self._drain(lane)  # the freed slot takes the next paged rows (not when cancelled)

    def _late_sink(self, lane: Lane) -> Sink | None:
        """The target of a lane without one: a processor that fires in shadow now gets no
        sink at start (no client, no credentials; under ``serve --shadow`` no default
        target either); a row of it that fired live is still delivered, through its own
        target (the default one for a processor no longer in routes.yaml), built now by
        :attr:`build_sink` (once; None: none can be built, the row goes dead "no target")."""
        build = self.build_sink
        if build is None:
            return None
        try:
            sink = build(lane.name)
        except Exception:
            logger.exception("could not build the target of %s", lane.name)
            return None
        self.sinks[lane.name] = lane.sink = sink
        lane.batch = _batch_of(sink)
        logger.info(
            "%s is in shadow mode, but triggers it fired live wait: its target is built to "
            "deliver them",
            lane.name,
            extra={"processor": lane.name, "mode": LIVE},
        )
        return sink


def _target_cancelled(processor: str, target: str, exc: asyncio.CancelledError) -> DispatchError:
    """A ``CancelledError`` raised by ``target`` while its delivery was not being
    cancelled: a retryable failure of the send (the breaker hears it)."""
    why = f": {exc}" if str(exc) else ""
    return DispatchError(processor, target, f"CancelledError raised by the target, not a stop{why}")


def _batch_of(sink: Sink | None) -> int:
    """Rows one delivery to ``sink`` may carry: its ``batch_max`` when it has
    ``send_batch`` (the outbox: one write and one ``fdatasync`` for all), else 1."""
    if sink is None or not hasattr(sink, "send_batch"):
        return 1
    return max(1, int(getattr(sink, "batch_max", 1)))

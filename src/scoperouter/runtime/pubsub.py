"""Pub/Sub streaming-pull source (google-cloud-pubsub SubscriberClient, honours
PUBSUB_EMULATOR_HOST).

The client library calls back on its own consumer thread
(:class:`~scoperouter.runtime.pubsub_scheduler.InlineScheduler`: no thread pool); each
callback queues the message and wakes the event loop (``loop.call_soon_threadsafe``, once
per burst). The loop hands the burst to the router's ingest queue (:meth:`Router.enqueue`)
with one small :class:`_Pending` per message and no task or future: the router settles it
after the message's batch commits, and only then is the message acked -- when the outcome
says it is durably handled (accepted, duplicate, or dead-lettered); otherwise it is nacked
and Pub/Sub redelivers it. ``FlowControl`` bounds the messages held in memory.

The health half lives in :mod:`~scoperouter.runtime.pubsub_health` (the class's base,
:class:`~scoperouter.runtime.pubsub_health.PullHealth`). The subscription is checked at
start-up (:func:`~scoperouter.runtime.pubsub_health.check_subscription`: a missing or
forbidden subscription is a :class:`ConfigError`, exit 1). The streaming pull itself is
watched: when its future ends with an error (subscription deleted, permission revoked...)
the failure is logged at ERROR, :meth:`PubSubSource.readiness` reports it (``/readyz``
answers 503) and the source re-checks the subscription and resubscribes with exponential
backoff until it works again. An outage that does not end the pull (the client library
retries UNAVAILABLE inside it, so the future stays pending) is caught by a probe: every
``probe_interval_s`` the subscription is read with a short timeout, and while that fails
:meth:`PubSubSource.readiness` reports it too (issue 18: ``/readyz`` stayed 200 through a
40 s Pub/Sub outage).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import importlib
import logging
import time
from collections.abc import Callable
from typing import Any

from scoperouter.messages.push import attribute
from scoperouter.runtime import pubsub_health
from scoperouter.runtime.outcomes import fast_inbound
from scoperouter.runtime.pubsub_health import MAX_BACKOFF_S, MIN_BACKOFF_S, PullHealth
from scoperouter.runtime.pubsub_scheduler import InlineScheduler
from scoperouter.runtime.router import Inbound, Outcome, Router

logger = logging.getLogger("scoperouter.runtime.pubsub")


_PULLED = vars(Inbound("pubsub", dead_letter_on_reject=True))  # a pulled message's defaults


class _Pending:
    """One pulled message in the router's queue: the router answers it once
    (:class:`~scoperouter.runtime.intake.Settle`), after its batch commits or fails."""

    __slots__ = ("message", "settled", "source")

    def __init__(self, source: PubSubSource, message: Any) -> None:
        self.source = source
        self.message = message
        self.settled = False

    def done(self) -> bool:
        return self.settled

    def set_result(self, result: Outcome, /) -> None:
        self.settled = True
        self.source._settled(self.message, result)


class PubSubSource(PullHealth):
    def __init__(
        self,
        subscription: str,
        router: Router,
        *,
        max_messages: int = 1000,
        max_bytes: int = 100 * 1024 * 1024,
        min_backoff_s: float = MIN_BACKOFF_S,
        max_backoff_s: float = MAX_BACKOFF_S,
        check: Callable[[str], None] | None = None,
        probe_interval_s: float = 10.0,
        probe_timeout_s: float = 5.0,
        lease_extension_s: float = 0.0,
    ) -> None:
        """``check`` verifies the subscription before each resubscribe (default
        :func:`~scoperouter.runtime.pubsub_health.check_subscription`; raises on failure). ``lease_extension_s``: the ack
        deadline the client keeps renewing (0: the library's, 60 s) -- how long Pub/Sub
        waits before redelivering what a killed process held (replicas use 10 s)."""
        super().__init__(
            min_backoff_s=min_backoff_s,
            max_backoff_s=max_backoff_s,
            probe_interval_s=probe_interval_s,
            probe_timeout_s=probe_timeout_s,
        )
        self.subscription = subscription
        self.router = router
        self.max_messages = max_messages
        self.max_bytes = max_bytes
        self._check = check
        self.lease_extension_s = lease_extension_s
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: Any = None
        self._future: Any = None
        self._unsettled = 0  # in the router's queue, not answered yet
        self._all_settled: asyncio.Event | None = None  # set by stop() to wait for them
        self._inbox: collections.deque[Any] = collections.deque()  # from the client's threads
        self._wake_pending = False
        self._stopping = False

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = False
        self._client = pubsub_health.subscriber_client()
        self._subscribe()
        self.start_probe()

    def _subscribe(self) -> None:
        pubsub_v1: Any = importlib.import_module("google.cloud.pubsub_v1")

        flow = pubsub_v1.types.FlowControl(
            max_messages=self.max_messages,
            max_bytes=self.max_bytes,
            max_duration_per_lease_extension=int(self.lease_extension_s),
        )
        fut = self._client.subscribe(
            self.subscription,
            callback=self._callback,
            flow_control=flow,
            scheduler=InlineScheduler(),  # one per subscribe: a scheduler is not reusable
        )
        self._future = fut
        self._pull_started = time.monotonic()
        fut.add_done_callback(self._on_pull_done)
        logger.info("streaming pull started", extra={"subscription": self.subscription})

    def _callback(self, message: Any) -> None:  # the client's consumer thread
        """Queue the message; wake the loop only when no wake-up is pending (a burst of
        messages costs one loop wake-up, not one each)."""
        loop = self._loop
        if loop is None or loop.is_closed() or self._stopping:
            message.nack()  # stopping: Pub/Sub redelivers it (here or to another replica)
            return
        self._inbox.append(message)
        if self._wake_pending:
            return  # the pending _drain takes it (it clears the flag before draining)
        self._wake_pending = True
        try:
            loop.call_soon_threadsafe(self._drain)
        except RuntimeError:  # loop closed meanwhile
            self._wake_pending = False
            while self._inbox:
                self._inbox.popleft().nack()

    def _drain(self) -> None:
        """Hand the burst to the router's queue: no task or future per message."""
        self._wake_pending = False  # first: a message queued from now on wakes us again
        inbox, enqueue = self._inbox, self.router.enqueue
        while inbox:
            message = inbox.popleft()
            try:
                inbound = fast_inbound(
                    _PULLED,
                    data=bytes(message.data),
                    message_id=message.message_id,
                    subscription=self.subscription,
                    trigger_id=attribute(message.attributes, "trigger_id"),
                )
                refused = enqueue(inbound, _Pending(self, message))
            except Exception:
                logger.exception("unexpected error routing a Pub/Sub message; nacking")
                message.nack()
                continue
            if refused is None:
                self._unsettled += 1
            else:
                self._settle(message, refused)

    def _settled(self, message: Any, outcome: Outcome) -> None:
        """The router's answer for a queued message (event loop, after the commit)."""
        self._unsettled -= 1
        if not self._unsettled and self._all_settled is not None:
            self._all_settled.set()
        self._settle(message, outcome)

    def _settle(self, message: Any, outcome: Outcome) -> None:
        if logger.isEnabledFor(logging.DEBUG):  # before the settle: a kill cannot hide an ack
            logger.debug(
                "ack" if outcome.ack else "nack",
                extra={
                    "message_id": message.message_id,
                    "outcome": outcome.status,
                    "event_id": outcome.event_id,
                    "reason": outcome.reason,
                },
            )
        try:
            if outcome.ack:
                message.ack()
            else:
                message.nack()
        except Exception:  # the router settles a whole batch in one loop: never stop it
            logger.exception("could not settle a Pub/Sub message (it is redelivered)")

    async def stop_pulling(self) -> None:
        """Take nothing more: from now on an arriving message is nacked at once (Pub/Sub
        redelivers it, here after a restart or to another replica); the probe and any
        resubscribe end. The pull itself stays open -- the acks of what the router still
        holds go through it -- until :meth:`stop`."""
        self._stopping = True
        if self._probe is not None:
            self._probe.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._probe
            self._probe = None
        if self._recover is not None:
            self._recover.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._recover
            self._recover = None

    async def stop(
        self, timeout: float = 5.0, *, answered: asyncio.Future[None] | None = None
    ) -> None:
        """Stop pulling; messages not yet acked are redelivered by Pub/Sub. What the router
        holds is answered first, while the pull is open: the client sends acks through the
        pull's dispatcher, which the cancel shuts down (an ack after it is dropped, and a
        committed event redelivered). Arrivals meanwhile are nacked (:meth:`_callback`).

        ``answered``: the router's stop, which answers every message it holds before it
        ends -- the held messages are then waited for until they are all answered or it
        ended, whatever their batches take (``serve``: the router finishes its batches
        within ``--shutdown-timeout``), and ``timeout`` bounds only the pull's close.
        Without it, ``timeout`` bounds both."""
        await self.stop_pulling()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        if self._unsettled:  # in the router's queue: acked (or nacked) once answered
            self._all_settled = asyncio.Event()
            settled = loop.create_task(self._all_settled.wait())
            waits: set[asyncio.Future[Any]] = {settled}
            if answered is not None:
                waits.add(answered)
            await asyncio.wait(
                waits,
                timeout=None if answered is not None else timeout,
                return_when=asyncio.FIRST_COMPLETED,
            )
            settled.cancel()
            if answered is not None:  # the wait had no bound of its own
                deadline = loop.time() + timeout
        while self._inbox:  # queued, never handed to the router: redelivered
            self._inbox.popleft().nack()
        fut, client = self._future, self._client
        self._future = self._client = None
        if fut is not None:
            fut.cancel()
            left = max(0.1, deadline - loop.time())
            with contextlib.suppress(Exception, asyncio.CancelledError):  # cancelled / timeout
                await asyncio.wait_for(loop.run_in_executor(None, fut.result), left)
        if self._unsettled:  # answered later: their acks are dropped, Pub/Sub redelivers
            logger.warning("Pub/Sub source stopped, %d messages unanswered", self._unsettled)
        if client is not None:
            client.close()

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

The subscription is checked at start-up (:func:`check_subscription`: a missing or
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

from scoperouter.errors import ConfigError, ConfigIssue
from scoperouter.messages.push import attribute
from scoperouter.runtime.outcomes import fast_inbound
from scoperouter.runtime.pubsub_scheduler import InlineScheduler
from scoperouter.runtime.router import Inbound, Outcome, Router

logger = logging.getLogger("scoperouter.runtime.pubsub")

MIN_BACKOFF_S = 1.0
MAX_BACKOFF_S = 60.0
STABLE_AFTER_S = 60.0  # a pull that lived this long resets the backoff


def _subscriber_client() -> Any:
    pubsub_v1: Any = importlib.import_module("google.cloud.pubsub_v1")
    return pubsub_v1.SubscriberClient()


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:300]


def check_subscription(subscription: str, *, client: Any = None, timeout: float = 30.0) -> None:
    """Raise :class:`ConfigError` unless ``subscription`` exists and is readable."""
    exceptions: Any = importlib.import_module("google.api_core.exceptions")
    own = client is None
    client = client or _subscriber_client()

    def bad(message: str) -> ConfigError:
        return ConfigError([ConfigIssue(message, file="<command line>", path=("--subscription",))])

    try:
        client.get_subscription(request={"subscription": subscription}, timeout=timeout)
    except exceptions.NotFound:
        raise bad(f"Pub/Sub subscription {subscription} does not exist") from None
    except exceptions.PermissionDenied as exc:
        raise bad(
            f"no permission to read Pub/Sub subscription {subscription}: {exc.message}"
        ) from None
    except exceptions.InvalidArgument as exc:
        raise bad(
            f"invalid subscription {subscription!r} (projects/P/subscriptions/S): {exc.message}"
        ) from None
    except exceptions.GoogleAPIError as exc:
        raise bad(
            f"could not check Pub/Sub subscription {subscription}: {_describe(exc)}"
        ) from None
    finally:
        if own:
            client.close()


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


class PubSubSource:
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
        :func:`check_subscription`; raises on failure). ``lease_extension_s``: the ack
        deadline the client keeps renewing (0: the library's, 60 s) -- how long Pub/Sub
        waits before redelivering what a killed process held (replicas use 10 s)."""
        self.subscription = subscription
        self.router = router
        self.max_messages = max_messages
        self.max_bytes = max_bytes
        self.min_backoff_s = min_backoff_s
        self.max_backoff_s = max_backoff_s
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
        self._failure: str | None = None  # why the pull is down (None = pulling)
        self._backoff = min_backoff_s
        self._pull_started = 0.0
        self._recover: asyncio.Task[None] | None = None
        self.failures = 0  # streaming-pull terminations seen
        self.probe_interval_s = probe_interval_s
        self.probe_timeout_s = probe_timeout_s
        self._probe_failure: str | None = None  # why the last probe failed (None = fine)
        self._probe: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ health
    @property
    def pulling(self) -> bool:
        return self._future is not None and self._failure is None

    def readiness(self) -> str | None:
        """None while pulling and reachable; otherwise why not (``/readyz`` 503 with it)."""
        if self._failure is not None:
            return f"Pub/Sub streaming pull down: {self._failure}"
        if self._probe_failure is not None:
            return f"Pub/Sub unreachable: {self._probe_failure}"
        return None

    def start_probe(self) -> None:
        """Start the periodic reachability probe (:meth:`start` does)."""
        if self._probe is None or self._probe.done():
            self._probe = asyncio.get_running_loop().create_task(self._probe_loop())

    async def _probe_loop(self) -> None:
        loop = asyncio.get_running_loop()
        check = self._check or (
            lambda sub: check_subscription(sub, client=self._client, timeout=self.probe_timeout_s)
        )
        while not self._stopping:
            await asyncio.sleep(self.probe_interval_s)
            try:
                await asyncio.wait_for(
                    loop.run_in_executor(None, check, self.subscription), self.probe_timeout_s * 2
                )
            except Exception as exc:
                detail = (
                    "; ".join(i.message for i in exc.issues)
                    if isinstance(exc, ConfigError)
                    else _describe(exc) or "probe timed out"
                )
                if self._probe_failure is None:
                    logger.error(
                        "Pub/Sub unreachable; not ready",
                        extra={"subscription": self.subscription, "error": detail},
                    )
                self._probe_failure = detail
                continue
            if self._probe_failure is not None:
                logger.warning(
                    "Pub/Sub reachable again; ready", extra={"subscription": self.subscription}
                )
            self._probe_failure = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = False
        self._client = _subscriber_client()
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

    def _on_pull_done(self, fut: Any) -> None:  # any thread
        loop = self._loop
        if self._stopping or loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # loop closed meanwhile
            loop.call_soon_threadsafe(self._pull_ended, fut)

    def _pull_ended(self, fut: Any) -> None:
        if self._stopping or fut is not self._future:
            return
        try:
            exc: BaseException | None = fut.exception(timeout=0)
        except BaseException as e:  # cancelled
            exc = e
        self.failures += 1
        self._failure = _describe(exc) if exc is not None else "stream ended"
        if time.monotonic() - self._pull_started >= STABLE_AFTER_S:
            self._backoff = self.min_backoff_s
        logger.error(
            "Pub/Sub streaming pull stopped; not ready, resubscribing with backoff",
            extra={
                "subscription": self.subscription,
                "error": self._failure,
                "retry_in_s": self._backoff,
            },
        )
        if self._recover is None or self._recover.done():
            self._recover = asyncio.get_running_loop().create_task(self._resubscribe())

    async def _resubscribe(self) -> None:
        loop = asyncio.get_running_loop()
        check = self._check or (lambda sub: check_subscription(sub, client=self._client))
        while not self._stopping:
            await asyncio.sleep(self._backoff)
            if self._stopping:
                return
            self._backoff = min(self.max_backoff_s, self._backoff * 2)
            try:
                await loop.run_in_executor(None, check, self.subscription)
            except Exception as exc:
                detail = (
                    "; ".join(i.message for i in exc.issues)
                    if isinstance(exc, ConfigError)
                    else _describe(exc)
                )
                self._failure = detail
                logger.error(
                    "Pub/Sub subscription still unusable",
                    extra={
                        "subscription": self.subscription,
                        "error": detail,
                        "retry_in_s": self._backoff,
                    },
                )
                continue
            if self._stopping:
                return
            try:  # (the client starts the stream's threads: it can fail too)
                self._subscribe()
            except Exception as exc:
                self._failure = detail = _describe(exc)  # still not ready; retried
                logger.error(
                    "Pub/Sub resubscribe failed",
                    extra={"subscription": self.subscription, "error": detail},
                )
                continue
            self._failure = None  # only now: a new pull runs
            logger.warning(
                "Pub/Sub streaming pull resumed", extra={"subscription": self.subscription}
            )
            return

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

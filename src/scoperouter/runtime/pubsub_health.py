"""The health of the Pub/Sub streaming pull: the subscription check, the reachability
probe, and the resubscribe with exponential backoff after the pull ends.

Invariant: once a pull has ended, :meth:`PullHealth.readiness` reports it until the
subscription checks out *and* a new pull has started (a resubscribe that raises is retried,
never taken as recovered), and while the probe fails it reports that; the backoff doubles
up to ``max_backoff_s`` and resets after a pull that lived :data:`STABLE_AFTER_S`. Logs go
to the source's logger, ``scoperouter.runtime.pubsub``.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import time
from collections.abc import Callable
from typing import Any

from scoperouter.errors import ConfigError, ConfigIssue

logger = logging.getLogger("scoperouter.runtime.pubsub")  # the source's: one logger

MIN_BACKOFF_S = 1.0
MAX_BACKOFF_S = 60.0
STABLE_AFTER_S = 60.0  # a pull that lived this long resets the backoff


def subscriber_client() -> Any:
    """A google-cloud-pubsub ``SubscriberClient`` (the library imported on first use)."""
    pubsub_v1: Any = importlib.import_module("google.cloud.pubsub_v1")
    return pubsub_v1.SubscriberClient()


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:300]


def check_subscription(subscription: str, *, client: Any = None, timeout: float = 30.0) -> None:
    """Raise :class:`ConfigError` unless ``subscription`` exists and is readable."""
    exceptions: Any = importlib.import_module("google.api_core.exceptions")
    own = client is None
    client = client or subscriber_client()

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


class PullHealth:
    """The health half of :class:`~scoperouter.runtime.pubsub.PubSubSource`: its readiness,
    probe and recovery. The source subclasses it and provides :meth:`_subscribe` and the
    attributes declared here."""

    subscription: str
    _check: Callable[[str], None] | None
    _loop: asyncio.AbstractEventLoop | None
    _client: Any
    _future: Any
    _stopping: bool

    def __init__(
        self,
        *,
        min_backoff_s: float,
        max_backoff_s: float,
        probe_interval_s: float,
        probe_timeout_s: float,
    ) -> None:
        self.min_backoff_s = min_backoff_s
        self.max_backoff_s = max_backoff_s
        self._failure: str | None = None  # why the pull is down (None = pulling)
        self._backoff = min_backoff_s
        self._pull_started = 0.0
        self._recover: asyncio.Task[None] | None = None
        self.failures = 0  # streaming-pull terminations seen
        self.probe_interval_s = probe_interval_s
        self.probe_timeout_s = probe_timeout_s
        self._probe_failure: str | None = None  # why the last probe failed (None = fine)
        self._probe: asyncio.Task[None] | None = None

    def _subscribe(self) -> None:
        """Start a new streaming pull (the source's)."""
        raise NotImplementedError

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

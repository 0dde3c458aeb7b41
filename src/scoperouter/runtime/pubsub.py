"""Pub/Sub streaming-pull source (google-cloud-pubsub SubscriberClient, honours
PUBSUB_EMULATOR_HOST).

The client library calls back on its own thread pool; each callback hops onto the event
loop with ``loop.call_soon_threadsafe`` and the message is acked only when
:meth:`Router.submit` reports it durably handled (accepted, duplicate, or dead-lettered);
otherwise it is nacked and Pub/Sub redelivers it. ``FlowControl`` bounds the messages
held in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
from typing import Any

from scoperouter.runtime.router import Inbound, Router, attribute

logger = logging.getLogger("scoperouter.runtime.pubsub")


class PubSubSource:
    def __init__(
        self,
        subscription: str,
        router: Router,
        *,
        max_messages: int = 1000,
        max_bytes: int = 100 * 1024 * 1024,
    ) -> None:
        self.subscription = subscription
        self.router = router
        self.max_messages = max_messages
        self.max_bytes = max_bytes
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: Any = None
        self._future: Any = None
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        pubsub_v1: Any = importlib.import_module("google.cloud.pubsub_v1")

        self._loop = asyncio.get_running_loop()
        self._client = pubsub_v1.SubscriberClient()
        flow = pubsub_v1.types.FlowControl(max_messages=self.max_messages, max_bytes=self.max_bytes)
        self._future = self._client.subscribe(self.subscription, callback=self._callback, flow_control=flow)
        logger.info("streaming pull started", extra={"subscription": self.subscription})

    def _callback(self, message: Any) -> None:  # runs on the client's thread pool
        loop = self._loop
        if loop is None or loop.is_closed():
            message.nack()
            return
        try:
            loop.call_soon_threadsafe(self._schedule, message)
        except RuntimeError:  # loop closed meanwhile
            message.nack()

    def _schedule(self, message: Any) -> None:
        task = asyncio.get_running_loop().create_task(self._handle(message))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _handle(self, message: Any) -> None:
        try:
            outcome = await self.router.submit(
                Inbound("pubsub", data=bytes(message.data), message_id=message.message_id,
                        dead_letter_on_reject=True, trigger_id=attribute(message.attributes, "trigger_id"))
            )
        except Exception:
            logger.exception("unexpected error routing a Pub/Sub message; nacking")
            message.nack()
            return
        if outcome.ack:
            message.ack()
        else:
            message.nack()

    async def stop(self, timeout: float = 5.0) -> None:
        """Stop pulling; messages not yet acked are redelivered by Pub/Sub."""
        fut, client = self._future, self._client
        self._future = self._client = None
        if fut is not None:
            fut.cancel()
            loop = asyncio.get_running_loop()
            with contextlib.suppress(Exception, asyncio.CancelledError):  # cancelled / timeout
                await asyncio.wait_for(loop.run_in_executor(None, fut.result), timeout)
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)
        if client is not None:
            client.close()

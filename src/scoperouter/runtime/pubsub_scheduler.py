"""The Pub/Sub client library's scheduler for :class:`~scoperouter.runtime.pubsub.PubSubSource`:
the callback runs on the library's own consumer thread.

Invariant: :meth:`InlineScheduler.schedule` calls the callback before it returns, on the
calling thread, and holds nothing -- so the callback must only hand the message on (the
source's queues it and wakes the event loop). Imports nothing but the standard library
(``bench/baseline_ingest.py`` loads this file by path, without the package).
"""

from __future__ import annotations

import queue
from collections.abc import Callable
from typing import Any


class InlineScheduler:
    """The client library's scheduler (``subscribe(scheduler=...)``) that calls the callback
    on the library's own consumer thread instead of in a thread pool: the source's callback
    only queues the message and wakes the event loop, so the library's default
    ``ThreadScheduler`` (a future, a work item and a pool thread's wake-up per message) is
    pure cost. Its ``queue`` carries the messages' acks and nacks to the library's dispatcher
    thread, as ``ThreadScheduler``'s does. Nothing is ever held here, so a shutdown has no
    messages to hand back. (Duck-typed to ``pubsub_v1.subscriber.scheduler.Scheduler``: the
    client library is imported only when a source starts.)"""

    def __init__(self) -> None:
        self._queue: queue.Queue[Any] = queue.Queue()

    @property
    def queue(self) -> queue.Queue[Any]:
        return self._queue

    def schedule(self, callback: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        callback(*args, **kwargs)

    def shutdown(self, await_msg_callbacks: bool = False) -> list[Any]:
        return []


__all__ = ["InlineScheduler"]

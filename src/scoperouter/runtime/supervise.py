"""The daemon's long-lived tasks and threads: one that ends on its own is a fatal internal
error, said loudly, never a silent stall.

Invariant: a watched task that ends while its owner is not stopping -- by an exception (a
bug) or by returning, which a loop meant to run until its stop never does -- is reported
once per supervisor: logged at CRITICAL with its traceback, kept in :attr:`Supervisor.fatal`
(``/readyz`` answers 503 with it) and handed to :attr:`Supervisor.on_fatal` (the daemon then
stops and exits 1, so that its platform restarts it: an event is acknowledged only after its
commit, so what was acknowledged is in the store and what was not is sent again by its
source). A thread reports through :meth:`Supervisor.report` (the execution log's). A task
that ends by itself (a delivery: :meth:`Supervisor.failed`) is reported only for an
exception that escaped it. A cancelled task, or any task once the owner is stopping, is
never reported.

Why: before, the ingest worker dying of an exception raised after a commit (answering,
dispatching) left a daemon whose ``/healthz`` and ``/readyz`` still answered 200, whose HTTP
producers waited for answers that never came and whose Pub/Sub messages were never
acknowledged, with nothing in its log: the task's exception stayed in the task.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable

logger = logging.getLogger("scoperouter.runtime")


class Supervisor:
    """Watches tasks (:meth:`watch`); ``stopping()`` tells when their ending is expected."""

    def __init__(self, stopping: Callable[[], bool]) -> None:
        self.stopping = stopping
        self.fatal: str | None = None  # the first report, for /readyz
        self.on_fatal: Callable[[str], None] | None = None

    def watch(self, tasks: Iterable[asyncio.Task[None]]) -> None:
        """Tasks meant to run until the stop: ending at all is fatal."""
        for t in tasks:
            t.add_done_callback(self._ended)

    def failed(self, task: asyncio.Task[None]) -> None:
        """A done callback for a task that ends by itself (a delivery): only an exception
        that escaped it is fatal."""
        if not task.cancelled() and task.exception() is not None:
            self._ended(task)

    def _ended(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or self.stopping():
            return
        self.report(f"background task {task.get_name()!r}", task.exception())

    def report(self, what: str, exc: BaseException | None) -> None:
        """``what`` failed with ``exc`` (None: it ended): fatal unless the owner is stopping
        (event loop only; a thread hands it over with ``call_soon_threadsafe``)."""
        if self.stopping():
            return
        why = f"{what} failed: {type(exc).__name__}: {exc}" if exc is not None else f"{what} ended"
        if self.fatal is not None:  # one report; later endings are logged only
            logger.error("internal error: %s", why, exc_info=exc)
            return
        self.fatal = why
        logger.critical(
            "internal error: %s; stopping (exit status 1) so that the daemon is restarted",
            why,
            exc_info=exc,
        )
        if self.on_fatal is not None:
            self.on_fatal(why)

"""The router's background tasks on the event loop: the window timer, the dispatch-mark
flusher and the housekeeping passes (a mixin of :class:`~scoperouter.runtime.router.Router`).

Invariant: each pass's store work is one state-thread job; when it fails the store is marked
unhealthy (``/readyz``) and the marks it took go back to the queue (a failed window firing
also reloads the windows), so nothing is lost and a later pass retries; a task never ends
on a store error (only a stop ends them).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence

from scoperouter.runtime import housekeeping
from scoperouter.runtime.dispatcher import Committed
from scoperouter.runtime.marks import Mark, write_marks
from scoperouter.runtime.router_core import RouterCore
from scoperouter.state.model import Pruned

logger = logging.getLogger("scoperouter.runtime")


class RouterTimers(RouterCore):
    """Window timer, mark flusher, housekeeping (run as tasks by :meth:`Router.start`)."""

    # ------------------------------------------------------------------ windows
    async def _window_timer(self) -> None:
        while not self._stopping:
            deadline = self.windows.due_at(self.clock())
            timeout = None if deadline is None else max(0.0, deadline - self.clock())
            if timeout is None or timeout > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._window_wake.wait(), timeout)
            self._window_wake.clear()
            if not self._stopping:
                await self.fire_due()
                backoff = self.health.backoff()
                if backoff:
                    await asyncio.sleep(backoff)

    async def fire_due(self) -> int:
        """Fire the windows due now (the timer task calls this). Returns the count."""
        now = self.clock()
        nd = self.windows.due_at(now)
        if nd is None or nd > now:
            return 0
        marks = self.marks.take()
        try:
            fired, waiting = await self._in_state(self._fire_due_job, marks)
        except Exception:
            self.health.failed("could not persist due windows")
            self.marks.put_back(marks)
            await self._reload_windows()
            return 0
        finally:
            self.marks.written(marks)  # (after a put_back: nothing left to forget)
        self.health.succeeded()
        self.dispatcher.fired(fired)
        if waiting:
            self.dispatcher.rows_waiting(waiting)
        self.metrics.open_windows.set(self.open_window_count())
        self._loop_metrics()
        return len(fired)

    def _fire_due_job(self, marks: list[Mark]) -> tuple[list[Committed], list[str]]:
        """On the state thread: the windows due now fired (pending ``marks`` first), and the
        processors with rows left to their lanes' pages -- taken here, as the ingest does,
        since ``persist`` writes them on this thread (a take on the event loop could lose
        one added between its sort and its clear)."""
        fired = self.windows.fire_due(
            lambda: write_marks(self.store, marks, self.windows.alias, self.windows.undelivered)
        )
        return fired, self.windows.take_waiting()

    # ------------------------------------------------------------------ marks, housekeeping
    def _write_marks_tx(self, marks: list[Mark]) -> None:
        with self.store.transaction():
            write_marks(self.store, marks, self.windows.alias, self.windows.undelivered)

    async def _flush_marks(self, barrier: bool = False) -> None:
        marks = self.marks.take()  # barrier: even none, to finish behind a write already out
        if not marks and not barrier:
            return
        try:
            await self._in_state(self._write_marks_tx, marks)
        except BaseException:
            self.marks.put_back(marks)
            raise
        self.marks.written(marks)

    async def _mark_flusher(self) -> None:
        last_log_flush = time.monotonic()
        while True:
            await asyncio.sleep(self.options.mark_flush_interval_s + self.health.backoff())
            try:
                if self.marks:
                    await self._flush_marks()
                    self.health.succeeded()
                elif not self.health.ok:
                    await self._in_state(self._probe_store)  # nothing else may write: probe
                    self.health.succeeded()
            except Exception:
                self.health.failed("could not record dispatch outcomes (will retry)")
            if time.monotonic() - last_log_flush > 1.0:
                last_log_flush = time.monotonic()
                self.log_bridge.flush()

    def _probe_store(self) -> None:
        with self.store.transaction():
            self.store.set_meta("probe", repr(self.clock()))

    async def _housekeeping(self) -> None:
        """A bounded prune pass every ``housekeeping_interval_s``; while a pass leaves rows
        past a horizon (it reached its limit), the next follows after a short pause, each
        pass one state job (the ingest's jobs queued meanwhile run in between)."""
        more = False
        while True:
            await asyncio.sleep(
                housekeeping.CATCH_UP_PAUSE_S if more else self.options.housekeeping_interval_s
            )
            self._copy_letters()  # what the dead-letter topic is still owed, again
            try:
                pruned = await self._in_state(self._prune)
                more = pruned.more
                housekeeping.said(
                    pruned,
                    self.options.dead_letter_retention_s,
                    self.metrics,
                    topic=self.letter_copies is not None,
                )
            except Exception:
                more = False
                self.health.failed("housekeeping failed")

    def _prune(self) -> Pruned:
        """One prune pass: what it deleted, and whether rows past a horizon may be left
        (a statement deleted its limit). Horizons are measured back from the prune clock
        (:func:`housekeeping.prune_now`: the wall clock bounded by monotonic time)."""
        now = housekeeping.prune_now(self.prune_clock, self.options, self.clock())
        keep_owed = self.letter_copies is not None
        return housekeeping.prune(self.store, self.options, now, keep_owed=keep_owed)

    def _letters_owed(self, limit: int) -> list[tuple[int, bytes]]:
        return self.store.letters_owed(limit)

    def _letters_copied(self, ids: Sequence[int]) -> int:
        with self.store.transaction():
            return self.store.letters_copied(ids)

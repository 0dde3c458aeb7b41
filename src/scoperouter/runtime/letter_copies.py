"""Copies of rejected events' dead letters to the dead-letter topic (``dead_letter_topic``).

Invariant: a rejected event's dead letter is stored with the record it owes the topic
(:func:`~scoperouter.runtime.ingest.letter_record`) in the transaction that stores it, and
the record is cleared only once the topic took it (:class:`LetterCopies` publishes what the
store says is owed, oldest first, and then tells the store); a publish that fails (topic
missing, an outage, a record too large) is counted
(``scoperouter_dead_letter_topic_failures_total``), logged once per pass, and tried again
at the next pass -- each housekeeping pass starts one -- and housekeeping never prunes a
letter still owed while a topic is configured. At least once: a copy published whose
clearing did not commit (a crash, a store failure) is published again, and replicas of a
shared store may both copy a letter owed at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from scoperouter.runtime.metrics import Metrics
from scoperouter.runtime.outcomes import DeadLetterPublisher

logger = logging.getLogger("scoperouter.runtime")

COPY_PAGE = 100
"""Records read and published at once (a pass reads pages until none is left, or one
publish of a page failed)."""

Owed = Callable[[int], Awaitable[list[tuple[int, bytes]]]]
Copied = Callable[[Sequence[int]], Awaitable[int]]


class LetterCopies:
    """One replica's copier: at most one pass runs at a time; one asked for meanwhile runs
    when it ends (a letter committed after the running pass read its page is not left for
    the next housekeeping pass)."""

    def __init__(
        self, publish: DeadLetterPublisher, owed: Owed, copied: Copied, metrics: Metrics
    ) -> None:
        self.publish, self.owed, self.copied, self.metrics = publish, owed, copied, metrics
        self._running = False
        self._again = False

    def wanted(self) -> bool:
        """True when a pass should start (none runs); else the running one goes again."""
        if self._running:
            self._again = True
            return False
        self._running = True
        return True

    async def run(self) -> int:
        """Passes until none was asked for meanwhile (after :meth:`wanted` said True):
        records copied."""
        copied = 0
        try:
            while True:
                self._again = False
                copied += await self.copy_owed()
                if not self._again:
                    return copied
        finally:
            self._running = False

    async def copy_owed(self) -> int:
        """One pass: every owed record, page by page, until a publish fails; the records
        copied. A store that fails is logged (the next pass tries again)."""
        copied = 0
        while True:
            try:
                page = await self.owed(COPY_PAGE)
            except Exception as exc:
                logger.warning(
                    "could not read the dead letters owed to the dead-letter topic "
                    "(will retry): %s",
                    _said(exc),
                )
                return copied
            if not page:
                return copied
            got = await asyncio.gather(
                *(self.publish(record, "event") for _id, record in page), return_exceptions=True
            )
            done = [i for (i, _r), g in zip(page, got, strict=True) if g is None]
            failed = [g for g in got if isinstance(g, BaseException)]
            if done:
                try:
                    await self.copied(done)
                except Exception as exc:  # published: sent again by the next pass
                    logger.warning(
                        "could not record dead letters copied to the dead-letter topic "
                        "(they will be sent again): %s",
                        _said(exc),
                    )
                    return copied
                copied += len(done)
            if failed:
                self.metrics.dead_letter_topic_failures.labels("event").inc(len(failed))
                logger.error(
                    "could not publish %d dead letters to the dead-letter topic (kept in the "
                    "state store, not pruned; retried at the next housekeeping pass): %s",
                    len(failed),
                    _said(failed[0]),
                )
                return copied
            if len(page) < COPY_PAGE:
                return copied


def _said(exc: BaseException) -> str:
    """One line for a log (no traceback)."""
    text = " ".join(str(exc).split())[:300]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__

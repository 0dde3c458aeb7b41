"""Health of the state store: failures counted, logged sparingly, retried with backoff.

Invariant: :attr:`StoreHealth.ok` is False from a failed store operation until the next
write that succeeds (an operation that only read -- a dispatcher page or a timer poll with
nothing to write -- proves nothing: a full disk still answers reads); while it is False the
router is not ready (``/readyz`` 503) and every retry waits :meth:`StoreHealth.backoff`
(exponential with jitter, capped).
"""

from __future__ import annotations

import logging
import random
import sqlite3
import time

from scoperouter.runtime.options import RouterOptions

logger = logging.getLogger("scoperouter.runtime")


def is_store_failure(exc: BaseException) -> bool:
    """SQLite failing as a whole (disk full, I/O error, read-only, locked), as opposed to
    one value it cannot take (an unencodable string, a bad binding).

    ``sqlite3.IntegrityError`` counts as the store's failure on purpose: no value taken
    from an event reaches a constraint in an ingest savepoint (``seen``: ``INSERT OR
    REPLACE`` on the event id; ``window_journal``, ``triggers``: autoincrement keys, their
    ``NOT NULL`` columns filled by the router itself -- op names, trigger ids, processor
    names, bodies, the clock; no ``UNIQUE`` index, no foreign key). A violation there is a
    schema that does not match the code (a store written by another version), the same for
    every event: failing the batch (not ready, redelivered by its sources) keeps the
    events; isolating it would dead-letter, and acknowledge, every one of them."""
    return isinstance(exc, sqlite3.Error) and not isinstance(
        exc, sqlite3.InterfaceError | sqlite3.ProgrammingError | sqlite3.DataError
    )


class StoreHealth:
    def __init__(self, options: RouterOptions, rng: random.Random) -> None:
        self.options = options
        self.rng = rng
        self.ok = True
        self.failures = 0  # consecutive failed store operations
        self._last_log = 0.0
        self._unlogged = 0

    def problem(self) -> str | None:
        """Why the store makes the router not ready (for ``/readyz``), or None."""
        if self.ok:
            return None
        return f"state store failing ({self.failures} failed writes); retrying with backoff"

    def failed(self, what: str) -> None:
        """Count a failed store operation; log it with its traceback the first time, then
        at most once per ``store_log_interval_s`` (call from an ``except`` block)."""
        self.failures += 1
        if self.ok:
            self.ok = False
            self._last_log = time.monotonic()
            logger.exception("%s; the store is failing: not ready, retrying with backoff", what)
            return
        if time.monotonic() - self._last_log < self.options.store_log_interval_s:
            self._unlogged += 1  # (counted in the next line: it is not logged itself)
            return
        self._last_log = time.monotonic()
        logger.error(
            "%s; the store is still failing (%d failures so far, %d not logged)",
            what,
            self.failures,
            self._unlogged,
            exc_info=True,
        )
        self._unlogged = 0

    def succeeded(self) -> None:
        """A store write committed: the store works (call only after a write)."""
        if not self.ok:
            logger.warning("the store works again after %d failures; ready", self.failures)
        self.ok = True
        self.failures = 0
        self._unlogged = 0

    def backoff(self) -> float:
        """Seconds to wait before retrying a failing store (0 while it works)."""
        return 0.0 if self.ok else self.retry_delay(self.failures)

    def retry_delay(self, failures: int) -> float:
        """Seconds to wait after ``failures`` consecutive failures of one operation (0 for
        none): exponential with jitter, capped. The ingest worker counts its own failed
        transactions: another write that succeeds meanwhile (the mark flusher's) makes the
        store healthy again but does not make a failing transaction retry at once."""
        if failures <= 0:
            return 0.0
        o = self.options
        raw = min(o.store_backoff_cap_s, o.store_backoff_base_s * (2 ** min(failures - 1, 30)))
        return float(raw * (0.5 + 0.5 * self.rng.random()))

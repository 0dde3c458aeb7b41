"""WAL checkpoints of the SQLite state store, off the committing thread.

Invariant: an ingest commit never copies the WAL back into the database (SQLite's
auto-checkpoint is off on the store's connection); this thread does it with its own
connection in ``PASSIVE`` mode, which never waits for the writer, so the WAL stays small
without adding checkpoint time (up to ~50 ms at 100k open windows with
``synchronous=FULL``, ``bench/state_store.py``) to an ingest transaction.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

logger = logging.getLogger("scoperouter.state")


class Checkpointer:
    """A daemon thread running ``PRAGMA wal_checkpoint(PASSIVE)`` every ``interval_s``."""

    def __init__(self, path: Path, sync: str, interval_s: float = 1.0) -> None:
        self.path = path
        self.sync = sync
        self.interval_s = interval_s
        self.runs = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._loop, name="scoperouter-sqlite-checkpoint", daemon=True
        )
        self._thread.start()

    def _loop(self) -> None:
        db = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
        try:
            db.execute("PRAGMA busy_timeout=1000")
            db.execute(f"PRAGMA synchronous={self.sync.upper()}")
            while not self._stop.wait(self.interval_s):
                try:
                    db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                    self.runs += 1
                except sqlite3.Error:
                    logger.warning("WAL checkpoint failed (retried)", exc_info=True)
        finally:
            db.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

"""WAL checkpoints of the SQLite state store, off the committing thread.

Invariant: an ingest commit never copies the WAL back into the database (SQLite's
auto-checkpoint is off on the store's connection); this thread does it with its own
connection in ``PASSIVE`` mode, which never waits for the writer, so the WAL stays small
without adding checkpoint time (up to ~50 ms at 100k open windows with
``synchronous=FULL``, ``bench/state_store.py``) to an ingest transaction.

Bounded WAL: SQLite starts the WAL over only when a write transaction begins while every
frame is already copied back. Under a sustained load the writer appends frames while this
thread copies, so that moment never comes and the WAL grew without bound (306 MB after
90k events at saturation, ``bench/daemon.py --soak``). So once the WAL file is past
``wal_limit_bytes`` the writer itself, right after a commit (:meth:`Checkpointer.after_commit`),
copies the frames this thread has not reached yet -- nothing is appended meanwhile, so the
next transaction restarts the WAL and ``journal_size_limit`` cuts the file back to the limit.
That tail is what was written since this thread's last pass, not the whole WAL.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from pathlib import Path

logger = logging.getLogger("scoperouter.state")

WAL_LIMIT_BYTES = 16 * 1024 * 1024  # past this the writer copies the tail after a commit


class Checkpointer:
    """A daemon thread running ``PRAGMA wal_checkpoint(PASSIVE)`` every ``interval_s``."""

    def __init__(
        self,
        path: Path,
        sync: str,
        interval_s: float = 1.0,
        wal_limit_bytes: int = WAL_LIMIT_BYTES,
    ) -> None:
        self.path = path
        self.sync = sync
        self.interval_s = interval_s
        self.wal_limit_bytes = wal_limit_bytes
        self.runs = 0
        self.tail_runs = 0  # checkpoints the writer ran after a commit (WAL past the limit)
        self._wal = Path(f"{path}-wal")
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

    def after_commit(self, db: sqlite3.Connection) -> None:
        """Writer thread, between two transactions: when the WAL file is past the limit,
        copy what is left of it (see the module docstring)."""
        try:
            size = os.stat(self._wal).st_size
        except FileNotFoundError:
            return
        if size > self.wal_limit_bytes:
            try:  # the transaction committed: a failed checkpoint is only retried later
                db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                self.tail_runs += 1
            except sqlite3.Error:
                logger.warning("WAL checkpoint after a commit failed (retried)", exc_info=True)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

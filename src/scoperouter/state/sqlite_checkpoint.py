"""WAL checkpoints of the SQLite state store, off the committing thread.

Invariant: an ingest commit never copies the bulk of the WAL back into the database
(SQLite's auto-checkpoint is off on the store's connection); this thread does it with its
own connection in ``PASSIVE`` mode, which never waits for the writer, so no commit pays
for the bulk (up to ~50 ms at 100k open windows with ``synchronous=FULL``,
``bench/state_store.py``).

Bounded WAL: SQLite starts the WAL over only when a write transaction begins while every
frame is already copied back. A pass of this thread takes milliseconds (an ``fsync`` of
the database at the end), and whenever the writer commits during it -- nearly always,
at 100 transactions/s as much as at saturation -- the pass leaves a tail and the WAL is
not started over: it grew without bound (306 MB after 90k events at saturation,
``bench/daemon.py --soak``; 36 MB in 10 s at 200 events/s next to 100k windows). So
once the WAL file is past ``wal_limit_bytes`` this thread, after a pass, asks the writer
to copy the tail (:meth:`Checkpointer.after_commit`, right after its next commit): only
the frames committed since the pass ended, with nothing appended meanwhile, so the next
transaction starts the WAL over and ``journal_size_limit`` cuts the file back to the
limit. Should this thread fall behind (a pass stuck past its time), the writer copies
whatever is left once the WAL is four times the limit.

Cheap commits: a commit that writes past the end of the WAL file grows it, and with
``synchronous=FULL`` its ``fdatasync`` then also writes the file's new size and blocks
(ext4: about 30-45 us more CPU per commit at one event per transaction). So the WAL
starts over well before the limit: a pass that finds more than a quarter of the limit in
the WAL asks for the tail, and the passes come sooner while the WAL fills fast (down to
:data:`MIN_INTERVAL_S`), so the WAL writes over its own first quarter instead of growing.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from pathlib import Path

logger = logging.getLogger("scoperouter.state")

WAL_LIMIT_BYTES = 16 * 1024 * 1024  # past this the WAL is started over (see the docstring)
MIN_INTERVAL_S = 0.05  # the shortest wait between two passes (a fast-filling WAL)


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
        self.tail_runs = 0  # tails the writer copied after a commit
        self.restart_bytes = wal_limit_bytes // 4  # a pass past this asks for the tail
        self._wait = interval_s  # until the next pass (shorter while the WAL fills fast)
        self._wal = f"{path}-wal"
        self._tail_wanted = False  # set by this thread, taken by the writer
        self._frame_bytes = 0  # one WAL frame (page + header), read at the first pass
        self._passed = time.monotonic()  # when the last pass ended (the thread keeps up)
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._loop, name="scoperouter-sqlite-checkpoint", daemon=True
        )
        self._thread.start()

    def _wal_bytes(self) -> int:
        try:
            return os.stat(self._wal).st_size
        except FileNotFoundError:
            return 0

    def _loop(self) -> None:
        db = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
        try:
            db.execute("PRAGMA busy_timeout=1000")
            db.execute(f"PRAGMA synchronous={self.sync.upper()}")
            while not self._stop.wait(self._wait):
                try:
                    self.run_pass(db)
                except sqlite3.Error:
                    logger.warning("WAL checkpoint failed (retried)", exc_info=True)
        finally:
            db.close()

    def run_pass(self, db: sqlite3.Connection) -> None:
        """One pass of this thread (on its own connection ``db``): copy what is committed,
        ask for the tail once the WAL holds more than :attr:`restart_bytes` (or its file
        is past the limit), and pass sooner next time while the WAL fills faster than
        that per interval (later again once it does not)."""
        frames = int(db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1])
        self.runs += 1
        if self._frame_bytes == 0:
            self._frame_bytes = int(db.execute("PRAGMA page_size").fetchone()[0]) + 24
        held = max(0, frames) * self._frame_bytes
        if held > self.restart_bytes:
            self._wait = max(MIN_INTERVAL_S, self._wait / 2)
        elif held < self.restart_bytes // 2:
            self._wait = min(self.interval_s, self._wait * 2)
        if held > self.restart_bytes or self._wal_bytes() > self.wal_limit_bytes:
            self._tail_wanted = True
        self._passed = time.monotonic()

    def after_commit(self, db: sqlite3.Connection) -> None:
        """Writer thread, between two transactions: copy the WAL's tail when this thread
        asked for it, or when the thread is behind (its last pass ended more than a
        second after the next one was due) and the WAL is four times the limit, so the
        WAL starts over. While the thread keeps up a commit costs a flag and a clock
        read, no ``stat`` of the WAL."""
        if not self._tail_wanted and (
            time.monotonic() - self._passed <= self._wait + 1.0
            or self._wal_bytes() <= 4 * self.wal_limit_bytes
        ):
            return
        self._tail_wanted = False
        try:  # the transaction committed: a failed checkpoint is only retried later
            db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            self.tail_runs += 1
        except sqlite3.Error:
            logger.warning("WAL checkpoint after a commit failed (retried)", exc_info=True)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

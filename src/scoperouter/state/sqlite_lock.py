"""One daemon per SQLite state file: an advisory lock on a file beside the database.

Invariant: a store opened ``exclusive`` holds ``flock(LOCK_EX)`` on ``<database>-lock``
(beside the database's real path, symlinks resolved) from before its first statement
until it is closed; the kernel drops the lock when the process dies (SIGKILL included),
so a crash never leaves it stale. A second exclusive open of the database -- by another
process, or by another store in this one -- waits up to its timeout, then fails with
:class:`StoreInUse`, one line naming the database and the holder (the line the holder
wrote into the lock file). A store opened without it (the offline commands: ``scoperouter
outbox list|redrive|discard``) takes no lock and is never refused: SQLite's own locking
keeps its transactions apart from the daemon's, and it rescues no lease.

Why a file of its own: SQLite locks the database with POSIX byte-range locks, and on NFS
(Filestore on Cloud Run) Linux emulates ``flock`` with those, so an ``flock`` on the
database itself would collide with SQLite's. ``-lock`` is no name SQLite uses (its
``unix-dotfile`` VFS makes a directory ``<database>.lock``). Deleting the lock file while
a daemon holds it would let a second one in: leave it in place, like ``-wal``/``-shm``.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import time
from pathlib import Path

LOCK_SUFFIX = "-lock"
POLL_S = 0.1  # how often a waiting open tries again


def flock_within(fd: int, timeout_s: float) -> bool:
    """Take ``flock(LOCK_EX)`` on ``fd``, trying every :data:`POLL_S` for up to
    ``timeout_s`` (0: once); False when another holder kept it that long."""
    deadline = time.monotonic() + max(0.0, timeout_s)
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(POLL_S)


def holder(owner: str) -> str:
    """Who holds the lock, for the refusal of the next one: this process and replica."""
    return f"pid {os.getpid()} on {socket.gethostname()}, replica {owner}"


class StoreInUse(RuntimeError):
    """The database is held by another daemon (the message is one line for operators)."""


def lock_path(database: Path) -> Path:
    """The lock file of ``database`` (beside its real path: two spellings of one file, a
    symlink's included, share it)."""
    real = database.resolve()
    return real.with_name(real.name + LOCK_SUFFIX)


class InstanceLock:
    """The exclusive lock of one database, held from construction until :meth:`release`."""

    def __init__(self, database: Path, holder: str, timeout_s: float = 0.0) -> None:
        """Take the lock, waiting up to ``timeout_s`` (0: try once), and write ``holder``
        (one line: who holds it) into the lock file; :class:`StoreInUse` when another
        holder keeps it that long."""
        self.database = database.resolve()
        self.path = lock_path(database)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)  # not inherited by execs
        try:
            if not flock_within(fd, timeout_s):
                other = " ".join(os.pread(fd, 512, 0).decode(errors="replace").split())
                raise StoreInUse(
                    f"state database {self.database} is in use "
                    f"by another scoperouter ({other or 'holder unknown'}; "
                    f"lock {self.path}): the SQLite state store takes one daemon, "
                    "several need --state postgresql://... (docs/deploy-replicas.md)"
                )
            line = " ".join(holder.split())  # one line, whatever the replica id holds
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{line}\n".encode(), 0)
        except BaseException:
            os.close(fd)  # releases the lock when it was taken
            raise
        self._fd: int | None = fd

    def release(self) -> None:
        """Drop the lock (idempotent); the file stays for the next holder."""
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)  # the kernel drops the flock with the last descriptor

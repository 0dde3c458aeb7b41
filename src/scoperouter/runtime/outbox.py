"""The outbox sink: triggers appended to a JSONL file, one line each.

Invariant: with ``fsync`` a send returns only once its line was written and a
``fdatasync`` started after that has completed -- both on the sink's own thread, never on
the event loop (a ``write`` racing a running ``fdatasync`` on the same file can block for
tens of microseconds); a rotated file is synced before its descriptor is closed. Every
line the sink writes starts on a line of its own: a file opened ending in a torn line (a
crash mid-write; never synced, so never reported done: its triggers are sent again) gets
a newline first. The fragment is kept, not cut: another process (``scoperouter backfill``
next to ``serve``) may be appending to the same file, and what looks torn may be its write
in progress -- a reader skips a line that does not parse (and an empty one).
Writers of one file (``serve`` and ``scoperouter backfill`` on one state dir) write and
rotate under one lock (``flock`` on ``.outbox.jsonl.lock`` beside it), each first reopening
the file if another rotated it away and taking its size from the file: a line a writer
reports written is in the current file or a rotated one, like every other line.
A flush that fails fails only the sends whose lines it carried and could not sync (a
rotation inside it synced the lines before it: those sends are done); sends queued while it
ran wait for the next flush. A failed send's line may be in the file all the same (written,
its sync failed): the dispatcher sends it again -- a duplicate line, at-least-once.
A rotation that fails (a rename refused: an unwritable directory) fails no send: the lines
stay in the current file, which the flush syncs; it is logged at ERROR once per streak of
failures, counted (:attr:`OutboxSink.rotation_failures`) and tried again
:data:`ROTATE_RETRY_S` later (the file meanwhile grows past ``max_bytes``).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import queue
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from scoperouter.errors import DispatchError
from scoperouter.messages.models import Trigger
from scoperouter.runtime.payloads import trigger_bytes
from scoperouter.runtime.wakeups import no_wakeup_preemption

logger = logging.getLogger("scoperouter.runtime")

BATCH_MAX = 64  # triggers one dispatcher delivery hands over (one write, one fdatasync)
ROTATE_RETRY_S = 60.0  # a failed rotation is tried again this long after (not at every send)
_monotonic = time.monotonic  # (tests replace it)
_Job = tuple[asyncio.Future[None], int, list[bytes], asyncio.AbstractEventLoop]


class OutboxSink:
    """Appends to a JSONL file. Each line is written with one ``write`` on an
    ``O_APPEND`` descriptor, so concurrent writers never interleave lines.

    With ``fsync`` a send returns only once its line is on disk (``fdatasync``), so the
    dispatcher's "done" mark that follows never outlives a trigger lost in a power cut.
    Concurrent sends share one ``write`` and one ``fdatasync`` (group commit): each flush
    writes every line queued before it started, then syncs, so the cost is per batch, not
    per trigger. The flush runs on the sink's own thread: the event loop keeps serving
    while the disk syncs (woken, that thread does not preempt the loop:
    :mod:`~scoperouter.runtime.wakeups`). Without ``fsync`` each send writes its line at once.

    Past ``max_bytes`` (0: never) the file rotates: ``outbox.jsonl`` becomes
    ``outbox.jsonl.1`` (``.1`` -> ``.2`` ... up to ``keep`` files) and a new one is started;
    a rotated descriptor stays open until a flush has covered its lines. The file past
    ``keep`` is deleted: its lines are delivered triggers (marked done in the state store),
    whose only copy it may be when the file's reader lags behind; each deletion is logged
    at WARNING and counted (:attr:`deleted_files`, :attr:`deleted_bytes`)."""

    def __init__(
        self, path: Path, *, fsync: bool = False, max_bytes: int = 0, keep: int = 3
    ) -> None:
        self.path = path
        self.name = f"outbox:{path}"
        self.batch_max = BATCH_MAX
        self._fsync = fsync
        self.max_bytes = max_bytes
        self.keep = max(1, keep)
        path.parent.mkdir(parents=True, exist_ok=True)
        # shared by every writer of this file: writes and rotations hold it (module doc)
        self._lock_fd = os.open(path.with_name(f".{path.name}.lock"), os.O_RDWR | os.O_CREAT, 0o644)
        self._fd = self._open()
        self.torn_bytes = 0  # torn last lines ended (a crashed writer's unfinished line)
        with self._locked():
            pass  # ends a torn last line left by a crash before this sink opened the file
        self._written = 0  # lines sent (with fsync: queued for the sink's thread)
        self._synced = 0  # lines known to be on disk
        self._covered = 0  # the sink's thread: lines of its flush a rotation synced so far
        self._queued: list[bytes] = []  # with fsync: lines the next flush writes (no newline)
        self._flush: asyncio.Future[None] | None = None
        # sends waiting for their line (the number of lines sent up to it) to be on disk
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        # flush jobs for the sink's thread (at most one at a time; None stops it)
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # the senders' (asked once)
        self.flushes = 0
        self.rotations = 0
        self.deleted_files = 0  # rotated files deleted past ``keep`` (and their bytes)
        self.deleted_bytes = 0
        self.rotation_failures = 0  # rotations that failed (the file kept growing meanwhile)
        self._rotate_after: float | None = None  # a rotation failed: not retried before this

    def _open(self) -> int:
        return os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold the writers' lock; inside it the descriptor is the current file's (reopened
        when another writer rotated it away; a line written before that was synced by its
        own flush) and ``_size`` is that file's size (other writers append too)."""
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        try:
            try:
                st = os.stat(self.path)
                current = (st.st_ino, st.st_dev)
            except FileNotFoundError:
                current = None
            mine = os.fstat(self._fd)
            if current != (mine.st_ino, mine.st_dev):
                old, self._fd = self._fd, self._open()
                os.close(old)
                mine = os.fstat(self._fd)
            self._size = mine.st_size
            # every writer writes whole lines under this lock: a last line without its
            # newline here is one a writer's crash tore -- before this sink opened the file
            # or since (a backfill killed mid-write beside serve); ended now, the next line
            # is not glued onto it (a delivered trigger no reader could parse)
            if self._size and os.pread(self._fd, 1, self._size - 1) != b"\n":
                self.torn_bytes += _end_torn_line(self._fd, self.path)
                self._size = os.fstat(self._fd).st_size
            yield
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    async def send(self, trigger: Trigger, *, message_id: str, body: bytes | None = None) -> None:
        await self.send_batch([(trigger, body)])

    async def send_batch(self, items: Sequence[tuple[Trigger, bytes | None]]) -> None:
        """Append one line per trigger, in order (``body``: its JSON when the caller has
        it); returns when all are written (with ``fsync``: on disk) -- one delivery of
        the dispatcher carrying up to :attr:`batch_max` triggers. An ``OSError`` fails
        the whole call (:class:`DispatchError` naming the first trigger)."""
        bodies = [body or trigger_bytes(t) for t, body in items]
        try:
            if self._fsync:  # written and synced by the sink's thread (group commit)
                self._queued.extend(bodies)  # (their newlines added by that thread)
                self._written += len(bodies)
                await self._durable(self._written)
                return
            with self._locked():
                for body in bodies:
                    self._append(body + b"\n")
                    self._written += 1
                    if self.max_bytes and self._size >= self.max_bytes and self._rotation_due():
                        self._try_rotate()
        except OSError as exc:
            t = items[0][0]
            raise DispatchError(t.processor, self.name, str(exc), trigger_id=t.trigger_id) from exc

    def _append(self, data: bytes) -> None:
        """Append ``data`` (whole lines) to the current file, all of it (a short write goes
        on). A write that fails part-way (a full disk) is cut back to the last whole line,
        so the retry never glues its line onto a fragment (one writer per file: the size
        it keeps is the file's, as rotation assumes too)."""
        try:
            _write_fully(self._fd, data)
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, self._size)
            raise
        self._size += len(data)

    def _rotation_due(self) -> bool:
        return self._rotate_after is None or _monotonic() >= self._rotate_after

    def _try_rotate(self) -> bool:
        """:meth:`_rotate`, its failure to move the files kept from the send: the lines are
        written in the current file, which stays open (and is synced by the flush); logged
        at ERROR at the first failure of a streak, counted, tried again
        :data:`ROTATE_RETRY_S` later. A failed sync of the file it closes is raised (its
        lines are not known on disk). Returns whether it rotated."""
        try:
            closed = self._rotate()
        except OSError as exc:
            self.rotation_failures += 1
            if self._rotate_after is None:
                logger.error(
                    "outbox: cannot rotate %s (%s); its lines are written and it keeps growing "
                    "past outbox_max_bytes; retrying every %.0f s",
                    self.path,
                    exc,
                    ROTATE_RETRY_S,
                    extra={"path": str(self.path), "size": self._size},
                )
            self._rotate_after = _monotonic() + ROTATE_RETRY_S
            return False
        if self._rotate_after is not None:
            logger.info("outbox: rotated %s again", self.path)
            self._rotate_after = None
        try:
            if self._fsync:
                _datasync(closed)
        finally:
            os.close(closed)
        return True

    def _rotate(self) -> int:
        """``outbox.jsonl`` -> ``.1`` (shifting the older ones), then a new file; with
        ``fsync`` (the sink's thread) the old file is synced before it is closed (by
        :meth:`_try_rotate`: returns the old file's descriptor, still open)."""
        p = str(self.path)
        # the shift stops at the first free place of .1 .. .keep, deleting nothing: a crash
        # inside an earlier rotation (after its shift, before its rename) left a gap there,
        # and .keep was deleted while fewer than keep rotated files were kept
        top = next((k for k in range(1, self.keep + 1) if not os.path.exists(f"{p}.{k}")), None)
        if top is None:
            top = self.keep
            oldest = f"{p}.{self.keep}"
            size = os.stat(oldest).st_size
            os.unlink(oldest)
            self.deleted_files += 1
            self.deleted_bytes += size
            logger.warning(
                "outbox rotation deleted %s (%d bytes of delivered triggers' lines): %d "
                "rotated files are kept (outbox_keep); a reader not done with it has lost them",
                oldest,
                size,
                self.keep,
            )
        for k in range(top - 1, 0, -1):
            os.rename(f"{p}.{k}", f"{p}.{k + 1}")
        os.rename(p, f"{p}.1")
        old, self._fd, self._size = self._fd, self._open(), 0
        self.rotations += 1
        return old

    def _durable(self, seq: int) -> asyncio.Future[None]:
        """A future done once line ``seq`` is on disk (or failed with the flush's
        ``OSError``). A flush starts once per event-loop pass (``call_soon``), so every
        line queued during the pass shares it; while one runs on the sink's thread, the
        lines queued meanwhile wait for the next (started when it reports). A future of
        its own per send (not a shield of the flush's): a cancelled send cancels only
        itself, and awaiting it is one future, no coroutine."""
        loop = self._loop
        if loop is None:  # asked once: get_running_loop makes a getpid system call
            loop = self._loop = asyncio.get_running_loop()
        waiter = loop.create_future()
        self._waiters.append((seq, waiter))
        if self._flush is None:
            self._flush = loop.create_future()
            loop.call_soon(self._start_flush, self._flush, loop)
        return waiter

    def _start_flush(self, fut: asyncio.Future[None], loop: asyncio.AbstractEventLoop) -> None:
        """Hand one flush (the lines queued so far) to the sync thread (a plain thread and a
        C queue: cheaper on the loop than an executor future or a condition); it reports
        back with ``call_soon_threadsafe``."""
        self._jobs.put((fut, self._written, self._queued, loop))
        self._queued = []
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._sync_loop, name="scoperouter-outbox", daemon=True
            )
            self._thread.start()

    def _sync_loop(self) -> None:  # the sink's thread
        no_wakeup_preemption()  # woken by a flush job: the loop keeps its CPU (wakeups.py)
        while True:
            job = self._jobs.get()
            if job is None:
                return
            fut, upto, queued, loop = job
            exc: Exception | None = None
            self._covered = 0
            try:
                with self._locked():
                    self._write_all(queued)
                _datasync(self._fd)  # (after a rotation: still the file its lines are in)
            except OSError as e:
                exc = e
            except Exception as e:  # a bug: fail the flush's sends (retried), keep the thread
                logger.exception("outbox: flush failed")
                exc = e
            # failed: the lines a rotation synced before the failure are on disk all the same
            synced = upto if exc is None else upto - len(queued) + self._covered
            with contextlib.suppress(RuntimeError):  # loop closed meanwhile
                loop.call_soon_threadsafe(self._flushed, fut, upto, synced, exc)

    def _write_all(self, queued: list[bytes]) -> None:
        """The sink's thread: append ``queued`` (lines without their newline) in order, one
        ``write`` per run of lines up to the next rotation (a rotation happens after the
        line that crosses ``max_bytes``, as when each send wrote its own line); each
        rotation syncs the file it closes, so the lines before it count as synced
        (``_covered``) even if the flush fails later."""
        if not self.max_bytes:
            if queued:
                self._append(b"\n".join(queued) + b"\n")
            return
        start, size = 0, self._size
        for i, body in enumerate(queued):
            size += len(body) + 1
            if size >= self.max_bytes and self._rotation_due():
                self._append(b"\n".join(queued[start : i + 1]) + b"\n")
                start = i + 1
                if self._try_rotate():  # the new file starts empty
                    self._covered = start
                size = self._size  # (failed: the lines stay in this file, synced after)
        if start < len(queued):
            self._append(b"\n".join(queued[start:]) + b"\n")

    def _flushed(
        self, fut: asyncio.Future[None], upto: int, synced: int, exc: Exception | None
    ) -> None:
        """A flush of the lines up to ``upto`` ended, those up to ``synced`` on disk: the
        sends it covered are done -- on a failure (``exc``) those with a line past
        ``synced`` get its error (a line of theirs may be in the file all the same, written
        but not known synced: sent again, it is a duplicate, as at-least-once allows);
        the sends queued meanwhile (past ``upto``) keep waiting and get the next flush."""
        if self._flush is fut:
            self._flush = None
        synced = self._synced = max(self._synced, synced)
        if exc is None:
            self.flushes += 1
            if not fut.done():
                fut.set_result(None)
        elif not fut.done():
            fut.set_exception(exc)
            fut.exception()  # retrieved: close() may never await it
        left: list[tuple[int, asyncio.Future[None]]] = []
        for seq, w in self._waiters:
            if seq > upto:
                left.append((seq, w))
            elif w.done():  # cancelled: its send was
                continue
            elif seq <= synced:
                w.set_result(None)
            else:
                assert exc is not None  # (a flush that ended well synced up to upto)
                w.set_exception(exc)
        self._waiters = left
        if left and self._flush is None and self._loop is not None:
            self._flush = self._loop.create_future()
            self._loop.call_soon(self._start_flush, self._flush, self._loop)

    async def close(self) -> None:
        if self._flush is not None:
            with contextlib.suppress(OSError):
                await asyncio.shield(self._flush)
        if self._thread is not None:
            self._jobs.put(None)
            self._thread.join(10)
            self._thread = None
        if self._fd >= 0:
            os.close(self._fd)
        self._fd = -1
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
        self._lock_fd = -1


def _tail_fragment(fd: int, chunk: int = 65536) -> int:
    """The bytes after the last newline of the file open on ``fd`` (0: empty, or it ends
    with one)."""
    size = end = os.fstat(fd).st_size
    while end > 0:
        start = max(0, end - chunk)
        nl = os.pread(fd, end - start, start).rfind(b"\n")
        if nl >= 0:
            return size - (start + nl + 1)
        end = start
    return size


def _end_torn_line(fd: int, path: Path) -> int:
    """End a torn last line with a newline so the next line is not glued onto it; returns
    its length (0: none). Checked again just before the write: a concurrent writer's line
    completed meanwhile costs at most an empty line, never a line of its."""
    torn = _tail_fragment(fd)
    if not torn:
        return 0
    size = os.fstat(fd).st_size
    if os.pread(fd, 1, size - 1) == b"\n":  # completed meanwhile (another writer's line)
        return 0
    _write_fully(fd, b"\n")
    logger.warning(
        "outbox: its last line (%d bytes) was torn by a crash; ended it with a newline",
        torn,
        extra={"path": str(path), "torn_bytes": torn},
    )
    return torn


def _write_fully(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _datasync(fd: int) -> None:
    (getattr(os, "fdatasync", None) or os.fsync)(fd)

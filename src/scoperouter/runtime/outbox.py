"""The outbox sink: triggers appended to a JSONL file, one line each.

Invariant: with ``fsync`` a send returns only once a ``fdatasync`` started after its line
was written has completed (on the sink's own thread, never on the event loop); a rotated
file's descriptor is closed only by the flush that covers its last lines.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from pathlib import Path

from scoperouter.errors import DispatchError
from scoperouter.messages.models import Trigger
from scoperouter.runtime.payloads import trigger_bytes


class OutboxSink:
    """Appends to a JSONL file. Each line is written with one ``write`` on an
    ``O_APPEND`` descriptor, so concurrent writers never interleave lines.

    With ``fsync`` a send returns only once its line is on disk (``fdatasync``), so the
    dispatcher's "done" mark that follows never outlives a trigger lost in a power cut.
    Concurrent sends share one ``fdatasync`` (group commit): each flush covers every line
    written before it started, so the cost is per batch, not per trigger. The flush runs on
    the sink's own thread: the event loop keeps serving while the disk syncs.

    Past ``max_bytes`` (0: never) the file rotates: ``outbox.jsonl`` becomes
    ``outbox.jsonl.1`` (``.1`` -> ``.2`` ... up to ``keep`` files) and a new one is started;
    a rotated descriptor stays open until a flush has covered its lines."""

    def __init__(
        self, path: Path, *, fsync: bool = False, max_bytes: int = 0, keep: int = 3
    ) -> None:
        self.path = path
        self.name = f"outbox:{path}"
        self._fsync = fsync
        self.max_bytes = max_bytes
        self.keep = max(1, keep)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = self._open()
        self._size = os.fstat(self._fd).st_size
        self._retired: list[int] = []  # rotated descriptors a flush has yet to cover
        self._written = 0  # lines written
        self._synced = 0  # lines known to be on disk
        self._flush: asyncio.Future[None] | None = None
        self._cond = threading.Condition()
        self._job: tuple[asyncio.Future[None], int, list[int], asyncio.AbstractEventLoop] | None
        self._job = None
        self._stop = False
        self._thread: threading.Thread | None = None
        self.flushes = 0
        self.rotations = 0

    def _open(self) -> int:
        return os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    async def send(self, trigger: Trigger, *, message_id: str, body: bytes | None = None) -> None:
        line = (body or trigger_bytes(trigger)) + b"\n"
        try:
            os.write(self._fd, line)
            self._written += 1
            self._size += len(line)
            if self.max_bytes and self._size >= self.max_bytes:
                self._rotate()
            if self._fsync:
                await self._durable(self._written)
        except OSError as exc:
            raise DispatchError(
                trigger.processor, self.name, str(exc), trigger_id=trigger.trigger_id
            ) from exc

    def _rotate(self) -> None:
        """``outbox.jsonl`` -> ``.1`` (shifting the older ones), then a new file."""
        p = str(self.path)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"{p}.{self.keep}")
        for k in range(self.keep - 1, 0, -1):
            with contextlib.suppress(FileNotFoundError):
                os.rename(f"{p}.{k}", f"{p}.{k + 1}")
        os.rename(p, f"{p}.1")
        old, self._fd, self._size = self._fd, self._open(), 0
        self.rotations += 1
        if self._fsync:
            self._retired.append(old)  # closed by the flush that covers its lines
        else:
            os.close(old)

    async def _durable(self, seq: int) -> None:
        """Wait until line ``seq`` is on disk. A flush starts once per event-loop pass
        (``call_soon``), so every line written during the pass shares it; while one runs
        on the sink's thread, the lines written meanwhile wait for the next."""
        loop = asyncio.get_running_loop()
        while self._synced < seq:
            if self._flush is None:
                self._flush = loop.create_future()
                loop.call_soon(self._start_flush, self._flush)
            await asyncio.shield(self._flush)

    def _start_flush(self, fut: asyncio.Future[None]) -> None:
        """Hand one flush to the sync thread (a plain thread and a condition: cheaper on
        the loop than an executor future); it reports back with ``call_soon_threadsafe``."""
        job = (fut, self._written, [*self._retired, self._fd], asyncio.get_running_loop())
        self._retired = []
        with self._cond:
            self._job = job
            self._cond.notify()
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._sync_loop, name="scoperouter-outbox", daemon=True
            )
            self._thread.start()

    def _sync_loop(self) -> None:  # the sink's thread
        while True:
            with self._cond:
                while self._job is None and not self._stop:
                    self._cond.wait()
                job, self._job = self._job, None
            if job is None:
                return
            fut, upto, fds, loop = job
            exc: OSError | None = None
            try:
                _sync_all(fds)
            except OSError as e:
                exc = e
            with contextlib.suppress(RuntimeError):  # loop closed meanwhile
                loop.call_soon_threadsafe(self._flushed, fut, upto, exc)

    def _flushed(self, fut: asyncio.Future[None], upto: int, exc: OSError | None) -> None:
        if self._flush is fut:
            self._flush = None
        if exc is not None:
            if not fut.done():
                fut.set_exception(exc)
            return
        self._synced = max(self._synced, upto)
        self.flushes += 1
        if not fut.done():
            fut.set_result(None)

    async def close(self) -> None:
        if self._flush is not None:
            with contextlib.suppress(OSError):
                await asyncio.shield(self._flush)
        if self._thread is not None:
            with self._cond:
                self._stop = True
                self._cond.notify()
            self._thread.join(10)
            self._thread = None
        for fd in [*self._retired, self._fd]:
            if fd >= 0:
                os.close(fd)
        self._retired, self._fd = [], -1


def _sync_all(fds: list[int]) -> None:
    """``fdatasync`` each descriptor (the sink's thread); rotated ones are closed after."""
    *retired, current = fds
    for fd in retired:
        try:
            _datasync(fd)
        finally:
            os.close(fd)
    _datasync(current)


def _datasync(fd: int) -> None:
    (getattr(os, "fdatasync", None) or os.fsync)(fd)

"""Jobs on the router's state thread, awaited from the event loop.

Invariant: a job submitted runs to its end, in submission order (the state thread is the
one worker of its :class:`StateThread`), whether or not its caller still waits: a caller
cancelled (a stop) only stops waiting. One asyncio future per job, answered from the state
thread with ``call_soon_threadsafe`` -- no executor future chained to it and no shield
around it (what ``run_in_executor`` + ``asyncio.shield`` cost on the event loop per job).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

_T = TypeVar("_T")
logger = logging.getLogger("scoperouter.runtime")


class Executor(Protocol):
    """What :func:`in_state` needs of an executor (a :class:`StateThread`, or a
    ``concurrent.futures`` executor)."""

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Any: ...


class StateThread:
    """One worker thread running submitted calls in submission order: a
    ``ThreadPoolExecutor(max_workers=1)`` without its per-call future, locks and
    thread-count check (about 10 us of the event loop's time per job). A call's exception
    is logged (:func:`in_state`'s jobs hand theirs to their caller themselves)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._jobs: queue.SimpleQueue[tuple[Callable[..., Any], tuple[Any, ...]] | None] = (
            queue.SimpleQueue()
        )
        self._thread: threading.Thread | None = None
        self._shutdown = False

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> None:
        """Queue ``fn(*args)``; RuntimeError after :meth:`shutdown` (as an executor)."""
        if self._shutdown:
            raise RuntimeError("cannot schedule new jobs after shutdown")
        self._jobs.put((fn, args))
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()

    def _run(self) -> None:
        jobs = self._jobs
        while True:
            job = jobs.get()
            if job is None:
                return
            fn, args = job
            try:
                fn(*args)
            except BaseException:
                logger.exception("state thread: a job raised")

    def shutdown(self, wait: bool = True) -> None:
        """No new jobs; the queued ones still run; ``wait``: until the last has ended."""
        if not self._shutdown:
            self._shutdown = True
            self._jobs.put(None)
        thread = self._thread
        if wait and thread is not None and thread is not threading.current_thread():
            thread.join()


async def in_state(
    loop: asyncio.AbstractEventLoop, executor: Executor, fn: Callable[..., _T], *args: Any
) -> _T:
    """``fn(*args)`` on ``executor``'s thread; its result or its exception (``loop``: the
    running loop, passed in: asking asyncio for it costs a ``getpid`` system call)."""
    fut: asyncio.Future[_T] = loop.create_future()
    executor.submit(_run_job, loop, fut, fn, args)
    return await fut


def _run_job(
    loop: asyncio.AbstractEventLoop, fut: asyncio.Future[Any], fn: Callable[..., Any], args: Any
) -> None:
    """State thread: run one job, answer its future on the loop."""
    try:
        result = fn(*args)
    except BaseException as exc:  # handed to the awaiting caller
        _answer(loop, fut, _fail, exc)
    else:
        _answer(loop, fut, _succeed, result)


def _answer(
    loop: asyncio.AbstractEventLoop,
    fut: asyncio.Future[Any],
    how: Callable[[asyncio.Future[Any], Any], None],
    value: Any,
) -> None:
    with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody waits
        loop.call_soon_threadsafe(how, fut, value)


def _succeed(fut: asyncio.Future[Any], result: Any) -> None:
    if not fut.done():  # its caller was cancelled (a stop): nobody waits for it
        fut.set_result(result)


def _fail(fut: asyncio.Future[Any], exc: BaseException) -> None:
    if not fut.done():
        fut.set_exception(exc)

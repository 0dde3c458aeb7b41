"""Jobs on the router's state thread, awaited from the event loop.

Invariant: a job submitted runs to its end, in submission order (the state thread is the
one worker of its executor), whether or not its caller still waits: a caller cancelled (a
stop) only stops waiting. One asyncio future per job, answered from the state thread with
``call_soon_threadsafe`` -- no executor future chained to it and no shield around it (what
``run_in_executor`` + ``asyncio.shield`` cost on the event loop per job).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any, TypeVar

_T = TypeVar("_T")


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

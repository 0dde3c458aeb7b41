"""A source that stops waiting (its task cancelled) after submitting: the queued event
still commits and dispatches once; it is never answered, so its source redelivers it,
and the redelivery is a duplicate."""

from __future__ import annotations

import asyncio
import contextlib

from runtime_support import MemorySink, RouterFactory, game_day_stream

from scoperouter.processor_registry.loader import LoadedConfig
from scoperouter.runtime.router import Inbound

STREAM = game_day_stream(40)


async def test_cancelled_submit_still_commits(
    zero_cfg: LoadedConfig, make_router: RouterFactory
) -> None:
    """Cancelling submit() after it queued the event neither loses nor repeats it."""
    sink = MemorySink()
    r = make_router(zero_cfg, sink)
    await r.start()
    ev = next(e for e in STREAM if "event_id" in e)
    task = asyncio.create_task(r.submit(Inbound("test", obj=ev)))
    for _ in range(100):  # until it is queued
        if r._unfinished:
            break
        await asyncio.sleep(0)
    assert r._unfinished == 1
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert task.cancelled()
    assert await r.idle()
    assert len(sink.received) >= 1
    assert len({t.trigger_id for t in sink.received}) == len(sink.received)
    again = await r.submit(Inbound("test", obj=ev))
    assert (again.status, again.event_id) == ("duplicate", ev["event_id"])

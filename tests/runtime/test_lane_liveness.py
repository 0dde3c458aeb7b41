"""The dispatcher never reports quiet while work it knows of is unfinished: outcome marks
still being written, a page still out, or a lane's row waiting due in the store (driven
step by step: no sleeps, no wall clock)."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from runtime_support import RouterFactory, load, write_registry

from scoperouter.runtime.marks import Done

SPINS = 50  # event-loop turns that let a task run as far as it can without the state thread


async def test_idle_waits_for_marks_a_state_job_is_still_writing(
    tmp_path: Path, make_router: RouterFactory
) -> None:
    """idle() returns only once outcome marks taken by an earlier job (the mark flusher's write) are in the store."""
    r = make_router(load(write_registry(tmp_path / "r", default_target={"outbox": {}})))
    with r.store.transaction():
        row = r.store.insert_trigger("t1", "p", "{}", 1.0)
    gate = threading.Event()
    r._state.submit(gate.wait)  # the state thread is busy: jobs queue behind this one
    r.marks.append(Done(row, 1, 2.0))
    flusher = asyncio.create_task(r._flush_marks())  # takes the mark; its write waits
    idle = asyncio.create_task(r.idle(timeout=60))
    for _ in range(SPINS):
        await asyncio.sleep(0)
    early = idle.done()
    counts_then = r.store.trigger_counts()
    gate.set()
    assert await idle
    await flusher
    assert not early, f"idle() returned while the mark was unwritten: {counts_then}"
    assert r.store.trigger_counts() == {"done": 1}

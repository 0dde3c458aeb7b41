"""Rows a replica fired and leased to itself are dispatched even when a store call made
after the commit that fired them fails (a connection lost right after it, a failover).

The window timer's fire commits the fired triggers leased to this replica and enters them
in its lease book, then asks the store again (the next deadline, the open-window gauge's
count); an ingest batch on the single-instance store counts the open windows after its
commit. When that later call raised, the committed rows never reached the dispatcher --
yet the lease keeper went on renewing every row in the book: no replica could rescue
them, and the triggers were never sent while this replica lived (a graceful stop gave them
back; a restart on SQLite rescued them)."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable
from typing import Any

import pytest
from runtime_support import MemorySink
from test_shared_router import CALM, Factory, make_shared, slow_cfg  # noqa: F401  (fixtures)

from scoperouter.processor_registry.loader import LoadedConfig
from scoperouter.runtime.router import Inbound
from scoperouter.runtime.shared_router import SharedRouter

T = 1_763_000_000.0


async def _until(cond: Callable[[], bool], what: str) -> None:
    for _ in range(1500):
        if cond():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def _fail_once_after(r: SharedRouter, commit: str, then: str) -> list[int]:
    """The store's ``then`` raises once, the first time it is called after a ``commit`` that
    leased rows here (returned or fired): a connection lost just after that commit. Returns
    a list that counts the failures."""
    state: Any = r.state
    real_commit, real_then = getattr(state, commit), getattr(state, then)
    armed, failed = [False], [0]

    def commit_(*args: Any, **kwargs: Any) -> Any:
        out = real_commit(*args, **kwargs)
        if not failed[0] and (out if commit == "fire_due" else out.fired):
            armed[0] = True
        return out

    def then_(*args: Any, **kwargs: Any) -> Any:
        if armed[0]:
            armed[0] = False
            failed[0] += 1
            raise OSError("server closed the connection unexpectedly")
        return real_then(*args, **kwargs)

    setattr(state, commit, commit_)
    setattr(state, then, then_)
    return failed


def _elsewhen(i: int) -> dict[str, Any]:
    """An event opening a window no other event here touches (a date of its own)."""
    return copy.deepcopy(CALM[0]) | {"event_id": f"elsewhen-{i}", "game_date": f"2020-01-0{i}"}


@pytest.mark.parametrize("then", ["next_deadline", "open_window_count"])
async def test_rows_fired_by_the_timer_are_sent_when_a_later_call_fails(
    slow_cfg: LoadedConfig,  # noqa: F811
    make_shared: Factory,  # noqa: F811
    then: str,
) -> None:
    """The timer's fire committed; the store call after it failed: its rows are sent."""
    now, sink = [T], MemorySink()
    r = make_shared(slow_cfg, sink, clock=lambda: now[0])
    await r.start()
    outs = await asyncio.gather(*(r.submit(Inbound("test", obj=e)) for e in CALM[:20]))
    assert {o.status for o in outs} == {"accepted"}
    now[0] += 3000.0
    later = await r.submit(Inbound("test", obj=_elsewhen(1)))  # a window due at T + 6600
    assert later.status == "accepted"
    assert not sink.received  # hour-long windows: nothing fired yet
    failed = _fail_once_after(r, "fire_due", then)
    # the first windows due, the later one still open (so the gauge counts: 30 s passed)
    now[0] += 1000.0
    await _until(lambda: failed[0] == 1, f"a failed {then} after the fire")
    rows = await r._in_state(r.state.outbox_rows)
    assert rows, "the fire committed no trigger"
    # (the clock stands still: no lease runs out, no rescue can hand them on)
    await _until(lambda: len(sink.received) >= len(rows), "the fired triggers sent")
    assert sorted(t.trigger_id for t in sink.received) == sorted(x.trigger_id for x in rows)


@pytest.mark.parametrize("location", ["sqlite"], indirect=True)  # PostgreSQL: no count there
async def test_rows_fired_by_an_ingest_are_sent_when_the_count_after_it_fails(
    slow_cfg: LoadedConfig,  # noqa: F811
    make_shared: Factory,  # noqa: F811
) -> None:
    """A batch whose critical event fired a window committed; counting the open windows
    after it failed (the single-instance store counts after every batch): its trigger is
    sent."""
    now, sink = [T], MemorySink()
    r = make_shared(slow_cfg, sink, clock=lambda: now[0])
    assert not r.state.shared
    await r.start()
    opened = await r.submit(Inbound("test", obj=_elsewhen(1)))  # stays open: counted after
    assert opened.status == "accepted"
    failed = _fail_once_after(r, "ingest", "open_window_count")
    ev = _elsewhen(2) | {"priority": "critical"}
    await r.submit(Inbound("test", obj=ev))
    assert failed[0] == 1
    rows = await r._in_state(r.state.outbox_rows)
    assert rows, "the critical event fired nothing"
    await _until(lambda: len(sink.received) >= len(rows), "the fired trigger sent")
    assert sorted(t.trigger_id for t in sink.received) == sorted(x.trigger_id for x in rows)

"""The window timer's firing takes the processors with rows left to their lanes
(``DurableWindows.take_waiting``) inside its state-thread job: ``DurableWindows.waiting`` is
written by ``persist`` on the state thread, so a take on the event loop could lose an add
made between its sort and its clear (the row then waited for its lane's next page)."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
from runtime_support import INJURY_EVENT, MemorySink, RouterFactory, load, write_registry

from scoperouter.runtime.router import Inbound


async def test_fire_due_takes_the_waiting_processors_on_the_state_thread(
    tmp_path: Path, make_router: RouterFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """fire_due takes the waiting list in its state job and tells the dispatcher of it."""
    cfg = load(write_registry(tmp_path, quiet="30s", max_wait="2m"))
    now = [1_000_000.0]
    r = make_router(cfg, MemorySink(), clock=lambda: now[0])
    await r.start()
    out = await r.submit(Inbound("test", data=json.dumps(INJURY_EVENT).encode()))
    assert out.status == "accepted"
    assert r.book.open_count > 0

    windows = r.windows
    fire, take = windows.fire_due, windows.take_waiting
    took_on: list[int] = []
    told: list[list[str]] = []

    def fire_due(*args: Any) -> Any:
        res = fire(*args)
        windows.waiting.add("left_to_its_lane")  # as persist does for a paged re-dispatch
        return res

    def take_waiting() -> list[str]:
        took_on.append(threading.get_ident())
        return take()

    rows_waiting = r.dispatcher.rows_waiting

    def record(processors: list[str]) -> int:
        told.append(list(processors))
        return rows_waiting([p for p in processors if p != "left_to_its_lane"])

    monkeypatch.setattr(windows, "fire_due", fire_due)
    monkeypatch.setattr(windows, "take_waiting", take_waiting)
    monkeypatch.setattr(r.dispatcher, "rows_waiting", record)
    now[0] += 200.0
    assert await r.fire_due() > 0
    assert took_on and threading.get_ident() not in took_on  # never on the event loop
    assert ["left_to_its_lane"] in told
    assert windows.waiting == set()
    assert await r.idle()
    await r.stop()

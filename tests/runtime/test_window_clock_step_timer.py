"""The daemon's window timer fires a window its wall clock, stepped back since, left ahead of
``now`` (at once, not after the step): the timer asks the windows with the clock it reads
then, not with the deadline of the last commit."""

from __future__ import annotations

from pathlib import Path

import pytest
from runtime_support import INJURY_EVENT, MemorySink, RouterFactory, load, write_registry

from scoperouter.runtime.router import Inbound

T = 5_000_000.0


@pytest.mark.parametrize(
    ("ahead", "after", "fires"),
    [
        (86400.0, 15.0, True),  # a day ahead, corrected: fires at once
        (3600.0, 15.0, True),
        (0.0, 15.0, False),  # no step: quiet (30 s) not over yet
        (0.0, 200.0, True),
    ],
)
async def test_timer_fires_a_window_left_ahead_by_a_clock_step(
    tmp_path: Path, make_router: RouterFactory, ahead: float, after: float, fires: bool
) -> None:
    """fire_due at the corrected clock fires the window opened while the clock was ahead."""
    cfg = load(write_registry(tmp_path, quiet="30s", max_wait="2m"))
    now = [T + ahead]
    sink = MemorySink()
    r = make_router(cfg, sink, clock=lambda: now[0])
    await r.start()
    next(t for t in r._background if t.get_name() == "windows").cancel()  # fired by hand
    assert (await r.submit(Inbound("test", obj=INJURY_EVENT))).status == "accepted"
    opened = r.book.open_count
    now[0] = T + after
    assert (await r.fire_due() == opened) == fires
    assert r.book.open_count == (0 if fires else opened)
    await r.stop()

"""The daemon's window timer fires a window its wall clock, stepped back since, left ahead of
``now`` (at once, not after the step): the timer asks the windows with the clock it reads
then, not with the deadline of the last commit -- on the snapshot + journal store, and on
the per-window SQLite and PostgreSQL stores (whose earliest deadline is still to come: the
store says it may hold such a window, StateStore.may_hold_ahead)."""

from __future__ import annotations

from pathlib import Path

import pytest
from runtime_support import (
    GAME_DAY,
    INJURY_EVENT,
    MemorySink,
    RouterFactory,
    load,
    stop_routers,
    write_registry,
)

from scoperouter.runtime.router import Inbound, RouterOptions
from scoperouter.runtime.shared_router import SharedRouter
from scoperouter.state import StoreOptions, open_state_store

T = 5_000_000.0


STEPS = [
    (86400.0, 15.0, True),  # a day ahead, corrected: fires at once
    (3600.0, 15.0, True),
    (0.0, 15.0, False),  # no step: quiet (30 s) not over yet
    (0.0, 200.0, True),
]


@pytest.mark.parametrize(("ahead", "after", "fires"), STEPS)
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


@pytest.mark.parametrize(("ahead", "after", "fires"), STEPS)
async def test_shared_store_fires_a_window_left_ahead_by_a_clock_step(
    tmp_path: Path, location: str, ahead: float, after: float, fires: bool
) -> None:
    """The per-window stores' poll fires a window left ahead, its deadline still to come."""
    cfg = load(write_registry(tmp_path / "cfg", quiet="30s", max_wait="2m"))
    now = [T + ahead]
    st = open_state_store(location, StoreOptions(owner="a", date_field=cfg.registry.date_field))
    sinks = {p: MemorySink() for p in cfg.registry.processors}
    options = RouterOptions(as_of=GAME_DAY)
    r = SharedRouter(cfg.registry, cfg.relations, st, sinks, options=options, clock=lambda: now[0])
    try:
        await r.start()
        next(t for t in r._background if t.get_name() == "windows").cancel()  # fired by hand
        assert (await r.submit(Inbound("test", obj=INJURY_EVENT))).status == "accepted"
        opened = st.open_window_count()
        now[0] = T + after
        assert (await r.fire_due() == opened) == fires
    finally:
        await stop_routers([r])

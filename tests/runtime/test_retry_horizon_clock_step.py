"""The retry horizon is measured with the wall clock bounded by monotonic time (the
dispatcher's ``horizon_clock``, a :class:`~scoperouter.runtime.bounded_clock.BoundedClock`
like housekeeping's): a wall clock stepped forward past the horizon (NTP correcting a host
that booted with a stale clock) must not dead-letter, seconds later, triggers that failed
once -- neither on their next attempt nor by the lane's sweep; real hours past the horizon
still do. Journal store (``serve`` on a state dir), SQLite and PostgreSQL state stores;
the wall clock and the dispatcher's monotonic time are injected, the sink is always down."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from runtime_support import GAME_DAY, game_day_stream, load, seeded_clock, write_registry
from test_outage import Switch

from scoperouter.processor_registry.loader import LoadedConfig
from scoperouter.runtime.router import Inbound, Router, RouterOptions
from scoperouter.runtime.shared_router import SharedRouter
from scoperouter.state import StoreOptions, open_state_store

T, HOUR = 1_763_575_500.0, 3600.0  # 2025-11-19T18:05Z; the default retry_horizon is 24 h
# the breaker never opens (every row is retried on its own), backoff short
OPTS: dict[str, Any] = {
    "backoff_base_s": 0.01,
    "backoff_cap_s": 0.02,
    "breaker_threshold": 10**6,
    "pump_interval_s": 0.02,
}

# (case, wall clock after the first attempts, monotonic seconds since the start, dead-lettered)
STEP_CASES = [
    ("stepped_forward_25h_5s_later", T + 25 * HOUR, 5.0, False),
    ("stepped_forward_9_days_5s_later", T + 9 * 24 * HOUR, 5.0, False),
    ("stepped_back_2h_25_real_hours_later", T + 23 * HOUR, 25 * HOUR, False),
    ("25_real_hours_later", T + 25 * HOUR, 25 * HOUR, True),
]
IDS = [c[0] for c in STEP_CASES]


# (case, (wall, monotonic) of each call after the seed at (T, 0), with a horizon of 100 s,
# the times horizon_now measures back from)
CATCH_UP_CASES = [
    ("in_step", [(T + 50, 50), (T + 150, 150)], [T + 50, T + 150]),
    ("drift_within_the_slack", [(T + 50.5, 50)], [T + 50]),
    # a forward step: bounded for a horizon, then the wall clock (rows stamped before the
    # step are past the horizon by then; those after it are aged by the wall clock again)
    (
        "stepped_forward_then_a_horizon",
        [(T + 1005, 5), (T + 1104, 104), (T + 1106, 106)],
        [T + 5, T + 104, T + 1106],
    ),
    (
        "a_second_step_restarts_the_wait",
        [(T + 1005, 5), (T + 2055, 55), (T + 2106, 106), (T + 2156, 156)],
        [T + 5, T + 55, T + 106, T + 2156],
    ),
    (
        "stepped_back_part_of_the_way_keeps_the_wait",
        [(T + 1005, 5), (T + 555, 55), (T + 606, 106)],
        [T + 5, T + 55, T + 606],
    ),
    ("stepped_back_is_followed", [(T - 3595, 5), (T - 3400, 200)], [T - 3595, T - 3400]),
]


@pytest.mark.parametrize(
    ("case", "calls", "want"), CATCH_UP_CASES, ids=[c[0] for c in CATCH_UP_CASES]
)
def test_horizon_now_is_bounded_until_a_steady_lag_lasted_a_horizon(
    case: str, calls: list[tuple[float, float]], want: list[float]
) -> None:
    """Never ahead of monotonic time, until a step forward is a horizon old."""
    clock, mono = seeded_clock("retry horizons", T)
    got = []
    for wall, m in calls:
        mono[0] = m
        got.append(clock.horizon_now(wall, 100.0))
    assert got == want


@pytest.fixture(scope="module")
def horizon_cfg(tmp_path_factory: pytest.TempPathFactory) -> LoadedConfig:
    """Zero-length windows, outbox targets with the default retry_horizon (24 h)."""
    return load(write_registry(tmp_path_factory.mktemp("horizon")))


async def _step(r: Router | SharedRouter, sink: Switch, t: list[float], mono: list[float],
                wall: float, elapsed: float) -> tuple[int, float]:  # fmt: skip
    """Fire triggers, let each fail once, step the clocks, let the dispatcher act: the
    triggers fired and those dead-lettered for the horizon."""
    r.dispatcher.horizon_clock.monotonic = lambda: mono[0]
    await r.start()
    outs = await asyncio.gather(*(r.submit(Inbound("test", obj=e)) for e in game_day_stream()[:5]))
    fired = sum(o.triggers for o in outs)
    assert fired > 0
    for _ in range(500):
        if sink.calls >= fired:
            break
        await asyncio.sleep(0.01)
    assert sink.calls >= fired  # every trigger failed once; its retry waits for the clock
    t[0], mono[0] = wall, elapsed
    dead = r.metrics.dead_lettered.labels("trigger", "retry_horizon")
    for _ in range(1000):  # retried (after the sweep that page carried), or dead
        if sink.calls >= 2 * fired or dead._value.get() >= fired:
            break
        await asyncio.sleep(0.01)
    return fired, dead._value.get()


@pytest.mark.parametrize(("case", "wall", "elapsed", "dead"), STEP_CASES, ids=IDS)
async def test_clock_step_keeps_the_retry_horizon_on_the_journal_store(
    horizon_cfg: LoadedConfig,
    make_router: Callable[..., Router],
    case: str,
    wall: float,
    elapsed: float,
    dead: bool,
) -> None:
    """A forward step retries the triggers; real hours past the horizon end them."""
    t, mono, sink = [T], [0.0], Switch()
    r = make_router(horizon_cfg, sink, clock=lambda: t[0], **OPTS)
    fired, letters = await _step(r, sink, t, mono, wall, elapsed)
    assert letters == (fired if dead else 0)
    if not dead:
        assert sink.calls >= 2 * fired


@pytest.fixture
async def make_state_router(location: str) -> AsyncIterator[Callable[..., SharedRouter]]:
    """A router on the state location, with OPTS and an injected wall clock."""
    made: list[SharedRouter] = []

    def factory(cfg: LoadedConfig, sink: Switch, clock: Callable[[], float]) -> SharedRouter:
        st = open_state_store(
            location, StoreOptions(owner="a", date_field=cfg.registry.date_field), sync="normal"
        )
        r = SharedRouter(
            cfg.registry,
            cfg.relations,
            st,
            {p: sink for p in cfg.registry.processors},
            options=RouterOptions(as_of=GAME_DAY, **OPTS),
            poll_interval_s=0.02,
            clock=clock,
        )
        made.append(r)
        return r

    yield factory
    for r in made:
        await r.stop(timeout=1.0)
        r._state.shutdown(wait=True)
        r.state.close()


@pytest.mark.parametrize(("case", "wall", "elapsed", "dead"), STEP_CASES, ids=IDS)
async def test_clock_step_keeps_the_retry_horizon_on_a_state_store(
    horizon_cfg: LoadedConfig,
    make_state_router: Callable[..., SharedRouter],
    case: str,
    wall: float,
    elapsed: float,
    dead: bool,
) -> None:
    """The same on the SQLite and PostgreSQL state stores (``serve --state``)."""
    t, mono, sink = [T], [0.0], Switch()
    r = make_state_router(horizon_cfg, sink, lambda: t[0])
    fired, letters = await _step(r, sink, t, mono, wall, elapsed)
    assert letters == (fired if dead else 0)
    if not dead:
        assert sink.calls >= 2 * fired

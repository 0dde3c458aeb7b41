"""Housekeeping measures its horizons back from the wall clock bounded by monotonic time
(bounded_clock.BoundedClock): a wall clock stepped forward past the dedup horizon (NTP
correcting a host that booted with a stale clock) must not prune the seen id of an event
accepted seconds ago -- its Pub/Sub redelivery would be routed again and fire its triggers
twice -- nor a rejected event's dead letter inside its retention. Journal store, SQLite and
PostgreSQL state stores; monotonic time injected, nothing sleeps."""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable

import pytest
from runtime_support import INJURY_EVENT, MemorySink, seeded_clock
from test_shared_router import CALM, Factory, make_shared, slow_cfg  # noqa: F401  (fixtures)

from scoperouter.processor_registry.loader import LoadedConfig
from scoperouter.runtime import housekeeping
from scoperouter.runtime.bounded_clock import CLOCK_STEP_WARN_S
from scoperouter.runtime.options import RouterOptions
from scoperouter.runtime.router import Inbound, Router

T, DAY = 1_763_575_500.0, 86400.0  # 2025-11-19T18:05Z

# (case, (wall, monotonic) of each pass after the seed at (T, 0), the prune times expected)
CLOCK_CASES = [
    ("in_step", [(T + 60, 60), (T + 120, 120)], [T + 60, T + 120]),
    ("stepped_forward_two_days", [(T + 5 + 2 * DAY, 5), (T + 65 + 2 * DAY, 65)], [T + 5, T + 65]),
    (
        "stepped_back_an_hour",
        [(T + 5 - 3600, 5), (T + 65 - 3600, 65)],
        [T + 5 - 3600, T + 65 - 3600],
    ),
    ("monotonic_ahead_of_a_slow_wall", [(T + 50, 60)], [T + 50]),
    (
        "forward_then_back_again",
        [(T + 5 + DAY, 5), (T + 10, 10), (T + 70, 70)],
        [T + 5, T + 10, T + 70],
    ),
]


@pytest.mark.parametrize(("case", "passes", "want"), CLOCK_CASES, ids=[c[0] for c in CLOCK_CASES])
def test_prune_clock_never_runs_ahead_of_monotonic_time(
    case: str, passes: list[tuple[float, float]], want: list[float]
) -> None:
    """Each pass's prune time is min(wall, last + monotonic elapsed)."""
    clock, mono = seeded_clock("housekeeping", T)
    got = []
    for wall, m in passes:
        mono[0] = m
        got.append(clock(wall))
    assert got == want


# (case, (wall, monotonic) of each pass after the seed at (T, 0), the prune times expected);
# the options' longest horizon is 7 days (done_retention, dead-letter retention)
CATCH_UP_CASES = [
    # a two-day step: measured by monotonic time until the step is 7 days old, then the
    # wall clock again (a row stamped before the step is then past every horizon anyway)
    (
        "caught_up_after_the_longest_horizon",
        [
            (T + 2 * DAY + 60, 60),
            (T + 2 * DAY + 7 * DAY, 7 * DAY),
            (T + 9 * DAY + 120, 7 * DAY + 120),
        ],
        [T + 60, T + 7 * DAY, T + 9 * DAY + 120],
    ),
    # a day (the dedup horizon) is not enough: done rows and dead letters keep 7 days
    (
        "not_after_the_shortest",
        [(T + 2 * DAY + 60, 60), (T + 3 * DAY + 120, DAY + 120)],
        [T + 60, T + DAY + 120],
    ),
]


@pytest.mark.parametrize(
    ("case", "passes", "want"), CATCH_UP_CASES, ids=[c[0] for c in CATCH_UP_CASES]
)
def test_prune_now_catches_up_once_a_step_is_the_longest_horizon_old(
    case: str, passes: list[tuple[float, float]], want: list[float]
) -> None:
    """housekeeping.prune_now follows the bounded clock until a forward step is as old as the longest retention, then the wall clock."""
    clock, mono = seeded_clock("housekeeping", T)
    options = RouterOptions()
    assert (
        max(options.dedup_horizon_s, options.done_retention_s, options.dead_letter_retention_s)
        == 7 * DAY
    )
    got = []
    for wall, m in passes:
        mono[0] = m
        got.append(housekeeping.prune_now(clock, options, wall))
    assert got == want


def test_prune_clock_warns_once_when_the_clocks_disagree(caplog: pytest.LogCaptureFixture) -> None:
    """A disagreement past CLOCK_STEP_WARN_S is one WARNING, however many passes see it."""
    caplog.set_level(logging.WARNING, "scoperouter.runtime")
    clock, mono = seeded_clock("housekeeping", T)
    for k in range(1, 4):
        mono[0] = 10.0 * k
        clock(T + 10.0 * k + (CLOCK_STEP_WARN_S - 1 if k == 1 else 2 * DAY))
    warned = [r for r in caplog.records if "monotonic time" in r.getMessage()]
    assert len(warned) == 1 and clock.warned


# (case, wall clock step before the pass, monotonic seconds elapsed, seen id and dead letter kept)
STEP_CASES = [
    ("stepped_forward_two_days_5s_later", 2 * DAY + 5.0, 5.0, True),
    ("stepped_forward_eight_days_5s_later", 8 * DAY + 5.0, 5.0, True),
    ("eight_real_days_later", 8 * DAY, 8 * DAY, False),
]

_POISON = Inbound("push", data=b"not json", message_id="m-1", dead_letter_on_reject=True)


@pytest.mark.parametrize(
    ("case", "step", "elapsed", "kept"), STEP_CASES, ids=[c[0] for c in STEP_CASES]
)
async def test_clock_step_keeps_the_dedup_horizon_on_the_journal_store(
    zero_cfg: LoadedConfig,
    make_router: Callable[..., Router],
    case: str,
    step: float,
    elapsed: float,
    kept: bool,
) -> None:
    """A redelivery after a forward step is a duplicate; after real days it is new again."""
    t, mono = [T], [0.0]
    r = make_router(zero_cfg, MemorySink(), clock=lambda: t[0])
    r.prune_clock.monotonic = lambda: mono[0]
    await r.start()
    assert (await r.submit(Inbound("test", obj=copy.deepcopy(INJURY_EVENT)))).status == "accepted"
    assert (await r.submit(_POISON)).dead_lettered
    t[0] += step
    mono[0] += elapsed
    await r._in_state(r._prune)
    again = await r.submit(Inbound("test", obj=copy.deepcopy(INJURY_EVENT)))
    assert again.status == ("duplicate" if kept else "accepted")
    assert len(r.store.dead_letters()) == (1 if kept else 0)


@pytest.mark.parametrize(
    ("case", "step", "elapsed", "kept"), STEP_CASES, ids=[c[0] for c in STEP_CASES]
)
async def test_clock_step_keeps_the_dedup_horizon_on_a_state_store(
    slow_cfg: LoadedConfig,  # noqa: F811
    make_shared: Factory,  # noqa: F811
    case: str,
    step: float,
    elapsed: float,
    kept: bool,
) -> None:
    """The same on the SQLite and PostgreSQL state stores (``serve --state``)."""
    t, mono = [T], [0.0]
    r = make_shared(slow_cfg, MemorySink(), clock=lambda: t[0])
    r.prune_clock.monotonic = lambda: mono[0]
    await r.start()
    event = next(e for e in CALM if e.get("event_id"))
    assert (await r.submit(Inbound("test", obj=copy.deepcopy(event)))).status == "accepted"
    assert (await r.submit(_POISON)).dead_lettered
    t[0] += step
    mono[0] += elapsed
    await r._in_state(r._prune)
    again = await r.submit(Inbound("test", obj=copy.deepcopy(event)))
    assert again.status == ("duplicate" if kept else "accepted")
    assert len(await r._in_state(r.state.dead_letters)) == (1 if kept else 0)

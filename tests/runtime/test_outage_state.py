"""Issue 18's outage guarantees on a state store -- serve's default (the per-window SQLite
store) and PostgreSQL: a failing target's backlog waits in the store, unleased (memory
and tasks bounded by the in-flight caps), its circuit opens and probes, recovery
redrives it, triggers past the retry horizon become dead letters, a restart with a
backlog starts bounded tasks and logs one line, and ``scoperouter outbox`` redrives or
discards dead triggers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from runtime_support import GAME_DAY, game_day_stream, load, stop_routers, write_registry
from test_outage import FAST, Switch, submit_all, wait_until

from scoperouter.cli import main
from scoperouter.processor_registry.loader import LoadedConfig
from scoperouter.runtime.router import RouterOptions
from scoperouter.runtime.shared_router import SharedRouter
from scoperouter.state import StateStore, StoreOptions, open_state_store
from scoperouter.state.model import Admission, Contribution, Dead, IngestBatch

STREAM = game_day_stream()
Factory = Callable[..., SharedRouter]


@pytest.fixture
async def make_shared(location: str) -> AsyncIterator[Factory]:
    """Routers on one state location (a restart = a second router); stopped at teardown."""
    made: list[SharedRouter] = []

    def factory(cfg: LoadedConfig, sink: Any, owner: str = "a", **options: Any) -> SharedRouter:
        st = open_state_store(
            location, StoreOptions(owner=owner, date_field=cfg.registry.date_field), sync="normal"
        )
        opts = RouterOptions(as_of=GAME_DAY, **{**FAST, **options})
        sinks = {p: sink for p in cfg.registry.processors}
        r = SharedRouter(cfg.registry, cfg.relations, st, sinks, options=opts, poll_interval_s=0.02)
        made.append(r)
        return r

    yield factory
    await stop_routers(made)


async def counts(r: SharedRouter) -> dict[str, int]:
    await r._flush_marks()
    return await r._in_state(r.state.outbox_counts)


async def test_outage_parks_the_backlog_in_the_store_and_redrives_it(
    tmp_path: Path, make_shared: Factory
) -> None:
    """While the target is down nothing dies, tasks stay under the caps and only in-flight rows are leased; back up, every trigger is delivered once."""
    cfg = load(write_registry(tmp_path / "r", default_target={"outbox": {}, "concurrency": 2}))
    sink = Switch()
    r = make_shared(cfg, sink)
    await r.start()
    fired = await submit_all(r, STREAM[:200])
    assert fired > 50
    lanes = len(cfg.registry.processors)
    peak = 0
    for _ in range(40):  # a while of outage: probes fail, nothing dies, tasks stay bounded
        peak = max(peak, len(r.dispatcher.tasks))
        await asyncio.sleep(0.02)
    c = await counts(r)
    assert c.get("dead", 0) == 0 and c.get("pending", 0) + c.get("leased", 0) == fired
    assert peak <= 2 * lanes
    assert c.get("leased", 0) <= 2 * lanes  # the backlog waits unleased, not in this process
    assert len(r._leased) <= 2 * lanes and all(not ln.buffer for ln in r.dispatcher.lanes.values())
    assert any(ln.breaker.state != "closed" for ln in r.dispatcher.lanes.values())
    assert sum(r.metrics.circuit_open.labels(n)._value.get() for n in r.dispatcher.lanes) > 0
    sink.up = True
    assert await r.idle(timeout=30)
    assert await counts(r) == {"done": fired}
    assert len(sink.received) == len(set(sink.received)) == fired
    assert sum(r.metrics.circuit_open.labels(n)._value.get() for n in r.dispatcher.lanes) == 0
    assert sink.max_inflight <= 2 * lanes


async def test_retry_horizon_dead_letters_only_past_it(
    tmp_path: Path, make_shared: Factory
) -> None:
    """A target that never comes back: its triggers become dead letters with reason retry_horizon, not before."""
    cfg = load(
        write_registry(tmp_path / "r", default_target={"outbox": {}, "retry_horizon": "300ms"})
    )
    r = make_shared(cfg, Switch())
    await r.start()
    fired = await submit_all(r, STREAM[:20])
    assert (await counts(r)).get("dead", 0) == 0  # well inside the horizon
    assert await r.idle(timeout=30)
    assert await counts(r) == {"dead": fired}
    letters = [d for d in await r._in_state(r.state.dead_letters) if d.kind == "trigger"]
    assert {d.reason for d in letters} == {"retry_horizon"} and len(letters) == fired


async def test_restart_with_a_backlog_starts_bounded_tasks_and_one_warning(
    tmp_path: Path, make_shared: Factory, caplog: pytest.LogCaptureFixture
) -> None:
    """A restart with many pending triggers creates tasks only up to the caps and logs one restart WARNING, not one per trigger."""
    cfg = load(write_registry(tmp_path / "r", default_target={"outbox": {}, "concurrency": 2}))
    r1 = make_shared(cfg, Switch())
    await r1.start()
    fired = await submit_all(r1, STREAM[:300])
    await r1.stop(timeout=0.2)
    assert r1.state.outbox_counts() == {"pending": fired}  # leases given back at the stop
    r1.state.close()
    hang = Switch(hang=True)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="scoperouter.runtime"):
        r2 = make_shared(cfg, hang, owner="b")
        await r2.start()
        assert await wait_until(lambda: len(r2.dispatcher.tasks) > 0)
        tasks = 0
        for _ in range(15):
            tasks = max(tasks, len(r2.dispatcher.tasks))
            await asyncio.sleep(0.02)
    lanes = len(cfg.registry.processors)
    assert 0 < tasks <= 2 * lanes
    assert len(caplog.records) < 50  # no line per trigger
    if not r2.state.shared:  # a restart of the one instance (replicas have no restart)
        warnings = [x for x in caplog.records if x.getMessage().startswith("restart:")]
        assert len(warnings) == 1 and r2.metrics.redispatched._value.get() == fired
    await r2.stop(timeout=0.2)  # hanging deliveries are cancelled: their rows go back
    assert r2.state.outbox_counts() == {"pending": fired}


async def test_dead_triggers_redrive_and_discard(tmp_path: Path, make_shared: Factory) -> None:
    """Redriven dead triggers are picked up by the running pump and delivered; discarding deletes the rest."""
    cfg = load(write_registry(tmp_path / "r", default_target={"outbox": {}, "max_attempts": 1}))
    sink = Switch()
    r = make_shared(cfg, sink)
    await r.start()
    fired = await submit_all(r, STREAM[:10])
    assert await r.idle(timeout=30)
    assert await counts(r) == {"dead": fired}
    procs = sorted({row.processor for row in await r._in_state(r.state.outbox_rows)})
    n = await r._in_state(r.state.redrive_dead, r.clock(), procs[0])
    assert 0 < n < fired
    sink.up = True
    assert await wait_until(lambda: len(sink.received) == n)  # the pump's sweep picks them up
    assert await r._in_state(r.state.discard_dead) == fired - n
    assert [d for d in await r._in_state(r.state.dead_letters) if d.kind == "trigger"] == []
    assert await r.idle(timeout=30)
    assert await counts(r) == {"done": n}


def _dead_rows(s: StateStore) -> None:
    """Three dead triggers (processors a, a, b) with their dead letters."""
    admissions = tuple(
        Admission(f"e{i}", (Contribution(p, GAME_DAY, f"e{i}", None, True, None, None, "r", 1.0, 1.0, 9, "date"),))
        for i, p in enumerate("aab")
    )  # fmt: skip
    fired = s.ingest(IngestBatch(admissions=admissions), 1.0).fired
    s.apply_marks([Dead(x.item_id, 3, 2.0, "retry_horizon", "boom") for x in fired])


@pytest.mark.parametrize(
    ("argv", "left", "letters"),
    [
        (["list"], {"dead": 3}, 3),
        (["redrive"], {"pending": 3}, 0),
        (["redrive", "--processor", "a"], {"pending": 2, "dead": 1}, 1),
        (["discard"], {}, 0),
        (["discard", "--processor", "b"], {"dead": 2}, 2),
    ],
)
def test_outbox_command_on_the_state_store(
    tmp_path: Path, location: str, argv: list[str], left: dict[str, int], letters: int
) -> None:
    """`scoperouter outbox` lists, redrives or discards dead triggers of serve's default store (--state-dir) or of --state."""
    s = open_state_store(location, sync="normal")
    _dead_rows(s)
    s.close()
    where = (
        ["--state-dir", str(tmp_path)] if location.startswith("sqlite") else ["--state", location]
    )
    assert main(["outbox", *argv, *where]) == 0
    s = open_state_store(location, sync="normal")
    try:
        assert s.outbox_counts() == left
        assert len(s.dead_letters()) == letters
    finally:
        s.close()


async def test_housekeeping_keeps_dead_triggers(tmp_path: Path, make_shared: Factory) -> None:
    """Housekeeping long past every retention prunes delivered triggers but keeps dead ones and their dead letters."""
    cfg = load(write_registry(tmp_path / "r", default_target={"outbox": {}, "max_attempts": 1}))
    now = [1_763_000_000.0]
    r = make_shared(cfg, Switch())
    r.clock = lambda: now[0]
    await r.start()
    fired = await submit_all(r, STREAM[:10])
    assert await r.idle(timeout=30)
    assert await counts(r) == {"dead": fired}
    now[0] += 30 * 86400.0  # a month: past the dedup horizon, done and dead-letter retention
    await r._in_state(r._prune)
    assert await counts(r) == {"dead": fired}
    assert len([d for d in await r._in_state(r.state.dead_letters) if d.kind == "trigger"]) == fired


def test_backlog_parked_while_a_page_is_out_stays_due(zero_cfg: LoadedConfig) -> None:
    """A breaker opening while a page is out parks the lane's paged rows (Release marks) and keeps the lane due when that page answers 'no more'."""
    import random

    from scoperouter.runtime import lanes
    from scoperouter.runtime.backlog import LanePage
    from scoperouter.runtime.dispatcher import Dispatcher
    from scoperouter.runtime.log_bridge import LogBridge
    from scoperouter.runtime.marks import MarkQueue, Release
    from scoperouter.runtime.metrics import Metrics
    from scoperouter.runtime.store import PendingTrigger

    reg = zero_cfg.registry
    marks = MarkQueue()
    d = Dispatcher(reg, {}, None, Metrics(), RouterOptions(), marks, LogBridge(None, reg), None,
                   lambda: 100.0, random.Random(1))  # fmt: skip
    lane = d.lane(next(iter(reg.processors)))
    lane.buffer.extend(PendingTrigger(i, f"t{i}", lane.name, "{}", 0) for i in (1, 2))
    lane.has_due = True
    [rq] = lanes.requests([lane], 100.0, 1.0)  # a page goes out (fresh reset)
    d._breaker_opened(lane, 100.0, "boom")
    lane.take_page(LanePage(lane.name, [], False, None, [], asked=rq.slots > 0))
    assert lane.has_due and not lane.buffer
    assert marks.take() == [Release(1), Release(2)]

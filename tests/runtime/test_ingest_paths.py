"""The ingest transaction's two paths (runtime/ingest.py): a batch routed on the fast path
(no savepoint per item, duplicates found by the seen insert) ends exactly as the careful
path (a savepoint per item) would have left it -- outcomes, seen ids, outbox, dead
letters, open windows -- also when an item fails half-way and the batch is routed again."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest
from runtime_support import MemorySink, RouterFactory, game_day_stream, load, write_registry

import scoperouter.runtime.ingest as ingest_mod
import scoperouter.runtime.router as router_mod
from scoperouter.messages.models import Event
from scoperouter.processor_registry.loader import LoadedConfig
from scoperouter.router.engine import RoutingEngine
from scoperouter.router.windows import WindowBook
from scoperouter.runtime.router import Inbound, Router

STREAM = [e for e in game_day_stream(80) if "affected_entities" in e]
POISON = "poison-1"
NOW = 1_764_000_000.0  # a fixed clock: both paths stamp the same times


@pytest.fixture(scope="module")
def windowed_cfg(tmp_path_factory: pytest.TempPathFactory) -> LoadedConfig:
    """The NBA registry with 30 s quiet windows: what the batch opens is journaled."""
    return load(write_registry(tmp_path_factory.mktemp("win"), quiet="30s", max_wait="2m"))


def _poison() -> dict[str, Any]:
    return {**STREAM[0], "event_id": POISON}


def _inject(monkeypatch: pytest.MonkeyPatch, fault: str) -> None:
    """A bug in the code for the poison event only (every engine the router builds has it)."""
    if fault == "planner":
        real_plan = RoutingEngine.plan

        def plan(engine: RoutingEngine, ev: Event, *args: Any) -> Any:
            if ev.event_id == POISON:
                raise RuntimeError("injected planner bug")
            return real_plan(engine, ev, *args)

        monkeypatch.setattr(RoutingEngine, "plan", plan)
    elif fault == "book":
        real_add = WindowBook.add

        def add(book: WindowBook, ev: Event, *args: Any) -> Any:
            if ev.event_id == POISON:
                raise RuntimeError("injected window bug")
            return real_add(book, ev, *args)

        monkeypatch.setattr(WindowBook, "add", add)


async def _submit(r: Router, events: list[dict[str, Any]]) -> list[Any]:
    # all submitted before the ingest worker runs: one batch, one transaction
    return list(
        await asyncio.gather(
            *(
                r.submit(Inbound("pubsub", obj=e, message_id=f"m-{i}", dead_letter_on_reject=True))
                for i, e in enumerate(events)
            )
        )
    )


def _state(r: Router) -> dict[str, Any]:
    """What the batch left in the store and the engine."""
    db = r.store._db
    return {
        "seen": sorted(x[0] for x in db.execute("SELECT event_id FROM seen")),
        "outbox": sorted(db.execute("SELECT trigger_id, processor, body, status FROM triggers")),
        "dead": sorted((d.ref, d.reason) for d in r.store.dead_letters()),
        "windows": r.windows.engine.snapshot(),
        "journal": [(e.op, e.event, e.decision) for e in r.store.journal_entries()],
    }


async def _run(
    make_router: RouterFactory, cfg: LoadedConfig, state_dir: Path, batches: list[list[Any]]
) -> tuple[list[list[tuple[Any, ...]]], dict[str, Any]]:
    r = make_router(cfg, MemorySink(), clock=lambda: NOW, state_dir=state_dir)
    await r.start()
    outs = []
    for b in batches:
        got = await _submit(r, b)
        outs.append([(o.status, o.event_id, o.reason, o.triggers, o.dead_lettered) for o in got])
    state = _state(r)
    await r.stop(timeout=5.0)
    return outs, state


@pytest.mark.parametrize("windows", ["zero", "windowed"])
@pytest.mark.parametrize("fault", ["none", "planner", "book"])
@pytest.mark.parametrize("at", [0, 5, 11])
async def test_fast_path_ends_as_the_careful_path(
    zero_cfg: LoadedConfig,
    windowed_cfg: LoadedConfig,
    make_router: RouterFactory,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    windows: str,
    fault: str,
    at: int,
) -> None:
    """Duplicates (earlier batch, same batch) and a failing item at any position: the same
    outcomes and state as routing every item in its own savepoint."""
    cfg = zero_cfg if windows == "zero" else windowed_cfg
    _inject(monkeypatch, fault)
    second = [STREAM[2], *STREAM[10:20], STREAM[12]]  # one from batch 1, one twice in it
    second.insert(at, _poison())
    batches = [STREAM[:5], second]
    fast = await _run(make_router, cfg, tmp_path / "fast", batches)

    real = ingest_mod.process_batch
    monkeypatch.setattr(router_mod, "process_batch", lambda *a, **k: real(*a, **k, fast=False))
    careful = await _run(make_router, cfg, tmp_path / "careful", batches)

    assert fast == careful
    statuses = [o[0] for o in fast[0][1]]
    assert statuses.count("duplicate") == 2
    assert statuses.count("rejected") == (fault != "none")


async def test_fast_path_writes_one_seen_statement_per_event_and_no_savepoint(
    zero_cfg: LoadedConfig, make_router: RouterFactory, tmp_path: Path
) -> None:
    """A batch with nothing failing: the seen insert is the duplicate check, no savepoints."""
    r = make_router(zero_cfg, MemorySink())
    await r.start()
    await _submit(r, STREAM[:3])  # the schema's first writes are out of the way
    sql: list[str] = []
    r.store._db.set_trace_callback(sql.append)
    batch = [*STREAM[3:13], STREAM[3]]
    outs = await _submit(r, batch)
    r.store._db.set_trace_callback(None)
    assert [o.status for o in outs].count("duplicate") == 1
    assert not [s for s in sql if "SAVEPOINT" in s or s.startswith("RELEASE")]
    assert len([s for s in sql if " seen" in s]) == len(batch)
    assert not [s for s in sql if s.startswith("SELECT") and " seen" in s]
    await r.stop(timeout=5.0)


async def test_failed_fast_path_logs_each_failure_once(
    zero_cfg: LoadedConfig,
    make_router: RouterFactory,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The rolled-back fast attempt logs nothing: one planner error, one dead letter."""
    _inject(monkeypatch, "planner")
    r = make_router(zero_cfg, MemorySink())
    await r.start()
    with caplog.at_level(logging.WARNING, logger="scoperouter.runtime"):
        outs = await _submit(r, [*STREAM[:4], _poison(), *STREAM[4:8]])
    assert [o.status for o in outs].count("accepted") == 8
    messages = [rec.getMessage() for rec in caplog.records]
    assert messages.count("planner raised") == 1
    assert messages.count("event dead-lettered") == 1
    await r.stop(timeout=5.0)

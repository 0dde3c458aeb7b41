"""A failing store stays failing until a write succeeds: a dispatcher page or a window
timer poll that only read (no marks, nothing dead-lettered, nothing fired) is no proof the
store works -- a full disk still answers reads. Before, each such page or poll made the
router ready again and reset the log limiter, so ``/readyz`` flapped and every next
failure logged a full traceback."""

from __future__ import annotations

import asyncio
import random
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from runtime_support import GAME_DAY, load, stop_routers, write_registry

from scoperouter.runtime.backlog import LanePage, LaneRequest
from scoperouter.runtime.dispatcher import Dispatcher
from scoperouter.runtime.log_bridge import LogBridge
from scoperouter.runtime.marks import MarkQueue, Release
from scoperouter.runtime.metrics import Metrics
from scoperouter.runtime.options import RouterOptions
from scoperouter.runtime.outbox import OutboxSink
from scoperouter.runtime.shared_router import SharedRouter
from scoperouter.state import StoreOptions, open_state_store

PROC = "player_game_summary"


async def _run(fn: Any, *args: Any) -> Any:
    await asyncio.sleep(0)
    return fn(*args)


class Pager:
    """The store's pager: no rows; counts its pages."""

    def __init__(self) -> None:
        self.pages = 0

    def __call__(self, marks: Any, requests: list[LaneRequest], now: float) -> list[LanePage]:
        self.pages += 1
        return [LanePage(rq.processor, [], False, None, []) for rq in requests]


@pytest.mark.parametrize(("with_marks", "ok_calls"), [(False, 0), (True, 1)])
async def test_dispatcher_page_that_only_reads_does_not_heal_the_store(
    tmp_path: Path, with_marks: bool, ok_calls: int
) -> None:
    """A page that wrote marks reports the store working; a page that only read does not."""
    cfg = load(write_registry(tmp_path, default_target={"outbox": {}}))
    marks = MarkQueue()
    if with_marks:
        marks.append(Release(7))
    sink = OutboxSink(tmp_path / "outbox.jsonl")
    d = Dispatcher(cfg.registry, {PROC: sink}, None, Metrics(), RouterOptions(), marks,
                   LogBridge(None, cfg.registry), None, lambda: 1_763_560_000.0,
                   random.Random(1))  # fmt: skip
    oks: list[None] = []
    pager = Pager()
    pump = d.start(_run, pager, [PROC], on_store_ok=lambda: oks.append(None))
    try:
        for _ in range(500):  # the pump pages the lane the store said had rows
            if pager.pages and not d._paging:
                break
            await asyncio.sleep(0.01)
        assert pager.pages >= 1
        assert len(oks) == ok_calls
    finally:
        await d.stop_pump()
        pump.cancel()
        await sink.close()


async def test_timer_poll_that_only_reads_keeps_a_failing_store_not_ready(tmp_path: Path) -> None:
    """On a state store that refuses writes but answers reads, the window timer's polls leave the router not ready."""
    cfg = load(write_registry(tmp_path / "r", default_target={"outbox": {}}))
    st = open_state_store(
        f"sqlite:///{tmp_path / 'state.db'}",
        StoreOptions(owner="a", date_field=cfg.registry.date_field),
        sync="normal",
    )
    sink = OutboxSink(tmp_path / "outbox.jsonl")
    r = SharedRouter(cfg.registry, cfg.relations, st, {p: sink for p in cfg.registry.processors},
                     options=RouterOptions(as_of=GAME_DAY, store_backoff_cap_s=0.01,
                                           store_backoff_base_s=0.01),
                     poll_interval_s=0.01)  # fmt: skip
    await r.start()
    try:
        polls = 0
        read = st.next_deadline

        def counted() -> float | None:
            nonlocal polls
            polls += 1
            return read()

        def full() -> None:
            raise sqlite3.OperationalError("database or disk is full")

        st.next_deadline = counted  # type: ignore[method-assign]
        st.ping = full  # type: ignore[method-assign]  # the mark flusher's probe write
        try:
            raise sqlite3.OperationalError("database or disk is full")
        except sqlite3.OperationalError:
            r.health.failed("ingest transaction failed")
        assert not r.ready
        start = polls
        for _ in range(1000):  # a few polls of the timer, each only reading
            if polls >= start + 5:
                break
            await asyncio.sleep(0.01)
        assert polls >= start + 5
        assert not r.health.ok and not r.ready
    finally:
        await stop_routers([r])

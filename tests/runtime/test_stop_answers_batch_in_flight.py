"""A graceful stop answers the ingest batch whose transaction is running when its drain
deadline passes. Invariant (:meth:`Router.stop`): the state thread runs a transaction to its
end whatever the event loop does, so the stop waits for it (it waited anyway, behind it on
the state thread) and answers every item of the batch -- acked when it committed, nacked /
503 when it failed -- and hands its decisions to the execution log. Before, the stop
cancelled the ingest worker while it awaited the transaction: the batch's answers were
never given (Pub/Sub messages unanswered until their deadline, HTTP clients waiting), and
its decisions never reached the log (the redelivered events are duplicates: never logged).

No time is measured: the batch's transaction is held on a gate the test opens from inside
the stop, once the stop has passed its drain deadline (``timeout=0``)."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from runtime_support import GAME_DAY, MemorySink, players_of

from scoperouter.processor_registry.loader import LoadedConfig
from scoperouter.runtime.outcomes import Outcome
from scoperouter.runtime.router import Inbound, Router, RouterOptions
from scoperouter.runtime.shared_router import SharedRouter
from scoperouter.runtime.store import Store
from scoperouter.state import StoreOptions, open_state_store

EVENT = {
    "event_id": "in-flight-1",
    "source": "nba_raw.nbac_gamebook_player_stats",
    "game_date": GAME_DAY.isoformat(),
    "affected_entities": {"players": [players_of("BOS")[0]]},
    "changed_fields": ["minutes"],
}


@pytest.fixture(params=["snapshot store", "state store"])
async def router(
    request: pytest.FixtureRequest, zero_cfg: LoadedConfig, tmp_path: Path
) -> AsyncIterator[Router]:
    """A started router (not lingering) on the snapshot + journal store or on the embedded
    SQLite state store (plain ``serve``)."""
    sink = MemorySink()
    sinks = {p: sink for p in zero_cfg.registry.processors}
    opts = RouterOptions(as_of=GAME_DAY, ingest_linger_s=0.0)
    reg, rel = zero_cfg.registry, zero_cfg.relations
    st = None
    r: Router
    if request.param == "snapshot store":
        r = Router(reg, rel, Store(tmp_path / "state.sqlite3", sync="normal"), sinks, options=opts)
    else:
        st = open_state_store(
            f"sqlite:///{tmp_path / 'state.db'}",
            StoreOptions(owner="a", date_field=reg.date_field),
            sync="normal",
        )
        r = SharedRouter(reg, rel, st, sinks, options=opts)
    await r.start()
    yield r
    if not r._stopping:
        await r.stop(timeout=1.0)
    r._state.shutdown(wait=True)
    with contextlib.suppress(Exception):
        (st.close() if st is not None else r.store._db.close())


@pytest.mark.parametrize(
    ("commits", "status", "reason", "logged"),
    [
        (True, "accepted", None, ["in-flight-1"]),
        (False, "unavailable", "store_error", []),
    ],
)
async def test_stop_answers_the_batch_whose_transaction_is_running(
    router: Router, commits: bool, status: str, reason: str | None, logged: list[str]
) -> None:
    """The batch in flight at the stop's deadline is answered (ack if committed, 503 if not) and its decisions go to the log."""
    r = router
    entered, gate = threading.Event(), threading.Event()
    real_process = r._process_batch

    def held(batch: list[Any], marks: list[Any]) -> Any:
        entered.set()
        assert gate.wait(60), "the gate was never opened"
        if not commits:
            raise sqlite3.OperationalError("database or disk is full")
        return real_process(batch, marks)

    r._process_batch = held  # type: ignore[method-assign]
    handed: list[str] = []
    real_batch = r.log_bridge.batch

    def batch(decided: Any, *args: Any) -> None:
        handed.extend(d[0].event_id for d in decided)
        real_batch(decided, *args)

    r.log_bridge.batch = batch  # type: ignore[method-assign]
    real_stop_pump = r.dispatcher.stop_pump

    async def stop_pump() -> None:  # the stop is past its drain deadline: let the commit end
        await real_stop_pump()
        gate.set()

    r.dispatcher.stop_pump = stop_pump  # type: ignore[method-assign]
    loop = asyncio.get_running_loop()
    answer: asyncio.Future[Outcome] = loop.create_future()  # what submit() awaits
    assert r.enqueue(Inbound("test", obj=EVENT), answer) is None
    assert await loop.run_in_executor(None, entered.wait, 60), "the batch never started"
    await r.stop(timeout=0.0)
    assert answer.done(), "the batch in flight was never answered"
    out = answer.result()
    assert (out.status, out.reason, out.ack) == (status, reason, commits)
    assert handed == logged

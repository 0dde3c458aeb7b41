"""A trigger's dispatch mode is decided when it fires and stored with its outbox row
(docs/rollout.md "Flip back"): after a restart that flips a processor's mode, its triggers
still pending are sent by the mode they fired in -- fired live, still delivered; fired in
shadow, marked done as shadow. On the three stores: the snapshot + journal store
(``journal``), the per-window SQLite store and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from runtime_support import GAME_DAY, INJURY_EVENT, MemorySink, load, stop_routers, write_registry

from scoperouter.errors import DispatchError
from scoperouter.messages.models import Trigger
from scoperouter.processor_registry.loader import LoadedConfig
from scoperouter.runtime.router import Inbound, Router, RouterOptions
from scoperouter.runtime.shared_router import SharedRouter
from scoperouter.runtime.store import Store
from scoperouter.state import StoreOptions, open_state_store

T0 = 1_763_500_000.0


class FailingSink:
    """A target that is down: every send fails (retryable); remembers what it was sent."""

    name = "down"

    def __init__(self) -> None:
        self.tried: set[str] = set()

    async def send(self, trigger: Trigger, *, message_id: str, body: bytes | None = None) -> None:
        self.tried.add(trigger.trigger_id)
        raise DispatchError(trigger.processor, self.name, "target down")

    async def close(self) -> None:
        return None


@pytest.fixture(params=["journal", "sqlite", "postgresql"])
def where(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The store kind under test: ``journal`` or a state store location."""
    if request.param == "journal":
        return "journal"
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    dsn: str = request.getfixturevalue("pg_schema")
    return dsn


Factory = Callable[..., Router]


@pytest.fixture
async def make(where: str, tmp_path: Path) -> AsyncIterator[Factory]:
    """Routers on one store (one after the other: restarts); stopped at teardown."""
    made: list[Router] = []

    def factory(cfg: LoadedConfig, sink: Any, clock: Callable[[], float], **opts: Any) -> Router:
        options = RouterOptions(as_of=GAME_DAY, **opts)
        sinks = {p: sink for p in cfg.registry.processors}
        r: Router
        if where == "journal":
            store = Store(tmp_path / "state.sqlite3", sync="normal")
            r = Router(cfg.registry, cfg.relations, store, sinks, options=options, clock=clock)
        else:
            st = open_state_store(
                where,
                StoreOptions(owner="a", date_field=cfg.registry.date_field),
                sync="normal",
            )
            r = SharedRouter(
                cfg.registry, cfg.relations, st, sinks, options=options, clock=clock,
                poll_interval_s=0.02,
            )  # fmt: skip
        made.append(r)
        return r

    yield factory
    await stop_routers(made)


def config(tmp: Path, mode: str, **defaults: Any) -> LoadedConfig:
    """The NBA registry, zero windows, every processor in ``mode``."""
    return load(write_registry(tmp / mode, defaults={"mode": mode, **defaults}))


async def until(pred: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


async def leave_pending(r: Router, how: str, sink: FailingSink) -> None:
    """Fire the injury event's triggers and stop with every one of them still pending:
    ``down`` -- the target fails (a backlog behind its breaker); ``unstarted`` -- the
    dispatcher stopped before they started (what a SIGTERM leaves)."""
    await r.start()
    if how == "unstarted":
        await r.dispatcher.stop_pump()
    out = await r.submit(Inbound("test", data=json.dumps(INJURY_EVENT).encode()))
    assert out.status == "accepted"
    if how == "down":
        await until(lambda: bool(sink.tried))
        await asyncio.sleep(0.2)  # every fired trigger tried once
    await r.stop(timeout=2.0)


async def pending_ids(r: Router) -> set[str]:
    """Trigger ids of the rows still to send (pending or leased)."""
    if isinstance(r, SharedRouter):  # a stopped router's state thread is gone
        rows = r.state.outbox_rows() if r._stopping else await r._in_state(r.state.outbox_rows)
        return {x.trigger_id for x in rows if x.status in ("pending", "leased")}
    return {p.trigger_id for p in r.store.pending_triggers()}


def shadowed(r: Router) -> float:
    """Triggers the router marked done as shadow."""
    return sum(
        s.value
        for fam in r.metrics.triggers_dispatched.collect()
        for s in fam.samples
        if s.name.endswith("_total") and s.labels.get("mode") == "shadow"
    )


@pytest.mark.parametrize(
    ("before", "after", "serve_shadow", "how", "delivered"),
    [
        ("live", "shadow", False, "down", True),
        ("live", "shadow", False, "unstarted", True),
        ("live", "live", True, "unstarted", True),  # serve --shadow after the restart
        ("shadow", "live", False, "unstarted", False),
    ],
)
async def test_pending_triggers_keep_the_mode_they_fired_in(
    tmp_path: Path,
    make: Factory,
    before: str,
    after: str,
    serve_shadow: bool,
    how: str,
    delivered: bool,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Triggers pending at a restart that flips the mode are sent by the mode they fired in."""
    now = [T0]
    down = FailingSink()
    r1 = make(config(tmp_path, before), down, lambda: now[0])
    await leave_pending(r1, how, down)
    pending = await pending_ids(r1)
    assert pending, "the restart must find triggers pending"
    assert down.tried <= pending
    now[0] += 600.0  # past every retry's backoff, within the retry horizon
    sink = MemorySink()
    caplog.set_level(logging.INFO, logger="scoperouter")
    r2 = make(config(tmp_path, after), sink, lambda: now[0], shadow=serve_shadow)
    await r2.start()
    assert await r2.idle()
    got = {t.trigger_id for t in sink.received}
    assert got == (pending if delivered else set())
    assert await pending_ids(r2) == set()
    assert (shadowed(r2) == 0) == delivered
    if delivered and (after == "shadow" or serve_shadow):
        lines = [
            r.getMessage()
            for r in caplog.records
            if "pending triggers fired live" in r.getMessage()
        ]
        assert len(lines) == 1 and f"{len(pending)} " in lines[0]


def forget_modes(where: str, tmp_path: Path) -> None:
    """Set every outbox row's mode to NULL: rows as a version before the column wrote them."""
    if where.startswith("postgresql"):
        import psycopg

        with psycopg.connect(where, autocommit=True) as c:
            c.execute("UPDATE sr_outbox SET mode = NULL")
        return
    path, table = (
        (tmp_path / "state.sqlite3", "triggers")
        if where == "journal"
        else (Path(where.removeprefix("sqlite:///")), "sr_outbox")
    )
    db = sqlite3.connect(path)
    with db:
        db.execute(f"UPDATE {table} SET mode = NULL")
    db.close()


@pytest.mark.parametrize(("after", "delivered"), [("shadow", False), ("live", True)])
async def test_rows_written_before_the_mode_was_stored_take_the_mode_at_dispatch(
    tmp_path: Path, make: Factory, where: str, after: str, delivered: bool
) -> None:
    """A pending row without a stored mode is sent by its processor's mode at dispatch."""
    now = [T0]
    r1 = make(config(tmp_path, "live"), FailingSink(), lambda: now[0])
    await leave_pending(r1, "unstarted", FailingSink())
    pending = await pending_ids(r1)
    assert pending
    forget_modes(where, tmp_path)
    sink = MemorySink()
    r2 = make(config(tmp_path, after), sink, lambda: now[0])
    await r2.start()
    assert await r2.idle()
    assert {t.trigger_id for t in sink.received} == (pending if delivered else set())
    assert (shadowed(r2) == len(pending)) != delivered


def test_a_journal_store_from_before_the_mode_column_opens_with_its_rows_unmoded(
    tmp_path: Path,
) -> None:
    """The snapshot + journal store adds ``triggers.mode`` at open; older rows read NULL."""
    from scoperouter.runtime.store_schema import SCHEMA

    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path)
    db.executescript(SCHEMA)  # the tables as an older version created them (no mode)
    db.execute(
        "INSERT INTO triggers(trigger_id, processor, body, created_at) VALUES ('t-1', 'p', '{}', 1)"
    )
    db.commit()
    db.close()
    store = Store(path, sync="normal")
    try:
        store.insert_trigger("t-2", "p", "{}", 2.0, "shadow")
        got = [(p.trigger_id, p.mode) for p in store.pending_triggers()]
        assert got == [("t-1", None), ("t-2", "shadow")]
        assert store.live_backlog() == {}
    finally:
        store.close()


def windowed(tmp: Path, mode: str, **defaults: Any) -> LoadedConfig:
    """The NBA registry, every window open a minute (at most two), every processor in
    ``mode``."""
    return load(
        write_registry(
            tmp / f"windowed-{mode}", quiet="60s", max_wait="120s",
            defaults={"mode": mode, **defaults},
        )
    )  # fmt: skip


FLIPS = [
    ("live", "shadow", False, True),  # acked while live: nobody else runs it
    ("live", "live", True, True),  # serve --shadow after the restart
    ("shadow", "live", False, True),  # live now: it fires live
    ("shadow", "shadow", False, False),
]


async def flip_across_a_restart(
    tmp_path: Path, make: Factory, loop: dict[str, Any], flip: tuple[str, str, bool, bool]
) -> None:
    """An event into an open window, a restart into ``flip``'s modes, the window fired:
    sent for real when ``flip`` says delivered, else marked done as shadow."""
    before, after, serve_shadow, delivered = flip
    now = [T0]
    r1 = make(windowed(tmp_path, before, **loop), MemorySink(), lambda: now[0])
    await r1.start()
    out = await r1.submit(Inbound("test", data=json.dumps(INJURY_EVENT).encode()))
    assert out.status == "accepted"  # acked: committed to an open window
    await r1.stop(timeout=2.0)
    assert await pending_ids(r1) == set()  # nothing fired: the windows are open
    now[0] += 600.0  # past every window's max_wait
    sink = MemorySink()
    r2 = make(windowed(tmp_path, after, **loop), sink, lambda: now[0], shadow=serve_shadow)
    await r2.start()
    await r2.fire_due()
    assert await r2.idle()
    fired = shadowed(r2) + len(sink.received)
    assert fired > 0
    assert (len(sink.received) > 0, shadowed(r2) > 0) == (delivered, not delivered)
    assert await pending_ids(r2) == set()


@pytest.mark.parametrize("flip", FLIPS)
async def test_a_window_that_took_an_event_while_live_fires_live_after_a_flip(
    tmp_path: Path, make: Factory, flip: tuple[str, str, bool, bool]
) -> None:
    """A window open across a restart into shadow fires live if an event joined it while live."""
    await flip_across_a_restart(tmp_path, make, {}, flip)


@pytest.mark.parametrize("where", ["journal"])  # the closed loop's store (its state lives there)
@pytest.mark.parametrize("flip", FLIPS)
async def test_the_same_with_the_closed_loop(
    tmp_path: Path, make: Factory, flip: tuple[str, str, bool, bool]
) -> None:
    """With the closed loop on, the window's live bit holds across the restart the same way."""
    await flip_across_a_restart(tmp_path, make, {"run_retries": 1}, flip)

"""Outbox rows a running daemon did not write itself still end delivered or visibly dead: rows
redriven next to it (``scoperouter outbox redrive``) for a target that fired nothing since
its start, and a row whose body this version cannot read (written by a newer one). On the
per-window SQLite store and on PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from runtime_support import GAME_DAY, MemorySink, stop_routers

from scoperouter.processor_registry.loader import LoadedConfig
from scoperouter.runtime.router import RouterOptions
from scoperouter.runtime.shared_router import SharedRouter
from scoperouter.state import StoreOptions, open_state_store
from scoperouter.state.model import Admission, Dead, IngestBatch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "state"))
from state_support import contrib

PROC = "player_game_summary"
Factory = Callable[..., SharedRouter]


@pytest.fixture
async def router_on(location: str) -> AsyncIterator[Factory]:
    """Routers on ``location`` with a fast pump; stopped and closed at teardown."""
    made: list[SharedRouter] = []

    def factory(cfg: LoadedConfig, sink: Any, lease_s: float = 30.0) -> SharedRouter:
        st = open_state_store(
            location,
            StoreOptions(owner="a", lease_s=lease_s, date_field=cfg.registry.date_field),
            sync="normal",
        )
        r = SharedRouter(
            cfg.registry,
            cfg.relations,
            st,
            {p: sink for p in cfg.registry.processors},
            options=RouterOptions(as_of=GAME_DAY, pump_interval_s=0.01),  # a sweep every 0.6 s
            poll_interval_s=0.02,
        )
        made.append(r)
        return r

    yield factory
    await stop_routers(made)


def fire_one(location: str, now: float) -> tuple[int, bytes]:
    """One trigger of PROC fired into the outbox by another process (a store opened and
    closed here): its row id and body."""
    st = open_state_store(location, StoreOptions(owner="old"), sync="normal")
    try:
        c = contrib("e-1", processor=PROC, day=GAME_DAY, quiet=0.0)
        [fired] = st.ingest(IngestBatch(admissions=(Admission("e-1", (c,)),)), now).fired
        return fired.item_id, fired.body
    finally:
        st.close()


def set_body(location: str, row: int, body: bytes) -> None:
    """Rewrite outbox row ``row`` as another version would have written it, pending."""
    sql = (
        "UPDATE sr_outbox SET body = {p}, status = 'pending', lease_owner = NULL, "
        "lease_until = NULL WHERE id = {p}"
    )
    if location.startswith("sqlite:///"):
        with contextlib.closing(sqlite3.connect(location.removeprefix("sqlite:///"))) as db:
            db.execute(sql.format(p="?"), (body, row))
            db.commit()
        return
    import psycopg

    with psycopg.connect(location, autocommit=True) as pg:
        pg.execute(sql.format(p="%s"), (body, row))  # type: ignore[arg-type]


async def eventually(cond: Callable[[], bool], timeout: float = 60.0) -> bool:
    """``cond()`` polled until true or ``timeout`` seconds have passed."""
    end = time.monotonic() + timeout
    while time.monotonic() < end and not cond():
        await asyncio.sleep(0.05)
    return cond()


async def test_rows_redriven_beside_the_daemon_reach_a_target_that_fired_nothing(
    zero_cfg: LoadedConfig, router_on: Factory, location: str
) -> None:
    """A redrive next to a running daemon is delivered though its processor fired nothing here."""
    now = time.time()
    row, _ = fire_one(location, now)
    st = open_state_store(location, StoreOptions(owner="old"), sync="normal")
    st.apply_marks([Dead(row, 1, now, "permanent_error", "HTTP 400")])  # the target refused it
    st.close()
    sink = MemorySink()
    r = router_on(zero_cfg, sink)
    await r.start()
    await asyncio.sleep(0.2)  # started: no lane of PROC had anything to page
    cli = open_state_store(location, StoreOptions(owner="cli"), sync="full")
    assert cli.redrive_dead(time.time()) == 1  # the operator fixed the target
    cli.close()
    assert await eventually(lambda: len(sink.received) == 1), "the redriven row was never sent"


async def test_a_row_this_version_cannot_read_is_dead_lettered_with_its_body(
    zero_cfg: LoadedConfig, router_on: Factory, location: str
) -> None:
    """A row whose body does not parse goes dead with a dead letter keeping the body, not leased."""
    row, body = fire_one(location, time.time())
    # a key Trigger does not know (alone: read, test_newer_trigger_fields.py) and a scope
    # it does not know
    newer = json.dumps({**json.loads(body), "attempt_no": 1, "scope": "team"}).encode()
    set_body(location, row, newer)
    r = router_on(zero_cfg, MemorySink(), lease_s=0.3)  # renewed every 0.1 s while leased

    async def settled() -> list[str]:
        return [x.status for x in await r._in_state(r.state.outbox_rows)]

    await r.start()
    end = time.monotonic() + 60.0  # a liveness bound, not a timing claim
    while await settled() != ["dead"] and time.monotonic() < end:
        await asyncio.sleep(0.05)
    assert await settled() == ["dead"]
    [letter] = await r._in_state(r.state.dead_letters)
    [stored] = await r._in_state(r.state.outbox_rows)
    assert (letter.kind, letter.ref, letter.reason, bytes(letter.payload)) == (
        "trigger", f"{stored.trigger_id}#{row}", "unreadable", newer
    )  # fmt: skip
    assert r.metrics.dead_lettered.labels("trigger", "unreadable")._value.get() == 1

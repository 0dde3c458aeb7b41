"""The router on a state store (``serve --state``): the same triggers as the dry run on the
per-window SQLite store and on PostgreSQL, duplicates ignored, open windows fired by another
replica, a dead replica's leased trigger re-sent by a live one, and the dispatcher's marks
mapped onto the outbox."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from runtime_support import (
    GAME_DAY,
    MemorySink,
    as_lines,
    dry_run_keys,
    game_day_stream,
    key_of,
    load,
    stop_routers,
    write_registry,
)

from scoperouter.commands.replay import replay_events
from scoperouter.messages.normalize import parse_event_bytes
from scoperouter.processor_registry.loader import LoadedConfig
from scoperouter.runtime import marks as rm
from scoperouter.runtime.router import Inbound, RouterOptions
from scoperouter.runtime.shared_ingest import state_marks
from scoperouter.runtime.shared_router import SharedRouter
from scoperouter.state import StoreOptions, open_state_store
from scoperouter.state.model import (
    Attempted,
    Dead,
    DeadLetterIn,
    Done,
    RedriveLane,
    Released,
    RetryLater,
)

STREAM = game_day_stream(300)
CALM = [e for e in STREAM if e.get("priority") != "critical"][:100]  # nothing fires at once


@pytest.fixture(scope="module")
def slow_cfg(tmp_path_factory: pytest.TempPathFactory) -> LoadedConfig:
    """Windows that stay open for an hour (fired by a clock moved on)."""
    return load(write_registry(tmp_path_factory.mktemp("slow"), quiet="3600s", max_wait="3600s"))


Factory = Callable[..., SharedRouter]


@pytest.fixture
async def make_shared(location: str) -> AsyncIterator[Factory]:
    """Routers (replicas) on one state location; stopped and closed at teardown."""
    made: list[SharedRouter] = []

    def factory(
        cfg: LoadedConfig,
        sink: Any,
        owner: str = "a",
        lease_s: float = 30.0,
        clock: Callable[[], float] | None = None,
        dead_letter_publisher: Any = None,
        **options: Any,
    ) -> SharedRouter:
        st = open_state_store(
            location,
            StoreOptions(owner=owner, lease_s=lease_s, date_field=cfg.registry.date_field),
            sync="normal",
        )
        kwargs: dict[str, Any] = {"options": RouterOptions(**{"as_of": GAME_DAY, **options})}
        if clock is not None:
            kwargs["clock"] = clock
        if dead_letter_publisher is not None:
            kwargs["dead_letter_publisher"] = dead_letter_publisher
        r = SharedRouter(
            cfg.registry,
            cfg.relations,
            st,
            {p: sink for p in cfg.registry.processors},
            poll_interval_s=0.02,
            **kwargs,
        )
        made.append(r)
        return r

    yield factory
    await stop_routers(made)


async def submit_all(r: SharedRouter, events: list[dict[str, Any]]) -> list[Any]:
    return list(await asyncio.gather(*(r.submit(Inbound("test", obj=e)) for e in events)))


async def test_stream_routes_like_the_dry_run(zero_cfg: LoadedConfig, make_shared: Factory) -> None:
    """A game day through a state store yields exactly the dry run's triggers, duplicates ignored."""
    sink = MemorySink()
    r = make_shared(zero_cfg, sink)
    await r.start()
    outs = await submit_all(r, STREAM + STREAM[:50])
    assert sum(o.status == "accepted" for o in outs) == len(STREAM)
    assert sum(o.status == "duplicate" for o in outs) == 50
    assert await r.idle()
    assert sorted(key_of(t) for t in sink.received) == dry_run_keys(zero_cfg, STREAM)
    assert await r._in_state(r.state.outbox_counts) == {"done": len(sink.received)}


async def test_a_failover_while_idle_fails_no_store_call(
    zero_cfg: LoadedConfig, make_shared: Factory, location: str, caplog: Any
) -> None:
    """The store's sessions ended while the router is idle (a PostgreSQL failover or
    restart): no store call fails -- neither the next poll nor an ingest: the router never
    turns not ready, the next events are all accepted -- and /metrics counts the reopened
    connection; SQLite has no connection to lose, and no such metric."""
    sink = MemorySink()
    r = make_shared(zero_cfg, sink)
    await r.start()
    first = await submit_all(r, STREAM[:40])
    assert await r.idle()
    caplog.set_level("WARNING")
    caplog.clear()
    if location.startswith("postgresql"):
        import psycopg

        def end_the_store_session() -> bool:
            """On the state thread, between two of its store calls: none is in flight."""
            pid = r.state._conn.info.backend_pid  # type: ignore[attr-defined]
            with psycopg.connect(location, autocommit=True) as c:
                row = c.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()
            return bool(row and row[0])

        assert await r._in_state(end_the_store_session)
    rest = await submit_all(r, STREAM[40:80])
    assert [o.status for o in first + rest].count("accepted") == 80
    assert await r.idle()
    assert sorted(key_of(t) for t in sink.received) == dry_run_keys(zero_cfg, STREAM[:80])
    await asyncio.sleep(0.2)  # ten polls more
    assert r.health.ok and not [x for x in caplog.messages if "store is failing" in x]
    text = r.metrics.render().decode()
    if location.startswith("postgresql"):
        assert any("running the call on a new connection" in x for x in caplog.messages)
        assert "scoperouter_state_connections_reopened_total 0.0" not in text
        assert "scoperouter_state_connections_reopened_total" in text
    else:
        assert "scoperouter_state_connections_reopened" not in text


async def test_other_replica_fires_open_windows(
    slow_cfg: LoadedConfig, make_shared: Factory
) -> None:
    """Windows opened by a replica that stopped are fired by another one once due."""
    now = [1_763_000_000.0]
    sink = MemorySink()
    a = make_shared(slow_cfg, sink, owner="a", clock=lambda: now[0])
    await a.start()
    outs = await submit_all(a, CALM)
    assert {o.status for o in outs} == {"accepted"}
    opened = await a._in_state(a.state.open_window_count)  # the state thread owns the connection
    assert opened > 0 and sink.received == []
    await a.stop(timeout=1.0)
    b = make_shared(slow_cfg, sink, owner="b", clock=lambda: now[0])
    await b.start()
    assert await b.fire_due() == 0  # nothing due yet
    now[0] += 3601
    fired = 0
    while await b._in_state(b.state.open_window_count):
        fired += await b.fire_due()
    assert fired == opened
    assert await b.idle()
    assert sorted(key_of(t) for t in sink.received) == dry_run_keys(slow_cfg, CALM)


async def test_open_window_gauge_follows_ingest_and_fires(
    slow_cfg: LoadedConfig, make_shared: Factory
) -> None:
    """The open-window gauge: exact after each batch and fire on a single-instance store, 0
    once nothing is open on any store -- not 30 s stale (the recount of a large book)."""
    now = [1_763_000_000.0]
    r = make_shared(slow_cfg, MemorySink(), clock=lambda: now[0])
    await r.start()
    assert r.open_window_count() == 0
    await submit_all(r, CALM[:40])
    opened = await r._in_state(r.state.open_window_count)
    assert opened > 0
    if not r.state.shared:
        assert r.open_window_count() == opened
        await submit_all(r, CALM[40:])
        assert r.open_window_count() == await r._in_state(r.state.open_window_count)
    now[0] += 3601  # every window due
    while await r._in_state(r.state.open_window_count):
        await r.fire_due()
    assert r.open_window_count() == 0


async def test_dead_replicas_lease_is_rescued(zero_cfg: LoadedConfig, make_shared: Factory) -> None:
    """Triggers leased to a replica stuck mid-dispatch are re-sent by another once the lease ran out."""
    now = [1_763_000_000.0]
    stuck = MemorySink()
    stuck.hang = True
    a = make_shared(zero_cfg, stuck, owner="a", lease_s=5.0, clock=lambda: now[0])
    if not a.state.shared:
        pytest.skip(
            "an embedded SQLite store serves one instance: concurrent replicas need PostgreSQL"
        )
    await a.start()
    await submit_all(a, STREAM[:20])
    await a._flush_marks()
    rows = await a._in_state(a.state.outbox_rows)
    # in flight on a (leased, up to each target's concurrency); the rest given back to the store
    held = {r.trigger_id for r in rows if r.status == "leased"}
    assert held and {(r.status, r.lease_owner) for r in rows} <= {
        ("leased", "a"),
        ("pending", None),
    }
    for t in a._background:  # a hangs for good: no lease renewal, no pump, no poll
        t.cancel()
    sink = MemorySink()
    b = make_shared(zero_cfg, sink, owner="b", lease_s=5.0, clock=lambda: now[0])
    await b.start()
    assert await b.idle()  # b sends what waits in the store at once, not a's leased rows
    assert {t.trigger_id for t in sink.received} == {r.trigger_id for r in rows} - held
    now[0] += 6
    await b.claim()  # or b's poll loop, whichever comes first: the rows are b's now
    assert await b.idle()
    assert sorted(t.trigger_id for t in sink.received) == sorted(r.trigger_id for r in rows)
    assert set(await b._in_state(b.state.outbox_counts)) == {"done"}


@pytest.mark.parametrize(
    ("marks", "want", "finished"),
    [
        ([rm.Done(7, 1, 5.0)], [Done(7, 1, 5.0)], {7}),
        ([rm.DoneMany((7, 8), (1, 3), 5.0)], [Done(7, 1, 5.0), Done(8, 3, 5.0)], {7, 8}),
        ([rm.Attempt(7, 2)], [Attempted(7, 2, "")], set()),
        (
            [
                rm.Dead(7, 3, 5.0, "boom"),
                rm.DeadLetter("trigger", "t-1#7", "permanent_error", "boom", b"x", 5.0),
            ],
            [Dead(7, 3, 5.0, "permanent_error", "boom")],
            {7},
        ),
        ([rm.Dead(8, 3, 5.0, "boom")], [Dead(8, 3, 5.0, "max_attempts", "boom")], {8}),
        ([rm.Retry(9, 2, 30.0, "503", "p")], [RetryLater(9, 2, 30.0, "503")], {9}),
        ([rm.Redrive("p", 5.0)], [RedriveLane("p", 5.0)], set()),
        ([rm.Release(7)], [Released(7)], {7}),
    ],
)
def test_dispatch_marks_map_onto_the_outbox(
    marks: list[rm.Mark], want: list[Any], finished: set[int]
) -> None:
    """Done/DoneMany/Attempt/Dead/Retry/Release/Redrive become the store's marks; a trigger's dead letter rides on its Dead."""
    sm = state_marks(marks)
    assert (sm.marks, sm.letters, sm.finished) == (want, [], finished)


def test_event_dead_letters_stay_letters() -> None:
    """A dead letter that is not a trigger's is stored as a dead letter."""
    sm = state_marks([rm.DeadLetter("event", "m1", "bad", "d", b"p", 1.0)])
    assert sm.letters == [DeadLetterIn("event", "m1", "bad", "d", b"p", 1.0)] and sm.marks == []


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://sr:s3cret@db:5432/x", "postgresql://sr:***@db:5432/x"),
        ("postgresql://sr@db/x?host=/cloudsql/p", "postgresql://sr@db/x?host=/cloudsql/p"),
        ("sqlite:///var/state.db", "sqlite:///var/state.db"),
    ],
)
def test_state_location_password_is_redacted(url: str, shown: str) -> None:
    """serve --print-config and errors show a DSN without its password."""
    from scoperouter.runtime.config import redact_url, resolve

    assert redact_url(url) == shown
    assert resolve({}, {"SCOPEROUTER_STATE": url}, {}).to_json()["state"] == {
        "value": shown,
        "source": "$SCOPEROUTER_STATE",
    }


async def test_daemon_routes_on_the_state_from_routes_yaml(tmp_path: Path, location: str) -> None:
    """server.state in routes.yaml makes the daemon a SharedRouter on that store; events route over HTTP."""
    import aiohttp

    from scoperouter.runtime.daemon import Daemon, DaemonSettings

    cfg = load(write_registry(tmp_path / "cfg", server={"state": "${STATE_URL}"}))
    d = Daemon(
        cfg.registry,
        cfg.relations,
        DaemonSettings(
            state_dir=tmp_path / "s",
            port=0,
            as_of=GAME_DAY,
            sync="normal",
            env={"STATE_URL": location},
            state_poll_interval_s=0.02,
        ),
    )
    assert isinstance(d.router, SharedRouter) and d.store is None
    await d.start()
    try:
        async with aiohttp.ClientSession() as s:
            async with s.get(f"http://127.0.0.1:{d.port}/readyz") as r:
                assert r.status == 200
            for e in STREAM[:30]:
                async with s.post(f"http://127.0.0.1:{d.port}/events", json=e) as r:
                    assert r.status == 200, await r.text()
        assert await d.router.idle()
        rows = await d.router._in_state(d.router.state.outbox_rows)
        assert rows and {r.status for r in rows} == {"done"}
    finally:
        await d.stop()


def test_unusable_state_location_is_a_config_error(tmp_path: Path, zero_cfg: LoadedConfig) -> None:
    """A state store that cannot be opened fails at start with one line naming it (password hidden)."""
    from scoperouter.errors import ConfigError
    from scoperouter.runtime.daemon import Daemon, DaemonSettings

    bad = "postgresql://sr:pw@127.0.0.1:1/nope?connect_timeout=2"
    with pytest.raises(ConfigError, match=r"postgresql://sr:\*\*\*@127.0.0.1:1/nope") as info:
        Daemon(
            zero_cfg.registry,
            zero_cfg.relations,
            DaemonSettings(state_dir=tmp_path / "s", port=0, state=bad),
        )
    assert "pw" not in str(info.value)


async def test_unparseable_pubsub_message_is_dead_lettered_once(
    zero_cfg: LoadedConfig, make_shared: Factory
) -> None:
    """A message that does not parse is stored as an event dead letter (acked); its redelivery stores nothing new."""
    r = make_shared(zero_cfg, MemorySink())
    await r.start()
    bad = Inbound("pubsub", data=b"{not json", message_id="m-1", dead_letter_on_reject=True)
    first, again = await r.submit(bad), await r.submit(bad)
    assert (first.status, first.dead_lettered, first.ack) == ("rejected", True, True)
    assert again.ack
    letters = await r._in_state(r.state.dead_letters)
    assert [(d.kind, d.ref) for d in letters] == [("event", "m-1")]
    ok = await r.submit(Inbound("pubsub", data=json.dumps(STREAM[0]).encode(), message_id="m-2"))
    assert ok.status == "accepted"


async def test_first_start_on_a_state_store_imports_the_old_one(
    tmp_path: Path,
    location: str,
    slow_cfg: LoadedConfig,
    make_router: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """serve --state after an upgrade takes the old store's open windows once (a restart imports nothing, and says so)."""
    from scoperouter.runtime.daemon import Daemon, DaemonSettings
    from scoperouter.runtime.state_open import import_old_state

    old = make_router(slow_cfg, MemorySink(), state_dir=tmp_path / "s")
    await old.start()
    await submit_all(old, CALM[:40])
    opened = old.book.open_count
    await old.stop(timeout=1.0)
    old.store.close()
    assert opened > 0
    d = Daemon(
        slow_cfg.registry,
        slow_cfg.relations,
        DaemonSettings(
            state_dir=tmp_path / "s", port=0, as_of=GAME_DAY, sync="normal", state=location
        ),
    )
    try:
        assert d.state_store is not None
        assert d.state_store.open_window_count() == opened
        caplog.clear()
        assert not import_old_state(
            d.state_store, tmp_path / "s" / "state.sqlite3", slow_cfg.registry
        )
        said = [r for r in caplog.records if "not imported" in r.getMessage()]
        assert [(r.levelname, getattr(r, "windows", None)) for r in said] == [("WARNING", opened)]
    finally:
        if d.state_store is not None:
            d.state_store.close()


async def test_graceful_stop_gives_unfinished_leases_back(
    zero_cfg: LoadedConfig, make_shared: Factory
) -> None:
    """A replica stopped mid-dispatch hands its leased triggers back at once, for another to send."""
    now = [1_763_000_000.0]
    stuck = MemorySink()
    stuck.hang = True
    a = make_shared(zero_cfg, stuck, owner="a", lease_s=300.0, clock=lambda: now[0])
    await a.start()
    await submit_all(a, STREAM[:20])
    await a.stop(timeout=0.5)
    rows = a.state.outbox_rows()  # stopped: no state thread any more
    assert rows and {(r.status, r.lease_owner) for r in rows} == {("pending", None)}
    sink = MemorySink()
    b = make_shared(zero_cfg, sink, owner="b", lease_s=300.0, clock=lambda: now[0])
    await b.start()
    await b.claim()  # no lease had to run out
    assert await b.idle()
    assert sorted(t.trigger_id for t in sink.received) == sorted(r.trigger_id for r in rows)


async def test_state_store_fires_like_every_other_driver(
    tmp_path: Path, make_shared: Factory
) -> None:
    """Issue 13 acceptance 1 on the state stores: a clock-driven stream (windows 10s/30s,
    critical events) through the router on SQLite / PostgreSQL gives replay's triggers, in
    replay's order, stamped at replay's times (test_engine_drivers.py pins the other drivers
    to replay)."""
    cfg = load(write_registry(tmp_path / "cfg", quiet="10s", max_wait="30s"))
    raws = game_day_stream(160, seed=11)
    times = []
    for line in as_lines(raws):
        ev = parse_event_bytes(line, cfg.registry)
        assert ev.produced_at is not None
        times.append(ev.produced_at.timestamp())
    assert any(e.get("priority") == "critical" for e in raws)
    replayed = replay_events(cfg.registry, cfg.relations, as_lines(raws), GAME_DAY).triggers
    assert len(replayed) > 40
    expected = [(t.trigger_id, t.fired_at) for t in replayed]

    now = [times[0]]
    sink = MemorySink()
    r = make_shared(cfg, sink, clock=lambda: now[0])
    await r.start()
    for raw, at in zip(raws, times, strict=True):
        while (dl := r._next_deadline) is not None and dl <= at:
            now[0] = dl
            await r.fire_due()
        now[0] = at
        assert (await r.submit(Inbound("test", obj=raw))).ack
    while (dl := r._next_deadline) is not None:
        now[0] = dl
        await r.fire_due()
    assert await r.idle()
    rows = sorted(await r._in_state(r.state.outbox_rows), key=lambda row: row.item_id)
    fired_at = {t.trigger_id: t.fired_at for t in sink.received}
    assert len(fired_at) == len(rows)
    got = [(row.trigger_id, fired_at[row.trigger_id]) for row in rows]  # outbox (firing) order
    assert all(isinstance(at, datetime) and at.tzinfo == UTC for _i, at in got)
    assert got == expected


async def test_ingest_batches_do_not_each_ask_the_store_for_due_windows(
    slow_cfg: LoadedConfig, make_shared: Factory
) -> None:
    """A batch hands its next deadline over; nothing due, no poll interval passed: the
    timer asks the store nothing (it used to, once per batch, on the state thread)."""
    r = make_shared(slow_cfg, MemorySink(), clock=lambda: 1_763_000_000.0)
    r.poll_interval_s = 3600.0
    calls = [0]
    next_deadline = r.state.next_deadline

    def counted() -> float | None:
        calls[0] += 1
        return next_deadline()

    r.state.next_deadline = counted  # type: ignore[method-assign]
    await r.start()
    for e in CALM[:20]:
        assert (await r.submit(Inbound("test", obj=e))).status == "accepted"
    await asyncio.sleep(0.05)
    # the start and the timer's first poll, which asks twice: it fires once whatever the
    # deadline (the store may hold a window a clock step left ahead: not known yet)
    assert calls[0] <= 3


@pytest.mark.parametrize(
    ("queued", "arriving", "ok", "barrier", "writes", "stopping"),
    [
        (1, False, True, False, [False, False, False, True, False], False),  # unanswered: 3 ticks
        # a stream between two batches: messages arrived since the last tick
        (0, True, True, False, [False, False, False, True, False], False),
        (0, False, True, False, [True] * 5, False),  # none unanswered or arriving: no batch
        (1, False, False, False, [True] * 5, False),  # a failing store: the write probes it
        (0, True, False, False, [True] * 5, False),  # arriving, but the store fails: probe
        (1, True, True, True, [True] * 5, False),  # a barrier never waits
        (1, True, True, False, [True] * 5, True),  # stopping: no batch comes
    ],
)
async def test_mark_flusher_leaves_marks_to_the_next_ingest_batch(
    zero_cfg: LoadedConfig,
    make_shared: Factory,
    queued: int,
    arriving: bool,
    ok: bool,
    barrier: bool,
    writes: list[bool],
    stopping: bool,
) -> None:
    """While events are queued, in a batch or arriving since the last tick (the next batch
    takes the marks into its own commit) the flusher skips its write, MARKS_RIDE_TICKS
    ticks in a row at most."""
    r = make_shared(zero_cfg, MemorySink())
    written: list[int] = []
    r._write_marks_tx = lambda marks: written.append(len(marks))  # type: ignore[method-assign]
    r._unfinished = queued  # events queued or in a batch, not yet answered
    r.health.ok = ok
    r._stopping = stopping
    got = []
    for k in range(len(writes)):
        r.marks.append(rm.Done(k + 1, 1, 1.0))
        if arriving:  # a message came in (and was answered) since the last tick
            r._submitted += 1
        before = len(written)
        await r._flush_marks(barrier=barrier)
        got.append(len(written) > before)
    assert got == writes
    assert sum(written) + len(r.marks.take()) == len(writes)  # no mark lost
    r._unfinished, r._stopping = 0, False

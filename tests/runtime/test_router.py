"""Router core against in-memory sinks: routing equals the replay dry-run, idempotency,
durable windows across restarts, outbox re-dispatch, retries and dead letters."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from runtime_support import (
    GAME_DAY,
    MemorySink,
    RouterFactory,
    dry_run_keys,
    game_day_stream,
    key_of,
    load,
    write_registry,
)

from scoperouter.processor_registry.loader import LoadedConfig
from scoperouter.runtime.router import Inbound, Origin

STREAM = game_day_stream(500)


async def submit_all(
    router: Any, events: list[dict[str, Any]], origin: Origin = "test"
) -> list[Any]:
    return list(await asyncio.gather(*(router.submit(Inbound(origin, obj=e)) for e in events)))


async def test_stream_routes_like_the_dry_run(
    zero_cfg: LoadedConfig, make_router: RouterFactory
) -> None:
    """A 500-event game day yields exactly the triggers `replay --dry-run` computes."""
    sink = MemorySink()
    r = make_router(zero_cfg, sink)
    await r.start()
    outs = await submit_all(r, STREAM)
    assert {o.status for o in outs} == {"accepted"}
    assert await r.idle()
    want = dry_run_keys(zero_cfg, STREAM)
    assert want, "the stream must fire something"
    assert sorted(key_of(t) for t in sink.received) == want


@pytest.mark.parametrize("copies", [2, 3])
async def test_duplicates_change_nothing(
    zero_cfg: LoadedConfig, make_router: RouterFactory, copies: int
) -> None:
    """Every event sent several times (interleaved, concurrent) is routed once."""
    sink = MemorySink()
    r = make_router(zero_cfg, sink)
    await r.start()
    events = STREAM[:200]
    outs = await submit_all(r, [e for e in events for _ in range(copies)])
    assert sum(o.status == "accepted" for o in outs) == len(events)
    assert sum(o.status == "duplicate" for o in outs) == len(events) * (copies - 1)
    assert await r.idle()
    got = sorted(key_of(t) for t in sink.received)
    assert got == dry_run_keys(zero_cfg, events)
    assert len({t.trigger_id for t in sink.received}) == len(sink.received)
    assert r.metrics.events_duplicate._value.get() == len(events) * (copies - 1)


async def test_duplicate_after_restart_is_recognised(
    zero_cfg: LoadedConfig, make_router: RouterFactory
) -> None:
    """Seen ids are durable: a redelivery after a restart changes nothing."""
    sink = MemorySink()
    r1 = make_router(zero_cfg, sink)
    await r1.start()
    await submit_all(r1, STREAM[:50])
    assert await r1.idle()
    await r1.stop()
    n = len(sink.received)
    r2 = make_router(zero_cfg, sink)
    await r2.start()
    outs = await submit_all(r2, STREAM[:50])
    assert {o.status for o in outs} == {"duplicate"}
    assert await r2.idle()
    assert len(sink.received) == n


async def test_dedup_horizon_expiry_routes_again(
    zero_cfg: LoadedConfig, make_router: RouterFactory
) -> None:
    """Past the dedup horizon, a re-sent event is routed again (and never silently lost)."""
    now = [1_000_000.0]
    sink = MemorySink()
    r = make_router(zero_cfg, sink, clock=lambda: now[0], dedup_horizon_s=60.0)
    await r.start()
    ev = STREAM[0]
    assert (await r.submit(Inbound("test", obj=ev))).status == "accepted"
    assert (await r.submit(Inbound("test", obj=ev))).status == "duplicate"
    now[0] += 120.0
    with r.store.transaction():
        r.store.prune_seen(now[0] - r.options.dedup_horizon_s)
    assert (await r.submit(Inbound("test", obj=ev))).status == "accepted"


def windowed_cfg(tmp_path: Path) -> LoadedConfig:
    return load(write_registry(tmp_path / "win", quiet="30s", max_wait="2m"))


async def test_open_windows_survive_restart(tmp_path: Path, make_router: RouterFactory) -> None:
    """Windows open at shutdown are restored and fire after the restart, as in one run."""
    cfg = windowed_cfg(tmp_path)
    now = [2_000_000.0]
    events = [e for e in STREAM[:120] if e.get("priority") != "critical"]
    sink = MemorySink()
    r1 = make_router(cfg, sink, clock=lambda: now[0])
    await r1.start()
    await submit_all(r1, events[:60])
    open_before = r1.book.open_count
    assert open_before > 0
    await r1.stop()
    assert sink.received == []
    r2 = make_router(cfg, sink, clock=lambda: now[0])
    await r2.start()
    assert r2.book.open_count == open_before
    await submit_all(r2, events[60:])
    now[0] += 200.0
    assert await r2.fire_due() > 0
    assert await r2.idle()
    # the same events in one uninterrupted run, at the same virtual time
    ref = MemorySink()
    (tmp_path / "ref").mkdir()
    from scoperouter.runtime.router import Router, RouterOptions
    from scoperouter.runtime.store import Store

    r3 = Router(
        cfg.registry,
        cfg.relations,
        Store(tmp_path / "ref" / "s.db", sync="normal"),
        {p: ref for p in cfg.registry.processors},
        options=RouterOptions(as_of=GAME_DAY),
        clock=lambda: now[0] - 200.0,
    )
    await r3.start()
    await submit_all(r3, events)
    r3.clock = lambda: now[0]
    await r3.fire_due()
    assert await r3.idle()
    await r3.stop()
    assert sorted(key_of(t) for t in sink.received) == sorted(key_of(t) for t in ref.received)


async def test_journal_replays_without_snapshot(tmp_path: Path, make_router: RouterFactory) -> None:
    """A crash (no graceful snapshot) rebuilds the same windows from the journal."""
    cfg = windowed_cfg(tmp_path)
    now = [3_000_000.0]
    r1 = make_router(cfg, MemorySink(), clock=lambda: now[0])
    await r1.start()
    await submit_all(r1, STREAM[:80])
    snap = r1.book.snapshot()
    assert r1.store.journal_length() > 0
    # simulate a crash: abandon r1 without stop(); a new router opens the same file
    for t in r1._background:
        t.cancel()
    r1._started = False
    r2 = make_router(cfg, MemorySink(), clock=lambda: now[0])
    await r2.start()
    assert r2.book.snapshot() == snap


async def test_pending_triggers_redispatched_and_counted(
    zero_cfg: LoadedConfig, make_router: RouterFactory
) -> None:
    """Triggers not acknowledged at shutdown are dispatched after restart, and counted."""
    stuck = MemorySink()
    stuck.hang = True
    r1 = make_router(zero_cfg, stuck)
    await r1.start()
    await submit_all(r1, STREAM[:30])
    await asyncio.sleep(0.05)
    pending = r1.store.trigger_counts().get("pending", 0)
    assert pending > 0
    await r1.stop(timeout=0.2)
    ok = MemorySink()
    r2 = make_router(zero_cfg, ok)
    await r2.start()
    assert await r2.idle()
    assert r2.metrics.redispatched._value.get() == pending
    assert len(ok.received) == pending
    assert sorted(key_of(t) for t in ok.received) == dry_run_keys(zero_cfg, STREAM[:30])
    assert r2.store.trigger_counts().get("pending", 0) == 0


@pytest.mark.parametrize(
    ("fail_first", "max_attempts", "final", "calls"),
    [(0, 3, "done", 1), (2, 3, "done", 3), (3, 3, "dead", 3), (5, 1, "dead", 1)],
)
async def test_retries_then_dead_letter(
    tmp_path: Path,
    make_router: RouterFactory,
    fail_first: int,
    max_attempts: int,
    final: str,
    calls: int,
) -> None:
    """Failures are retried with backoff up to max_attempts, then dead-lettered with a reason."""
    cfg = load(
        write_registry(tmp_path / "r", default_target={"outbox": {}, "max_attempts": max_attempts})
    )
    sink = MemorySink()
    sink.fail_first = fail_first
    r = make_router(cfg, sink, backoff_base_s=0.001, backoff_cap_s=0.01)
    await r.start()
    # an injury reason only: relevant to player_game_summary alone
    ev = {
        "event_id": "one",
        "source": "nba_raw.nbac_injury_report",
        "game_date": "2025-11-19",
        "affected_entities": {"players": ["lalplayer01"]},
        "changed_fields": ["injury_reason"],
    }
    assert (await r.submit(Inbound("test", obj=ev))).triggers == 1
    assert await r.idle()
    await r._flush_marks()
    assert r.store.trigger_counts() == {final: 1}
    assert sink.calls == calls
    assert len(sink.received) == (1 if final == "done" else 0)
    dls = [d for d in r.store.dead_letters() if d.kind == "trigger"]
    assert len(dls) == (1 if final == "dead" else 0)
    if dls:
        assert dls[0].reason == "max_attempts"
        assert json.loads(dls[0].payload or b"{}")["processor"] == "player_game_summary"
        assert r.metrics.dead_lettered.labels("trigger", "max_attempts")._value.get() == 1


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{not json", "not_json"),
        (b"[1, 2]", "not_an_object"),
        (b'{"source": "nba_raw.nbac_injury_report"}', "missing_date"),
        (b'{"source": "nba_raw.nbac_injury_report", "game_date": "2025-13-40"}', "invalid_date"),
        (b'{"source": "x.y", "game_date": "2025-11-19", "status": "weird"}', "invalid_status"),
    ],
)
async def test_invalid_pubsub_message_is_dead_lettered(
    zero_cfg: LoadedConfig, make_router: RouterFactory, raw: bytes, reason: str
) -> None:
    """An invalid message from Pub/Sub is stored as a dead letter with its reason, then acked."""
    r = make_router(zero_cfg)
    await r.start()
    out = await r.submit(Inbound("pubsub", data=raw, message_id="m-1", dead_letter_on_reject=True))
    assert out.status == "rejected" and out.reason == reason and out.ack
    again = await r.submit(
        Inbound("pubsub", data=raw, message_id="m-1", dead_letter_on_reject=True)
    )
    assert again.ack
    dls = r.store.dead_letters()
    assert [(d.kind, d.ref, d.reason, d.payload) for d in dls] == [("event", "m-1", reason, raw)]
    assert r.metrics.events_rejected.labels(reason)._value.get() == 2
    assert r.metrics.dead_lettered.labels("event", reason)._value.get() == 1


async def test_unknown_source_routes_nothing(
    zero_cfg: LoadedConfig, make_router: RouterFactory
) -> None:
    """A source no processor reads is accepted with every decision not_an_input."""
    sink = MemorySink()
    r = make_router(zero_cfg, sink)
    await r.start()
    out = await r.submit(
        Inbound(
            "test",
            obj={"source_table": "bdl_standings", "game_date": "2025-11-19", "execution_id": "s1"},
        )
    )
    assert out.status == "accepted" and out.triggers == 0
    assert await r.idle()
    assert sink.received == []
    assert r.metrics.decisions.labels("not_an_input")._value.get() == len(
        zero_cfg.registry.processors
    )


async def test_slow_processor_does_not_delay_others(
    tmp_path: Path, make_router: RouterFactory
) -> None:
    """One hanging processor's semaphore never blocks another processor's dispatch."""
    cfg = load(write_registry(tmp_path / "s", default_target={"outbox": {}, "concurrency": 1}))
    hang, fast = MemorySink("hang"), MemorySink("fast")
    hang.hang = True
    sinks = {p: (hang if p == "player_game_summary" else fast) for p in cfg.registry.processors}
    r = make_router(cfg, sinks=sinks)
    await r.start()
    await submit_all(r, STREAM[:100])
    want = [k for k in dry_run_keys(cfg, STREAM[:100]) if k[0] != "player_game_summary"]
    for _ in range(500):  # everything else is delivered while player_game_summary hangs
        if len(fast.received) >= len(want):
            break
        await asyncio.sleep(0.01)
    assert sorted(key_of(t) for t in fast.received) == want
    assert hang.calls == 1  # concurrency 1: the rest wait behind the hanging call


class RecordingLog:
    """Implements the ExecutionLog calls the router makes; records them."""

    def __init__(self) -> None:
        self.decisions: list[tuple[str, int]] = []
        self.dispatches: list[tuple[str, str, int]] = []
        self.completions: list[tuple[str, Any, int, int | None]] = []
        self.flushes = 0

    def record_decisions(self, event: Any, decisions: Any, decided_at: Any, **kw: Any) -> list[str]:
        assert kw["registry"] is not None and decided_at.tzinfo is not None
        self.decisions.append((event.event_id, len(decisions)))
        return []

    def record_dispatch(
        self,
        trigger: Any,
        *,
        status: str,
        attempts: int,
        latency_ms: Any,
        dispatched_at: Any,
        error: Any = None,
    ) -> None:
        self.dispatches.append((trigger.trigger_id, status, attempts))

    def record_completion(
        self,
        processor: str,
        game_date: Any,
        *,
        trigger_id: str | None,
        records_processed: int,
        entities_changed: int | None,
        duration_s: float,
    ) -> None:
        self.completions.append((processor, game_date, records_processed, entities_changed))

    def flush(self) -> None:
        self.flushes += 1

    def close(self) -> None:
        self.flush()


async def test_execution_log_hook(zero_cfg: LoadedConfig, make_router: RouterFactory) -> None:
    """Every accepted event's decisions, every dispatch outcome and every processor
    completion reach the execution log (a redelivered event adds nothing)."""
    from scoperouter.execution_log.completions import completion_from_event
    from scoperouter.messages.normalize import normalize_event
    from scoperouter.runtime.router import Router, RouterOptions
    from scoperouter.runtime.store import Store

    log = RecordingLog()
    sink = MemorySink()
    r = Router(
        zero_cfg.registry,
        zero_cfg.relations,
        Store(":memory:"),
        {p: sink for p in zero_cfg.registry.processors},
        options=RouterOptions(as_of=GAME_DAY),
        log=log,
    )
    await r.start()
    events = STREAM[:40]
    await submit_all(r, events + events[:5])
    assert await r.idle()
    await r.stop()
    n_proc = len(zero_cfg.registry.processors)
    assert sorted(e for e, _ in log.decisions) == sorted(
        {normalize_event(ev, zero_cfg.registry).event_id for ev in events}
    )
    assert {n for _, n in log.decisions} == {n_proc}
    assert sorted(t for t, _, _ in log.dispatches) == sorted(t.trigger_id for t in sink.received)
    assert {(s, a) for _, s, a in log.dispatches} == {("ok", 1)}
    assert log.flushes >= 1
    # processors' own completion events (legacy shapes included) become completions, once each
    reports = [
        completion_from_event(zero_cfg.registry, normalize_event(ev, zero_cfg.registry))
        for ev in events
    ]
    want = [
        (c.processor, c.game_date, c.records_processed, c.entities_changed)
        for c in reports
        if c is not None
    ]
    assert want, "the stream slice holds processor completions"
    assert sorted(log.completions) == sorted(want)


async def test_sqlite_execution_log_rows(
    tmp_path: Path, zero_cfg: LoadedConfig, make_router: RouterFactory
) -> None:
    """With the SQLite execution log, dispatched triggers are linked to their decisions."""
    import sqlite3

    from scoperouter.execution_log import LOG_TABLE, open_log
    from scoperouter.runtime.router import Router, RouterOptions
    from scoperouter.runtime.store import Store

    log = open_log(tmp_path / "log.sqlite")
    sink = MemorySink()
    r = Router(
        zero_cfg.registry,
        zero_cfg.relations,
        Store(tmp_path / "st.db"),
        {p: sink for p in zero_cfg.registry.processors},
        options=RouterOptions(as_of=GAME_DAY),
        log=log,
    )
    await r.start()
    await submit_all(r, STREAM[:30])
    assert await r.idle()
    await r.stop()
    log.close()
    db = sqlite3.connect(tmp_path / "log.sqlite")
    linked = {
        row[0]
        for row in db.execute(
            f"SELECT DISTINCT trigger_id FROM {LOG_TABLE} WHERE trigger_id IS NOT NULL"
        )
    }
    assert linked == {t.trigger_id for t in sink.received}
    statuses = {
        row[0]
        for row in db.execute(
            f"SELECT DISTINCT dispatch_status FROM {LOG_TABLE} WHERE trigger_id IS NOT NULL"
        )
    }
    assert statuses - {None} == {"ok"}


@pytest.mark.parametrize(
    ("priority", "quiet", "fires_within"),
    [("normal", "150ms", 1.0), ("critical", "1h", 0.2)],
)
async def test_live_windows_fire_on_the_real_clock(
    tmp_path: Path, make_router: RouterFactory, priority: str, quiet: str, fires_within: float
) -> None:
    """The timer task fires a window after its quiet time; a critical event fires at once."""
    cfg = load(write_registry(tmp_path / "live", quiet=quiet, max_wait="2h"))
    sink = MemorySink()
    r = make_router(cfg, sink)
    await r.start()
    ev = {
        "event_id": f"live-{priority}",
        "source": "nba_raw.nbac_injury_report",  # injury_reason: player_game_summary alone
        "game_date": "2025-11-19",
        "affected_entities": {"players": ["lalplayer01"]},
        "changed_fields": ["injury_reason"],
        "priority": priority,
    }
    t0 = asyncio.get_running_loop().time()
    await r.submit(Inbound("test", obj=ev))
    if priority == "normal":
        await asyncio.sleep(0.05)
        assert sink.received == [] and r.book.open_count == 1
    while not sink.received and asyncio.get_running_loop().time() - t0 < fires_within:
        await asyncio.sleep(0.01)
    assert [t.processor for t in sink.received] == ["player_game_summary"]
    assert sink.received[0].priority == priority
    assert r.book.open_count == 0

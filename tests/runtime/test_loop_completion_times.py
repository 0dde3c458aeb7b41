"""Completions through the daemon's ingest (Router.submit, SQLite state) that no dedupe
catches any more -- redelivered past the dedup horizon -- or that name a trigger the
ledger no longer holds: a completion carrying its production time never closes a trigger
fired after it (docs/ledger.md, "Which completion closes which trigger")."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from loop_support import injury, send
from runtime_support import GAME_DAY, MemorySink, RouterFactory, load, write_registry

from scoperouter.router import ledger_applied
from scoperouter.runtime.router import Router

T0 = 1_764_000_000.0
P = "player_game_summary"


# production's unified completion of a player_game_summary run (SPEC section 3's fields)
UNIFIED = {
    "processor_name": "PlayerGameSummaryProcessor",
    "phase": "phase_3_analytics",
    "execution_id": "ab12cd34",
    "game_date": GAME_DAY.isoformat(),
    "output_table": "player_game_summary",
    "output_dataset": "nba_analytics",
    "status": "success",
}


def phases(r: Router) -> list[tuple[tuple[str, ...] | None, str]]:
    """(entity ids, phase) of P's entries, first fired first."""
    loop = r.windows.engine.loop
    assert loop is not None
    entries = sorted(loop.ledger.entries(), key=lambda e: e.opened_at)
    return [(e.trigger.entity_ids, e.phase) for e in entries if e.trigger.processor == P]


async def test_unified_message_redelivered_past_the_horizon_closes_no_newer_trigger(
    tmp_path: Path, make_router: RouterFactory
) -> None:
    """Production's message (timestamp, no trigger id) redelivered after 24 h leaves T2 open."""
    cfg = load(
        write_registry(tmp_path / "cfg", defaults={"run_retries": 1, "completion_timeout": "2d"})
    )
    now = [T0]
    r = make_router(cfg, MemorySink(), clock=lambda: now[0], state_dir=tmp_path)
    r.prune_clock.monotonic = lambda: now[0]
    await r.start()
    await send(r, injury("e-1", "lalplayer01"))
    now[0] += 1
    unified = {**UNIFIED, "timestamp": datetime.fromtimestamp(now[0], UTC).isoformat()}
    assert await send(r, unified) == ("accepted", None)
    now[0] += 86400 + 120  # past the dedup horizon and the applied ids' day
    await r._in_state(r._prune)
    await send(r, injury("e-2", "bosplayer01"))
    now[0] += 1
    assert (await send(r, unified))[0] == "accepted"  # routed again: no dedupe is left
    assert phases(r) == [(("lalplayer01",), "succeeded"), (("bosplayer01",), "dispatched")]
    assert _total(r, "scoperouter_completions_unmatched_total") == 1  # and logged
    await r.stop(timeout=2.0)


async def test_routed_report_matching_nothing_redelivered_past_a_short_horizon(
    tmp_path: Path, make_router: RouterFactory
) -> None:
    """A routed report (no time) that matched nothing, redelivered past a 1 h dedup horizon, leaves T2 open."""
    cfg = load(
        write_registry(
            tmp_path / "cfg",
            server={"dedup_horizon": "1h"},
            defaults={"run_retries": 1, "completion_timeout": "2d"},
        )
    )
    now = [T0]
    r = make_router(
        cfg, MemorySink(), clock=lambda: now[0], state_dir=tmp_path, dedup_horizon_s=3600.0
    )
    r.prune_clock.monotonic = lambda: now[0]
    await r.start()
    unified = UNIFIED  # a run the router did not send, without a time
    assert await send(r, unified) == ("accepted", None)  # no trigger open: matches nothing
    now[0] += 7200  # past the seen ids' hour, within the ledger memory's day
    await r._in_state(r._prune)
    await send(r, injury("e-2", "bosplayer01"))
    now[0] += 1
    await send(r, unified)
    assert phases(r) == [(("bosplayer01",), "dispatched")]  # review6: it was closed
    await r.stop(timeout=2.0)


def _total(r: Router, name: str, **labels: str) -> float:
    return sum(
        s.value
        for fam in r.metrics.registry.collect()
        for s in fam.samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


async def test_reports_matching_nothing_never_push_out_an_applied_id(
    tmp_path: Path,
    make_router: RouterFactory,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A flood of reports matching nothing is evicted (counted, logged once), never run-1's id."""
    monkeypatch.setattr(ledger_applied, "APPLIED_MAX", 3)
    cfg = load(
        write_registry(tmp_path / "cfg", defaults={"run_retries": 1, "completion_timeout": "10m"})
    )
    now = [T0]
    r = make_router(cfg, MemorySink(), clock=lambda: now[0], state_dir=tmp_path)
    await r.start()
    await send(r, injury("e-1", "lalplayer01"))
    report = {"processor": P, "game_date": GAME_DAY.isoformat(), "status": "success"}
    now[0] += 1
    await send(r, {**report, "execution_id": "run-1"})
    with caplog.at_level("WARNING", logger="scoperouter.runtime"):
        for i in range(5):  # another date: they match no trigger
            await send(r, {**report, "game_date": "2025-11-18", "execution_id": f"other-{i}"})
    now[0] += 1
    await send(r, injury("e-2", "bosplayer01"))
    await send(r, {**report, "execution_id": "run-1"})  # redelivered
    assert phases(r) == [(("lalplayer01",), "succeeded"), (("bosplayer01",), "dispatched")]
    evicted = "scoperouter_completion_ids_evicted_total"
    assert _total(r, evicted, memory="unmatched") == 2
    assert _total(r, evicted, memory="applied") == 0
    logged = [rec for rec in caplog.records if hasattr(rec, "evicted")]
    assert [rec.evicted for rec in logged] == [{"unmatched": 1}]  # once a minute at most
    await r.stop(timeout=2.0)


@pytest.mark.parametrize(
    ("trigger_id", "unmatched"),
    [
        (None, 1),  # the forgotten trigger's own id
        ("t-0123456789abcdef01234567", 1),  # a trigger the ledger never held
        ("bf-0123456789abcdef", 0),  # a backfill run's: the backfill waits for it
    ],
)
async def test_report_for_a_trigger_the_ledger_does_not_hold_is_counted(
    tmp_path: Path,
    make_router: RouterFactory,
    caplog: pytest.LogCaptureFixture,
    trigger_id: str | None,
    unmatched: int,
) -> None:
    """A partial naming a forgotten (or unknown) trigger re-runs nothing: counted and logged."""
    cfg = load(write_registry(tmp_path / "cfg", defaults={"run_retries": 2}))
    now = [T0]
    sink = MemorySink()
    r = make_router(cfg, sink, clock=lambda: now[0], state_dir=tmp_path)
    await r.start()
    await send(r, injury("e-1", "lalplayer01"))
    loop = r.windows.engine.loop
    assert loop is not None
    (tid,) = [e.trigger_id for e in loop.ledger.entries() if e.trigger.processor == P]
    now[0] += 5
    await send(r, {"trigger_id": tid, "status": "success", "execution_id": "x1", "source": None})
    now[0] += 86400 + 60
    await r._in_state(lambda: r.windows.compact(force=True))  # forgets it
    assert r.windows.engine.loop.ledger.get(tid) is None  # type: ignore[union-attr]
    sent = len(sink.received)
    report = {"status": "partial", "execution_id": "x1b", "source": None}
    with caplog.at_level("WARNING", logger="scoperouter.runtime"):
        out = await send(
            r, {**report, "trigger_id": trigger_id or tid, "missed_entities": ["lalplayer01"]}
        )
    assert out == ("accepted", None) and len(sink.received) == sent  # nothing re-run
    assert _total(r, "scoperouter_completions_unmatched_total") == unmatched
    logged = [rec for rec in caplog.records if getattr(rec, "reason", None) == "unknown_trigger"]
    assert [rec.missed_entities for rec in logged] == [1] * unmatched
    await r.stop(timeout=2.0)

"""Completion reports through the daemon's ingest (Router.submit, SQLite state) that name
no trigger id -- only the processor and the date, as production's unified message does --
or carry a null source: each moves exactly the trigger docs/ledger.md says, across a
redelivery and a restart."""

from __future__ import annotations

from pathlib import Path

import pytest
from loop_support import injury, send
from runtime_support import GAME_DAY, MemorySink, RouterFactory, load, write_registry

from scoperouter.runtime.router import Router

T0 = 1_764_000_000.0
P = "player_game_summary"
REPORT = {"processor": P, "game_date": GAME_DAY.isoformat(), "status": "success"}


def triggers(r: Router) -> list[tuple[str, str]]:
    """(trigger id, phase) of P's entries, oldest first."""
    loop = r.windows.engine.loop
    assert loop is not None
    entries = sorted(loop.ledger.entries(), key=lambda e: e.opened_at)
    return [(e.trigger_id, e.phase) for e in entries if e.trigger.processor == P]


def _total(r: Router, name: str) -> float:
    return sum(
        s.value for fam in r.metrics.registry.collect() for s in fam.samples if s.name == name
    )


async def _two_open(tmp_path: Path, make_router: RouterFactory, now: list[float]) -> Router:
    cfg = load(
        write_registry(tmp_path / "cfg", defaults={"run_retries": 1, "completion_timeout": "10m"})
    )
    r = make_router(cfg, MemorySink(), clock=lambda: now[0], state_dir=tmp_path)
    await r.start()
    # t-bos opens first; trigger ids are content hashes, so id order is not opening order
    await send(r, injury("e-2", "bosplayer01"))
    now[0] += 1
    await send(r, injury("e-1", "lalplayer01"))
    assert [ph for _t, ph in triggers(r)] == ["dispatched", "dispatched"]
    return r


@pytest.mark.parametrize("restart_between", [False, True])
async def test_redelivered_processor_date_report_closes_one_trigger(
    tmp_path: Path, make_router: RouterFactory, restart_between: bool
) -> None:
    """One report (processor + date, execution_id) delivered twice closes one trigger."""
    now = [T0]
    r = await _two_open(tmp_path, make_router, now)
    report = {**REPORT, "execution_id": "run-1"}
    now[0] += 1
    assert await send(r, report) == ("accepted", None)
    if restart_between:
        await r.stop(timeout=2.0)
        cfg = load(tmp_path / "cfg" / "routes.yaml")
        r = make_router(cfg, MemorySink(), clock=lambda: now[0], state_dir=tmp_path)
        await r.start()
    await send(r, report)  # Pub/Sub redelivers it
    assert [ph for _t, ph in triggers(r)] == ["succeeded", "dispatched"]


async def test_restart_keeps_the_oldest_open_trigger(
    tmp_path: Path, make_router: RouterFactory
) -> None:
    """After a restart (a snapshot) a processor + date report closes the trigger opened first."""
    now = [T0]
    r = await _two_open(tmp_path, make_router, now)
    oldest = triggers(r)[0][0]
    cfg = load(tmp_path / "cfg" / "routes.yaml")
    await r.stop(timeout=2.0)
    r2 = make_router(cfg, MemorySink(), clock=lambda: now[0], state_dir=tmp_path)
    await r2.start()
    now[0] += 1
    await send(r2, {**REPORT, "execution_id": "run-1"})
    assert [t for t, ph in triggers(r2) if ph == "succeeded"] == [oldest]


async def _one_open(tmp_path: Path, make_router: RouterFactory) -> tuple[Router, str]:
    cfg = load(write_registry(tmp_path / "cfg", defaults={"run_retries": 2}))
    r = make_router(cfg, MemorySink(), clock=lambda: T0)
    await r.start()
    await send(r, injury("e-1", "lalplayer01"))
    ((tid, phase),) = triggers(r)
    assert phase == "dispatched"
    return r, tid


@pytest.mark.parametrize(
    "nulls",
    [
        {"source": None},
        {"output_table": None, "output_dataset": None},
        {"source": None, "source_table": None, "analytics_table": None, "output_table": None},
    ],
)
async def test_failed_report_with_null_source_is_heard(
    tmp_path: Path, make_router: RouterFactory, nulls: dict[str, None]
) -> None:
    """A failed report whose source keys are null (SPEC 3: dropped) re-runs its trigger."""
    r, tid = await _one_open(tmp_path, make_router)
    report = {"trigger_id": tid, "status": "failed", "error_message": "boom", **nulls}
    assert await send(r, {**report, "execution_id": "x-1"}) == ("accepted", None)
    assert triggers(r) == [(tid, "backoff")]


async def test_production_failure_message_reruns_its_trigger(
    tmp_path: Path, make_router: RouterFactory
) -> None:
    """Production's unified failure message, null output fields kept, re-runs the trigger
    its trigger_message_id names (an HTTP target's push messageId <trigger_id>-<row>)."""
    r, tid = await _one_open(tmp_path, make_router)
    # the envelope of shared/publishers/unified_pubsub_publisher.py:188-220 (processor_name
    # is the class name, data_processors/analytics/analytics_base.py:1640), with the nulls
    # a producer that does not drop them (its :222-223 does) would send
    msg = {
        "processor_name": "PlayerGameSummaryProcessor",
        "phase": "phase_3_analytics",
        "execution_id": "x-1",
        "game_date": GAME_DAY.isoformat(),
        "status": "failed",
        "output_table": None,
        "output_dataset": None,
        "trigger_message_id": f"{tid}-1",
        "error_message": "BigQuery quota",
        "error_type": "QuotaError",
    }
    assert await send(r, msg) == ("accepted", None)
    assert triggers(r) == [(tid, "backoff")]


@pytest.mark.parametrize(
    ("name", "phase", "unmatched"),
    [
        ("PlayerGameSummaryProcessor", "backoff", 0),  # production's class name: mapped
        (P, "backoff", 0),
        ("NoSuchProcessor", "dispatched", 1),  # names nothing: counted and logged
        ("no_such_processor", "dispatched", 1),
    ],
)
async def test_processor_date_report_names_a_registry_processor(
    tmp_path: Path,
    make_router: RouterFactory,
    caplog: pytest.LogCaptureFixture,
    name: str,
    phase: str,
    unmatched: int,
) -> None:
    """A processor + date report reads a class name as its processor; an unknown one is counted."""
    r, tid = await _one_open(tmp_path, make_router)
    msg = {"processor_name": name, "execution_id": "x-1", "game_date": GAME_DAY.isoformat()}
    with caplog.at_level("WARNING", logger="scoperouter.runtime"):
        status, _reason = await send(r, {**msg, "status": "failed", "error_message": "boom"})
    assert status == "accepted"
    assert triggers(r) == [(tid, phase)]
    assert _total(r, "scoperouter_completions_unmatched_total") == unmatched
    named = [rec for rec in caplog.records if getattr(rec, "processor", None) == name]
    assert len(named) == unmatched

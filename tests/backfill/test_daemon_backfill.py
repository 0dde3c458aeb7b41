"""``POST /backfills`` on a running daemon (``scoperouter serve``'s assembly): the bearer
token of ``/events`` applies, the triggers go through the daemon's own sinks (the default
outbox target of routes.yaml) with ``reason: backfill``, and ``GET /backfills/ID`` reports
the end; ``serve --shadow`` sends nothing."""

from __future__ import annotations

import asyncio
import base64
import json
import sqlite3
import time
from datetime import date
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from backfill_support import REPO

from scoperouter.execution_log import SqliteExecutionLog
from scoperouter.execution_log.api import EVENTS_TABLE, LOG_TABLE
from scoperouter.processor_registry.loader import load_config
from scoperouter.runtime.daemon import Daemon, DaemonSettings

BODY = {"start": "2025-11-10", "end": "2025-11-11", "from": ["upcoming_player_game_context"]}


async def _post_and_wait(port: int, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as s:
        async with s.post(f"http://127.0.0.1:{port}/backfills", json=BODY, headers=headers) as r:
            if r.status != 202:
                return r.status, await r.json()
            bid = (await r.json())["backfill_id"]
        for _ in range(1000):
            async with s.get(f"http://127.0.0.1:{port}/backfills/{bid}", headers=headers) as r:
                got: dict[str, Any] = await r.json()
            if got["status"] != "running":
                return 200, got
            await asyncio.sleep(0.01)
    raise AssertionError("the backfill did not finish")


@pytest.mark.parametrize("shadow", [False, True])
async def test_daemon_runs_a_backfill_through_its_sinks(tmp_path: Path, shadow: bool) -> None:
    """401 without the token; with it the backfill ends done, one trigger per run (none in
    shadow), in the daemon's outbox."""
    cfg = load_config(REPO / "routes.yaml")
    settings = DaemonSettings(state_dir=tmp_path / "s", port=0, as_of=date(2025, 11, 14),
                              sync="normal", bearer_token="tok", shadow=shadow)  # fmt: skip
    d = Daemon(cfg.registry, cfg.relations, settings)
    await d.start()
    try:
        assert d.port is not None
        status, _ = await _post_and_wait(d.port, {})
        assert status == 401
        status, got = await _post_and_wait(d.port, {"Authorization": "Bearer tok"})
    finally:
        await d.stop()
    assert status == 200 and got["status"] == "done" and got["counts"] == {"done": got["runs"]}
    # shadow: every run done without being sent, and GET says so
    assert got["skipped"] == ({"shadow": got["runs"]} if shadow else {})
    outbox = tmp_path / "s" / "outbox.jsonl"
    sent = [json.loads(x) for x in outbox.read_text().splitlines()] if outbox.exists() else []
    if shadow:
        assert sent == []
    else:
        assert len(sent) == got["runs"] and {t["reason"] for t in sent} == {"backfill"}


async def _backfill_reported_by(
    tmp_path: Path, report: dict[str, Any]
) -> tuple[dict[str, Any], Path]:
    """One run of player_game_summary with completion "event", its completion ``report``
    (push attribute trigger_id) posted once its trigger is in the outbox: GET's final answer
    (still ``running`` after the budget) and the execution log's path."""
    cfg = load_config(REPO / "routes.yaml")
    settings = DaemonSettings(state_dir=tmp_path / "s", port=0, as_of=date(2025, 11, 14),
                              sync="normal")  # fmt: skip
    log_path = tmp_path / "elsewhere" / "log.sqlite"  # serve --log PATH: not in the state dir
    d = Daemon(cfg.registry, cfg.relations, settings, log=SqliteExecutionLog(log_path))
    await d.start()
    outbox = tmp_path / "s" / "outbox.jsonl"
    body = {"start": "2025-11-10", "end": "2025-11-10", "processors": ["player_game_summary"],
            "completion": "event", "max_attempts": 1}  # fmt: skip
    try:
        url = f"http://127.0.0.1:{d.port}"
        async with aiohttp.ClientSession() as s:
            async with s.post(f"{url}/backfills", json=body) as r:
                assert r.status == 202, await r.text()
                bid = (await r.json())["backfill_id"]
            budget = time.monotonic() + 120  # (a budget for a loaded machine, not a figure)
            while not (outbox.exists() and outbox.read_text().strip()):  # the processor ...
                assert time.monotonic() < budget, "no trigger in the outbox"
                await asyncio.sleep(0.01)  # ... takes its trigger from the outbox
            (trigger,) = [json.loads(x) for x in outbox.read_text().splitlines()]
            data = base64.b64encode(json.dumps(report).encode()).decode()
            envelope = {
                "message": {"data": data, "messageId": "m-1",
                            "attributes": {"trigger_id": trigger["trigger_id"]}},
                "subscription": "projects/p/subscriptions/s",
            }  # fmt: skip
            async with s.post(f"{url}/events", json=envelope) as r:  # ... and reports its run
                assert r.status == 200, await r.text()
            while True:  # the executor polls the log every 2 s; the log flushes every 1 s
                async with s.get(f"{url}/backfills/{bid}") as r:
                    got: dict[str, Any] = await r.json()
                if got["status"] != "running" or time.monotonic() > budget:
                    break
                await asyncio.sleep(0.05)
    finally:
        await d.stop()
    return got, log_path


async def test_a_run_reported_by_its_completion_event_cascades_nothing(tmp_path: Path) -> None:
    """completion "event": the processor's completion (push attribute trigger_id) ends its run, and routes no run downstream."""
    done = {"event_id": "pgs-done-1", "source": "nba_analytics.player_game_summary",
            "game_date": "2025-11-10", "status": "success", "record_count": 12}  # fmt: skip
    got, log_path = await _backfill_reported_by(tmp_path, done)
    assert got["status"] == "done" and got["counts"] == {"done": 1}, got
    db = sqlite3.connect(log_path)
    try:
        logged = db.execute(f"SELECT count(*) FROM {EVENTS_TABLE} WHERE event_id = 'pgs-done-1'")
        runs = db.execute(
            f"SELECT processor FROM {LOG_TABLE} WHERE event_id = 'pgs-done-1' AND action = 'run'"
        )
        assert (logged.fetchone()[0], runs.fetchall()) == (1, [])
    finally:
        db.close()


def _the_run(tmp_path: Path) -> tuple[str, str | None]:
    """The one run's stored state and error (``_backfill_reported_by``'s backfill)."""
    db = sqlite3.connect(tmp_path / "s" / "backfills.sqlite")
    try:
        ((state, err),) = db.execute("SELECT state, error FROM backfill_runs").fetchall()
    finally:
        db.close()
    return str(state), err


@pytest.mark.parametrize(
    ("status", "record_count", "final", "error"),
    [
        pytest.param("no_data", None, "done", None, id="no_data"),
        pytest.param("success", None, "done", None, id="success-without-record_count"),
        pytest.param("failed", None, "failed", "completion state failed", id="failed"),
    ],
)
async def test_a_run_ends_with_the_status_its_completion_reports(
    tmp_path: Path, status: str, record_count: int | None, final: str, error: str | None
) -> None:
    """A completion that is no_data, or success without record_count, ends the run done; a failed one fails it at once, the status in its error."""
    report = {"event_id": "pgs-done-1", "source": "nba_analytics.player_game_summary",
              "game_date": "2025-11-10", "status": status, "record_count": record_count}  # fmt: skip
    report = {k: v for k, v in report.items() if v is not None}
    got, _ = await _backfill_reported_by(tmp_path, report)
    assert got["status"] == final, got
    assert _the_run(tmp_path) == (final, error)


@pytest.mark.parametrize(
    ("status", "final", "error"),
    [
        pytest.param("no_data", "done", None, id="no_data"),
        pytest.param("success", "done", None, id="success"),
        pytest.param("failed", "failed", "completion state failed", id="failed"),
    ],
)
async def test_a_bare_report_ends_the_run_too(
    tmp_path: Path, status: str, final: str, error: str | None
) -> None:
    """The SDK's bare report (CompletionPublisher.report: no source, the trigger named) ends a backfill run with its status, instead of being rejected."""
    report = {"processor": "player_game_summary",  # the trigger id: its push attribute
              "game_date": "2025-11-10", "status": status, "event_id": "report-1"}  # fmt: skip
    got, log_path = await _backfill_reported_by(tmp_path, report)
    assert got["status"] == final, got
    assert _the_run(tmp_path) == (final, error)
    db = sqlite3.connect(log_path)
    try:  # nothing routed or stored as an event: only the run's status
        assert db.execute(f"SELECT count(*) FROM {EVENTS_TABLE}").fetchone()[0] == 0
    finally:
        db.close()


async def test_completion_event_needs_the_daemons_execution_log(tmp_path: Path) -> None:
    """A daemon writing no execution log (serve --no-log) refuses completion "event" with 400, before anything starts."""
    cfg = load_config(REPO / "routes.yaml")
    settings = DaemonSettings(state_dir=tmp_path / "s", port=0, as_of=date(2025, 11, 14),
                              sync="normal")  # fmt: skip
    d = Daemon(cfg.registry, cfg.relations, settings)
    await d.start()
    try:
        async with aiohttp.ClientSession() as s:
            body = {**BODY, "completion": "event"}
            async with s.post(f"http://127.0.0.1:{d.port}/backfills", json=body) as r:
                status, got = r.status, await r.json()
    finally:
        await d.stop()
    assert (status, got["error"]) == (400, "invalid_backfill")
    assert "execution log" in got["detail"]
    outbox = tmp_path / "s" / "outbox.jsonl"
    assert not outbox.exists() or outbox.read_text() == ""  # no trigger sent


async def test_a_run_failed_by_its_completion_is_retried_by_the_same_post_as_a_new_trigger(
    tmp_path: Path,
) -> None:
    """completion "event": a run failed by its completion, POSTed again, is sent as a new trigger (a new id) and ends with that trigger's completion, not with the old failed one."""
    cfg = load_config(REPO / "routes.yaml")
    settings = DaemonSettings(state_dir=tmp_path / "s", port=0, as_of=date(2025, 11, 14),
                              sync="normal")  # fmt: skip
    d = Daemon(cfg.registry, cfg.relations, settings, log=SqliteExecutionLog(tmp_path / "l.sqlite"))
    await d.start()
    outbox = tmp_path / "s" / "outbox.jsonl"
    body = {"start": "2025-11-10", "end": "2025-11-10", "processors": ["player_game_summary"],
            "completion": "event", "max_attempts": 1}  # fmt: skip
    budget = time.monotonic() + 120  # (a budget for a loaded machine, not a figure)
    finals: list[dict[str, Any]] = []
    try:
        url = f"http://127.0.0.1:{d.port}"
        async with aiohttp.ClientSession() as s:
            for n, status in enumerate(("failed", "success"), start=1):
                async with s.post(f"{url}/backfills", json=body) as r:
                    assert r.status == 202, await r.text()
                    bid = (await r.json())["backfill_id"]
                while len(outbox.read_text().splitlines() if outbox.exists() else []) < n:
                    assert time.monotonic() < budget, "no trigger in the outbox"
                    await asyncio.sleep(0.01)
                trigger = json.loads(outbox.read_text().splitlines()[n - 1])
                report = {"event_id": f"pgs-{n}", "source": "nba_analytics.player_game_summary",
                          "game_date": "2025-11-10", "status": status, "record_count": 3}  # fmt: skip
                envelope = {"message": {"data": base64.b64encode(json.dumps(report).encode()).decode(),
                                        "messageId": f"m-{n}",
                                        "attributes": {"trigger_id": trigger["trigger_id"]}},
                            "subscription": "projects/p/subscriptions/s"}  # fmt: skip
                async with s.post(f"{url}/events", json=envelope) as r:
                    assert r.status == 200, await r.text()
                while True:
                    async with s.get(f"{url}/backfills/{bid}") as r:
                        got: dict[str, Any] = await r.json()
                    if got["status"] != "running" or time.monotonic() > budget:
                        break
                    await asyncio.sleep(0.05)
                finals.append(got)
    finally:
        await d.stop()
    sent = [json.loads(x)["trigger_id"] for x in outbox.read_text().splitlines()]
    assert len(sent) == len(set(sent)) == 2
    assert [f["status"] for f in finals] == ["failed", "done"], finals

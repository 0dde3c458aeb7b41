"""Overlapping backfills across daemon replicas: two ``scoperouter serve`` assemblies on one
PostgreSQL state store, each with its own state dir. A ``POST /backfills`` to one replica
that overlaps a backfill running on the other is refused (409 ``overlapping_backfill``
naming it); one that overlaps nothing starts; ``GET /backfills/ID`` on the other replica
names the replica running it; a backfill stopped because its claim was lost is counted on
``/metrics``; with completion "event" a run ends with the completion any replica received
(the shared completion ledger), the CLI given the replicas' store too
(docs/deploy-replicas.md); a trigger id no backfill issues (a NUL, over 512 characters)
names no run and never fails the batch."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import random
import string
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import date
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from backfill_support import REPO

from scoperouter.execution_log import SqliteExecutionLog
from scoperouter.processor_registry.loader import load_config
from scoperouter.runtime.daemon import Daemon, DaemonSettings

UNRELATED = "team_defense_game_summary"  # not in player_game_summary's lineage
# runs wait for a completion event nobody sends: the backfill stays running until stopped
RUNNING = {"start": "2025-11-01", "end": "2025-11-02", "processors": ["player_game_summary"],
           "completion": "event"}  # fmt: skip


async def _post(port: int, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    url = f"http://127.0.0.1:{port}/backfills"
    async with aiohttp.ClientSession() as s, s.post(url, json=body) as r:
        got: dict[str, Any] = await r.json()
        return r.status, got


async def _get(port: int, path: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as s, s.get(f"http://127.0.0.1:{port}{path}") as r:
        return r.status, await (r.json() if path.startswith("/backfills") else r.text())


@contextlib.asynccontextmanager
async def _started(*daemons: Daemon) -> AsyncIterator[None]:
    """``daemons`` started in order, stopped in reverse (those started) at the end."""
    async with contextlib.AsyncExitStack() as stack:
        for d in daemons:
            await d.start()
            stack.push_async_callback(d.stop)
        yield


def _replica(tmp_path: Path, dsn: str, name: str, *, log: bool = True, **extra: Any) -> Daemon:
    """Replica ``name`` on the store at ``dsn``; ``log=False``: ``serve --no-log``."""
    cfg = load_config(REPO / "routes.yaml")
    settings = DaemonSettings(state_dir=tmp_path / name, port=0, as_of=date(2025, 11, 22),
                              sync="normal", state=dsn, replica_id=name, **extra)  # fmt: skip
    path = tmp_path / name / "execution_log.sqlite"  # serve's default
    return Daemon(cfg.registry, cfg.relations, settings,
                  log=SqliteExecutionLog(path) if log else None)  # fmt: skip


@pytest.mark.parametrize(
    ("body", "code"),
    [
        # reads player_game_summary on the dates replica a's backfill rewrites
        ({"start": "2025-11-02", "end": "2025-11-03", "processors": ["league_rankings"]}, 409),
        # the same processor on overlapping dates
        ({"start": "2025-11-02", "end": "2025-11-02", "processors": ["player_game_summary"]}, 409),
        # unrelated processors, the same dates
        ({"start": "2025-11-01", "end": "2025-11-02", "processors": [UNRELATED]}, 202),
        # a reader of it, far later dates
        ({"start": "2025-11-10", "end": "2025-11-11", "processors": ["league_rankings"]}, 202),
    ],
)
async def test_a_post_to_one_replica_overlapping_anothers_backfill_is_refused(
    tmp_path: Path, pg_schema_dsn: str, body: dict[str, Any], code: int
) -> None:
    """Replica b answers 409 naming replica a's running backfill when the POST overlaps it."""
    a, b = (_replica(tmp_path, pg_schema_dsn, name) for name in ("a", "b"))
    async with _started(a, b):
        assert a.port is not None and b.port is not None
        status, first = await _post(a.port, RUNNING)
        assert status == 202, first
        status, got = await _post(b.port, body)
    assert status == code, got
    if code == 409:
        assert got["error"] == "overlapping_backfill"
        assert got["backfill_id"] == first["backfill_id"]
        assert "player_game_summary" in got["detail"] and "replica a" in got["detail"]


async def test_get_on_the_other_replica_and_a_lost_claim_counted(
    tmp_path: Path, pg_schema_dsn: str
) -> None:
    """GET /backfills/ID on replica b names replica a while a runs it; once a's claim is lost,
    a stops it and counts it on /metrics (lease_lost), and b answers 404."""
    import psycopg

    # lease 3 s: replica a renews its backfill's claim every second (finds it gone within one)
    a = _replica(tmp_path, pg_schema_dsn, "a", lease_s=3.0)
    b = _replica(tmp_path, pg_schema_dsn, "b")
    async with _started(a, b):
        assert a.port is not None and b.port is not None
        status, first = await _post(a.port, RUNNING)
        assert status == 202, first
        bid = first["backfill_id"]
        on_b = await _get(b.port, f"/backfills/{bid}")
        with psycopg.connect(pg_schema_dsn, autocommit=True) as c:  # lost (ran out, taken)
            c.execute("DELETE FROM sr_backfill_claims WHERE backfill_id = %s", (bid,))
        assert a.ingress.backfills is not None
        await asyncio.gather(*a.ingress.backfills.tasks.values())
        stopped = await _get(a.port, f"/backfills/{bid}")
        after = await _get(b.port, f"/backfills/{bid}")
        _, metrics = await _get(a.port, "/metrics")
    assert on_b[0] == 200 and on_b[1]["replica"] == "a", on_b
    assert on_b[1]["status"] == "running" and "runs" not in on_b[1]
    assert stopped[1]["status"] == "stopped", stopped
    assert after[0] == 404, after
    assert 'scoperouter_backfill_claims_lost_total{reason="lease_lost"} 1.0' in metrics
    assert 'scoperouter_backfill_claims_lost_total{reason="lease_unconfirmed"} 0.0' in metrics


def _envelope(trigger_id: str, report: dict[str, Any], n: int) -> dict[str, Any]:
    """A push envelope of ``report`` naming ``trigger_id`` (the SDK's completion publisher)."""
    body = {"event_id": f"done-{n}", "game_date": "2025-11-10", **report}
    data = base64.b64encode(json.dumps(body).encode()).decode()
    return {"message": {"data": data, "messageId": f"m-{n}",
                        "attributes": {"trigger_id": trigger_id}},
            "subscription": "projects/p/subscriptions/s"}  # fmt: skip


async def _report_each_trigger(
    outbox: Path, port: int, report: dict[str, Any], done: Callable[[], Awaitable[bool]]
) -> list[str]:
    """The processor: each trigger that appears in ``outbox`` is run and its completion
    ``report`` posted to the replica on ``port``, until ``done()``; the trigger ids sent."""
    sent: list[str] = []
    budget = time.monotonic() + 60  # (a budget for a loaded machine, not a figure)
    async with aiohttp.ClientSession() as s:
        while not await done():
            assert time.monotonic() < budget, f"not finished; triggers sent: {sent}"
            lines = outbox.read_text().splitlines() if outbox.exists() else []
            for line in lines[len(sent) :]:
                sent.append(json.loads(line)["trigger_id"])
                body = _envelope(sent[-1], report, len(sent))
                async with s.post(f"http://127.0.0.1:{port}/events", json=body) as r:
                    assert r.status == 200, await r.text()
            await asyncio.sleep(0.05)
    return sent


PGS = "player_game_summary"
EVENT_REPORT = {"source": f"nba_analytics.{PGS}", "status": "success", "record_count": 450}
ONE_RUN = {"start": "2025-11-10", "end": "2025-11-10", "processors": [PGS],
           "completion": "event", "max_attempts": 1}  # fmt: skip


@pytest.mark.parametrize(
    ("report", "final"),
    [
        pytest.param(EVENT_REPORT, "done", id="completion-event"),
        pytest.param({"processor": PGS, "status": "no_data"}, "done", id="bare-report"),
        pytest.param({"processor": PGS, "status": "failed"}, "failed", id="bare-report-failed"),
    ],
)
async def test_a_run_ends_with_the_completion_another_replica_received(
    tmp_path: Path, pg_schema_dsn: str, report: dict[str, Any], final: str
) -> None:
    """completion "event" on replicas: replica a's run ends with the status of the completion replica b received (the shared completion ledger), its trigger sent once."""
    a, b = (_replica(tmp_path, pg_schema_dsn, name) for name in ("a", "b"))
    async with _started(a, b):
        assert a.port is not None and b.port is not None
        status, first = await _post(a.port, ONE_RUN)
        assert status == 202, first
        bid = first["backfill_id"]
        got: dict[str, Any] = {}

        async def ended() -> bool:
            nonlocal got
            got = (await _get(a.port or 0, f"/backfills/{bid}"))[1]
            return got["status"] != "running"

        sent = await _report_each_trigger(tmp_path / "a" / "outbox.jsonl", b.port, report, ended)
    assert got["status"] == final and len(sent) == 1, (got, sent)


async def test_completion_event_on_a_shared_store_needs_no_execution_log(
    tmp_path: Path, pg_schema_dsn: str
) -> None:
    """A replica writing no execution log (serve --no-log) takes completion "event": the completions are read from the shared ledger."""
    a = _replica(tmp_path, pg_schema_dsn, "a", log=False)
    async with _started(a):
        assert a.port is not None
        status, got = await _post(a.port, ONE_RUN)
    assert status == 202, got


async def test_the_cli_given_the_replicas_store_reads_completions_from_it(
    tmp_path: Path, pg_schema_dsn: str
) -> None:
    """scoperouter backfill --state postgresql://... --completion event: its run ends with the completion a replica received."""
    b = _replica(tmp_path, pg_schema_dsn, "b")
    state = tmp_path / "cli"
    args = ["-m", "scoperouter", "backfill", "--config", str(REPO / "routes.yaml"),
            "--as-of", "2025-11-22", "--start", "2025-11-10", "--end", "2025-11-10",
            "--processors", PGS, "--state-dir", str(state), "--state", pg_schema_dsn,
            "--completion", "event", "--max-attempts", "1"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    async with _started(b):
        assert b.port is not None
        cli = await asyncio.create_subprocess_exec(
            sys.executable, *args, env=env, stderr=asyncio.subprocess.PIPE
        )

        async def ended() -> bool:
            return cli.returncode is not None

        try:
            sent = await _report_each_trigger(state / "outbox.jsonl", b.port, EVENT_REPORT, ended)
        finally:
            if cli.returncode is None:  # (it waits for its completion for an hour)
                cli.kill()
        _, err = await cli.communicate()
    assert cli.returncode == 0 and len(sent) == 1, (sent, err.decode())


def _noise(n: int) -> str:
    """``n`` letters and digits no compressor shrinks much (what overflows a btree key)."""
    rnd = random.Random(0)
    return "".join(rnd.choice(string.ascii_letters + string.digits) for _ in range(n))


@pytest.mark.parametrize(
    ("make_tid", "recorded"),
    [
        pytest.param(lambda shape: f"bf-{shape}", True, id="an-id-of-ours"),
        pytest.param(lambda shape: f"bf-{shape}\x00x", False, id="nul"),
        pytest.param(lambda shape: f"bf-{shape}-{_noise(3000)}", False, id="3000-chars"),
    ],
)
async def test_a_trigger_id_no_backfill_issues_names_no_run(
    tmp_path: Path, pg_schema_dsn: str, make_tid: Callable[[str], str], recorded: bool
) -> None:
    """A trigger_id with a control character or over 512 characters names no backfill run: accepted, never a failed batch."""
    import psycopg

    a = _replica(tmp_path, pg_schema_dsn, "a")
    shapes = {  # how the message names the trigger: (attribute, body)
        "event": (True, {**EVENT_REPORT, "event_id": "done-1"}),
        "bare": (True, {"processor": PGS, "status": "no_data", "event_id": "done-2"}),
        "bare-body": (False, {"processor": PGS, "status": "failed", "event_id": "done-3"}),
    }
    answers = {}
    async with _started(a), aiohttp.ClientSession() as s:
        assert a.port is not None
        for n, (shape, (in_attribute, report)) in enumerate(shapes.items(), 1):
            tid = make_tid(shape)
            body = _envelope(tid, report if in_attribute else {**report, "trigger_id": tid}, n)
            if not in_attribute:
                body["message"]["attributes"] = {}
            async with s.post(f"http://127.0.0.1:{a.port}/events", json=body) as r:
                answers[shape] = (r.status, await r.text())
    with psycopg.connect(pg_schema_dsn, autocommit=True) as c:
        rows = c.execute("SELECT count(*) FROM sr_completions").fetchone()
    assert all(status == 200 for status, _text in answers.values()), answers
    assert rows == ((len(shapes) if recorded else 0),)

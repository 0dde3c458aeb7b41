"""A backfill POSTed to a real ``scoperouter serve`` whose process is then SIGKILLed is not
reported running after the restart: ``GET /backfills/ID`` answers ``interrupted`` with no run
in flight, and POSTing the same request resumes it to ``done``. (The same without a real
kill, on a store left as a killed process leaves it: tests/backfill/test_backfill_interrupted.py.)"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from runtime_support import GAME_DAY, REPO, free_port, wait_ready, write_registry

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

BODY = {"start": (GAME_DAY - timedelta(days=3)).isoformat(), "end": GAME_DAY.isoformat(),
        "processors": ["league_rankings"]}  # fmt: skip


def _serve(cfg: Path, state: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as fh:
        return subprocess.Popen(
            [sys.executable, "-m", "scoperouter.cli", "serve", "--config", str(cfg),
             "--state-dir", str(state), "--port", str(port), "--as-of", GAME_DAY.isoformat(),
             "--shutdown-timeout", "5"],  # (its execution log on: completion "event" reads it)
            stdout=fh, stderr=subprocess.STDOUT,
            # this tree's code, also where the package is installed from another checkout
            env={**os.environ, "PYTHONPATH": str(REPO / "src")},
        )  # fmt: skip


async def _get(s: aiohttp.ClientSession, port: int, bid: str) -> dict[str, Any]:
    async with s.get(f"http://127.0.0.1:{port}/backfills/{bid}") as r:
        assert r.status == 200, await r.text()
        got: dict[str, Any] = await r.json()
        return got


async def _until(s: aiohttp.ClientSession, port: int, bid: str, ok: Any) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        got = await _get(s, port, bid)
        if ok(got):
            return got
        await asyncio.sleep(0.05)
    raise AssertionError(f"backfill {bid}: {got}")


async def test_sigkilled_daemon_leaves_its_backfill_interrupted_then_resumable(
    tmp_path: Path,
) -> None:
    """SIGKILL with runs in flight; after the restart: interrupted, then resumed to done."""
    cfg = write_registry(tmp_path)
    state, log, port = tmp_path / "state", tmp_path / "serve.log", free_port()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as s:
        proc = _serve(cfg, state, port, log)
        try:
            await wait_ready(s, port, proc, log)
            # completion "event": each run waits for a completion no processor will send
            body = {**BODY, "completion": "event"}
            async with s.post(f"http://127.0.0.1:{port}/backfills", json=body) as r:
                assert r.status == 202, await r.text()
                bid = (await r.json())["backfill_id"]
            await _until(s, port, bid, lambda g: g["counts"].get("running", 0) > 0)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
        proc = _serve(cfg, state, port, log)
        try:
            await wait_ready(s, port, proc, log)
            got = await _get(s, port, bid)
            assert got["status"] == "interrupted" and "running" not in got["counts"], got
            async with s.post(f"http://127.0.0.1:{port}/backfills", json=BODY) as r:
                assert r.status == 202, await r.text()
                assert (await r.json())["resumed"] is True
            got = await _until(s, port, bid, lambda g: g["status"] != "running")
            assert (got["status"], got["counts"]) == ("done", {"done": got["runs"]}), got
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(60) == 0, log.read_text()[-2000:]

"""Issue 14 acceptance 5: SIGKILL a ``serve`` process while triggers are open and windows
are held at a barrier; the restarted process has the same ledger, the same held windows
and the same deadlines, and a completion after the restart still releases the barrier."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from runtime_support import GAME_DAY, free_port, wait_ready, write_registry

from scoperouter.runtime.loop_store import FileLoopState

pytestmark = pytest.mark.timeout(600)
INJURY = {
    "event_id": "inj-1",
    "source": "nba_raw.nbac_injury_report",
    "game_date": GAME_DAY.isoformat(),
    "affected_entities": {"players": ["lalplayer01"]},
    "changed_fields": ["injury_status"],
}


def start(cfg: Path, state: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as fh:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "scoperouter.cli",
                "serve",
                "--config",
                str(cfg),
                "--state-dir",
                str(state),
                "--port",
                str(port),
                "--as-of",
                GAME_DAY.isoformat(),
                "--no-log",
                "--shutdown-timeout",
                "5",
            ],
            stdout=fh,
            stderr=subprocess.STDOUT,
        )


async def post(s: aiohttp.ClientSession, port: int, body: dict[str, Any]) -> None:
    async with s.post(f"http://127.0.0.1:{port}/events", data=json.dumps(body)) as r:
        assert r.status == 200, await r.text()


async def until(pred: Any, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = pred()
        if got:
            return got
        await asyncio.sleep(0.1)
    raise AssertionError("condition not reached")


def loop_state(state: Path) -> dict[str, Any]:
    return FileLoopState(state).load() or {}


def held(snap: dict[str, Any]) -> list[tuple[str, float, float | None]]:
    return sorted(
        (h["window"]["processor"], h["held_at"], h["deadline"]) for h in snap.get("held", [])
    )


def open_entries(snap: dict[str, Any]) -> dict[str, tuple[str, int, float | None]]:
    return {
        e["trigger"]["trigger_id"]: (e["phase"], e["attempt"], e["due_at"])
        for e in snap.get("ledger", {}).get("entries", [])
    }


@pytest.mark.slow  # two daemons, a SIGKILL and a 12 s backoff, ~20 s (CI's slow step)
async def test_sigkill_keeps_ledger_barriers_and_deadlines(tmp_path: Path) -> None:
    """Open triggers, held windows and their deadlines survive SIGKILL exactly."""
    cfg = write_registry(
        tmp_path,
        # retry_backoff: the failed run's re-run comes due 12 s after its report (the
        # default 30 s made the test wait that long): long enough for the SIGKILL and the
        # restart to find it still in backoff, short for the completions after
        defaults={
            "completion_timeout": "1h",
            "run_retries": 2,
            "barrier": {"timeout": "2h"},
            "retry_backoff": "12s",
        },
    )
    state, log, port = tmp_path / "state", tmp_path / "serve.log", free_port()
    proc = start(cfg, state, port, log)
    try:
        async with aiohttp.ClientSession() as s:
            await wait_ready(s, port, proc, log)
            await post(s, port, INJURY)
            before = await until(lambda: (snap := loop_state(state)) and held(snap) and snap)
            assert {"ml_feature_store", "player_prediction_exporter"} <= {
                p for p, _a, _d in held(before)
            }
            # one run completes before the crash: the restart must know it (journal row)
            pgs = next(
                e
                for e in before["ledger"]["entries"]
                if e["trigger"]["processor"] == "player_game_summary"
            )
            await post(
                s,
                port,
                {
                    "trigger_id": pgs["trigger"]["trigger_id"],
                    # the attempt, as an HTTP target's push messageId <trigger_id>-<row>
                    "trigger_message_id": f"{pgs['trigger']['trigger_id']}-1",
                    "processor": "player_game_summary",
                    "game_date": GAME_DAY.isoformat(),
                    "status": "failed",
                    "error_message": "x",
                },
            )
            await until(
                lambda: (
                    open_entries(loop_state(state))[pgs["trigger"]["trigger_id"]][0] == "backoff"
                )
            )
            await asyncio.sleep(0.5)
            before = loop_state(state)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
            (state / "loop.json").unlink()  # the restarted process rewrites it from its store
            proc = start(cfg, state, port, log)
            await wait_ready(s, port, proc, log)
            after = await until(lambda: loop_state(state))
            assert held(after) == held(before)
            assert open_entries(after) == open_entries(before)
            # the barrier still works: complete every dispatched run until nothing is held
            # (the failed one's re-run too, once its backoff is over: a success before it
            # could only be the failed run's, which closes nothing)
            done: set[tuple[str, int]] = set()
            for _round in range(240):
                snap = loop_state(state)
                if not held(snap):
                    break
                for e in snap["ledger"]["entries"]:
                    tid, attempt = e["trigger"]["trigger_id"], e["attempt"]
                    if e["phase"] == "dispatched" and (tid, attempt) not in done:
                        done.add((tid, attempt))
                        await post(
                            s,
                            port,
                            {
                                "trigger_id": tid,
                                "trigger_message_id": f"{tid}-{attempt}",
                                "processor": e["trigger"]["processor"],
                                "game_date": GAME_DAY.isoformat(),
                                "status": "success",
                            },
                        )
                await asyncio.sleep(0.25)
            final = loop_state(state)
            assert not held(final)
            sent = {e["trigger"]["processor"] for e in final["ledger"]["entries"]}
            assert {"ml_feature_store", "player_prediction_exporter"} <= sent
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)

"""A background task of the router that ends on its own is a fatal internal error, said
loudly (runtime/supervise.py): CRITICAL with its traceback, ``/readyz`` 503, and ``serve``
stops with exit status 1 -- before, the ingest worker died silently and every later event
waited for an answer that never came."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from runtime_support import GAME_DAY, STARTUP_BUDGET_S, write_registry

from scoperouter.execution_log import open_log
from scoperouter.processor_registry.loader import LoadedConfig
from scoperouter.runtime.daemon import Daemon, DaemonSettings
from scoperouter.runtime.state_open import EMBEDDED_STATE
from scoperouter.runtime.supervise import Supervisor
from scoperouter.state import StoreOptions, open_state_store

EVENT = {
    "event_id": "sv-1",
    "source": "nba_raw.nbac_injury_report",  # injury_reason: player_game_summary alone
    "game_date": "2025-11-19",
    "affected_entities": {"players": ["lalplayer01"]},
    "changed_fields": ["injury_reason"],
}
LIVENESS_S = 60.0  # a bound on waiting, never an assertion on time


async def _fails() -> None:
    raise RuntimeError("boom")


async def _returns() -> None:
    return None


async def _waits() -> None:
    await asyncio.sleep(3600)


@pytest.mark.parametrize(
    ("body", "cancel", "stopping", "fatal"),
    [
        (_fails, False, False, "background task 't' failed: RuntimeError: boom"),
        (_returns, False, False, "background task 't' ended"),
        (_waits, True, False, None),  # a cancel is a stop
        (_fails, False, True, None),  # the owner is stopping: expected
        (_returns, False, True, None),
    ],
)
async def test_a_task_ending_on_its_own_is_reported_once(
    body: Any, cancel: bool, stopping: bool, fatal: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    """An exception or a return is fatal unless cancelled or stopping; CRITICAL once, with the traceback."""
    seen: list[str] = []
    sup = Supervisor(lambda: stopping)
    sup.on_fatal = seen.append
    task = asyncio.get_running_loop().create_task(body(), name="t")
    sup.watch([task])
    if cancel:
        task.cancel()
    with caplog.at_level(logging.ERROR, "scoperouter.runtime"):
        await asyncio.wait([task])
        await asyncio.sleep(0)  # the done callbacks run on the next loop pass
    assert sup.fatal == fatal
    assert seen == ([fatal] if fatal else [])
    critical = [r for r in caplog.records if r.levelno == logging.CRITICAL]
    assert len(critical) == (1 if fatal else 0)
    if fatal and body is _fails:
        assert critical[0].exc_info is not None and "boom" in str(critical[0].exc_info[1])


@pytest.mark.parametrize(
    ("body", "fatal"),
    [(_returns, None), (_fails, "background task 't' failed: RuntimeError: boom")],
)
async def test_a_task_that_may_end_is_reported_only_for_an_exception(
    body: Any, fatal: str | None
) -> None:
    """``failed`` (a delivery's callback): a return is its normal end, an exception is fatal."""
    sup = Supervisor(lambda: False)
    task = asyncio.get_running_loop().create_task(body(), name="t")
    task.add_done_callback(sup.failed)
    await asyncio.wait([task])
    await asyncio.sleep(0)
    assert sup.fatal == fatal


async def test_a_second_ending_is_logged_but_not_reported_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The first ending is the fatal one; a later one is an ERROR line and no second stop."""
    seen: list[str] = []
    sup = Supervisor(lambda: False)
    sup.on_fatal = seen.append
    loop = asyncio.get_running_loop()
    a, b = loop.create_task(_fails(), name="a"), loop.create_task(_fails(), name="b")
    with caplog.at_level(logging.ERROR, "scoperouter.runtime"):
        sup.watch([a])
        await asyncio.wait([a])
        await asyncio.sleep(0)
        sup.watch([b])
        await asyncio.wait([b])
        await asyncio.sleep(0)
    assert seen == ["background task 'a' failed: RuntimeError: boom"]
    assert [r.levelno for r in caplog.records] == [logging.CRITICAL, logging.ERROR]


@pytest.mark.parametrize(
    ("patched", "fatal", "left"),
    [
        # after the commit, handing the fired triggers over: the ingest worker dies
        ("fired", "background task 'ingest' failed: RuntimeError: dispatch bug", "pending"),
        # a delivery's bookkeeping once the target took the trigger: its task dies
        # (the target got it, its done mark did not: sent again after the restart, at least once)
        ("_settle_ok", "background task 'delivery' failed: RuntimeError: dispatch bug", "pending"),
        # the execution log's thread (the trigger itself was delivered)
        ("log:_drain", "the execution log thread failed: RuntimeError: dispatch bug", "done"),
    ],
)
async def test_daemon_stops_with_status_1_when_a_task_dies(
    tmp_path: Path,
    zero_cfg: LoadedConfig,
    monkeypatch: pytest.MonkeyPatch,
    patched: str,
    fatal: str,
    left: str,
) -> None:
    """A bug after a commit, in a delivery or in the log thread: /readyz 503, exit_code 1."""
    d = Daemon(
        zero_cfg.registry,
        zero_cfg.relations,
        DaemonSettings(state_dir=tmp_path / "s", port=0, as_of=GAME_DAY, sync="normal"),
        log=open_log(tmp_path / "log.sqlite"),
    )

    def broken(*_args: Any) -> None:
        raise RuntimeError("dispatch bug")

    owner, _, name = patched.rpartition(":")
    monkeypatch.setattr(d.router.log_bridge if owner else d.router.dispatcher, name, broken)
    # the first stop step: /readyz is asked while the daemon is going down
    readyz: list[tuple[int, dict[str, Any]]] = []
    stop = d.stop

    async def stop_after_readyz() -> None:
        async with (
            aiohttp.ClientSession() as s,
            s.get(f"http://127.0.0.1:{d.port}/readyz") as r,
        ):
            readyz.append((r.status, await r.json()))
        await stop()

    monkeypatch.setattr(d, "stop", stop_after_readyz)
    run = asyncio.get_running_loop().create_task(d.run_forever())
    async with aiohttp.ClientSession() as s:
        deadline = time.monotonic() + LIVENESS_S
        while d.port is None:
            assert time.monotonic() < deadline and not run.done()
            await asyncio.sleep(0.02)
        post = asyncio.ensure_future(s.post(f"http://127.0.0.1:{d.port}/events", json=EVENT))
        await asyncio.wait_for(asyncio.shield(run), LIVENESS_S)
        # committed before the failure: a 200 if it went out before the stop closed it
        try:
            resp = await post
            assert resp.status in (200, 503)
        except aiohttp.ClientError:
            pass
    assert d.exit_code == 1
    assert d.router.supervisor.fatal == fatal
    assert readyz and readyz[0][0] == 503
    assert "dispatch bug" in readyz[0][1]["detail"]
    # committed before the failure: its trigger waits in the outbox for the next start
    st = open_state_store(tmp_path / "s" / EMBEDDED_STATE, StoreOptions(owner="t"))
    try:
        counts = st.outbox_counts()
    finally:
        st.close()
    assert counts == {left: 1}


def test_serve_exits_1_with_a_critical_line_when_a_background_task_dies(tmp_path: Path) -> None:
    """`serve` whose ingest worker dies (injected) exits 1 with one CRITICAL JSON line."""
    cfg = write_registry(tmp_path / "cfg")
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        "from scoperouter.runtime import dispatcher\n"
        "def _broken(self, fired, stored=None):\n"
        "    raise RuntimeError('injected dispatch bug')\n"
        "dispatcher.Dispatcher.fired = _broken\n",
        encoding="utf-8",
    )
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])
    )
    out = tmp_path / "serve.log"
    with out.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "scoperouter.cli", "serve", "--config", str(cfg),
             "--state-dir", str(tmp_path / "state"), "--port", "0", "--no-log",
             "--as-of", GAME_DAY.isoformat()],
            stdout=log, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + STARTUP_BUDGET_S
        port = None
        while port is None:
            assert time.monotonic() < deadline and proc.poll() is None, out.read_text()
            for line in out.read_text().splitlines():
                if "HTTP ingress listening" in line:
                    port = json.loads(line)["port"]
            time.sleep(0.05)
        import urllib.error
        import urllib.request

        req = urllib.request.Request(
            f"http://127.0.0.1:{port}/events",
            data=json.dumps(EVENT).encode(),
            headers={"Content-Type": "application/json"},
        )
        status = None
        try:
            with urllib.request.urlopen(req, timeout=LIVENESS_S) as resp:
                status = resp.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass  # closed by the stop
        rc = proc.wait(LIVENESS_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    lines = [json.loads(x) for x in out.read_text().splitlines() if x.startswith("{")]
    assert rc == 1, out.read_text()
    # the event committed before the failure: its 200 may go out before the stop closes
    assert status in (None, 200, 503)
    critical = [x for x in lines if x["severity"] == "CRITICAL"]
    assert len(critical) == 1
    assert (
        "background task 'ingest' failed: RuntimeError: injected dispatch bug"
        in (critical[0]["message"])
    )
    assert any(x["message"] == "stopped" for x in lines)

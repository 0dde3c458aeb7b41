"""Credentials in target URLs never reach the disk or the logs (issue 18, item 4): the
redaction functions, then a real ``scoperouter serve`` whose targets fail."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from runtime_support import wait_ready, write_registry

from scoperouter.runtime.redact import MASK, redact_url, scrub, url_secrets

PASSWORD, TOKEN, USER = "pw-s3cret-9f2", "tok-5ecret-77", "svc-user-41"


@pytest.mark.parametrize(
    ("url", "redacted"),
    [
        ("https://host.example/run", "https://host.example/run"),
        ("https://u:p4ss@host.example:8443/run", "https://***@host.example:8443/run"),
        ("http://tok3n@127.0.0.1:9/x?a=1&token=abc", "http://***@127.0.0.1:9/x?a=***&token=***"),
        ("https://[::1]:8080/p?k=value#frag", "https://[::1]:8080/p?k=***"),
    ],
)
def test_redact_url(url: str, redacted: str) -> None:
    """A redacted URL keeps scheme, host, port, path and query keys, and masks the rest."""
    assert redact_url(url) == redacted


@pytest.mark.parametrize(
    "text",
    [
        "HTTP 400: GET /run?token={token}",
        "InvalidURL: https://{user}:{password}@h/run?token={token}",
        "auth {user_q}:{password_q} failed",
    ],
)
def test_scrub_removes_every_credential(text: str) -> None:
    """scrub masks userinfo and query values, raw or percent-encoded, wherever they appear."""
    url = f"https://{USER}:{PASSWORD}@h/run?token={TOKEN}"
    out = scrub(
        text.format(token=TOKEN, user=USER, password=PASSWORD, user_q=USER, password_q=PASSWORD),
        url,
    )
    assert not any(s in out for s in (PASSWORD, TOKEN, USER)), out
    assert MASK in out
    assert set(url_secrets(url)) >= {PASSWORD, TOKEN, USER}


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def test_failing_targets_leave_no_credential_anywhere(tmp_path: Path) -> None:
    """A daemon whose credentialed HTTP targets fail stores and logs only redacted URLs."""

    async def echo_400(request: web.Request) -> web.Response:
        # a target that echoes the request line in its error, as many servers do
        return web.Response(status=400, text=f"bad request {request.path_qs}")

    app = web.Application()
    app.router.add_post("/run", echo_400)
    runner = web.AppRunner(app)
    await runner.setup()
    stub_port = _free_port()
    await web.TCPSite(runner, "127.0.0.1", stub_port).start()
    closed_port = _free_port()
    secret_url = f"http://{USER}:{PASSWORD}@127.0.0.1:{stub_port}/run?token={TOKEN}"
    refused_url = f"http://{USER}:{PASSWORD}@127.0.0.1:{closed_port}/run?token={TOKEN}"
    cfg = write_registry(
        tmp_path,
        targets={
            "player_game_summary": {"http": {"url": secret_url}, "max_attempts": 1},
            "upcoming_team_game_context": {"http": {"url": refused_url}, "max_attempts": 1},
        },
    )
    state, log_path, port = tmp_path / "state", tmp_path / "serve.log", _free_port()
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
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
                "2025-11-19",
                "--shutdown-timeout",
                "2",
                "--log-level",
                "DEBUG",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ},
        )
    try:
        event = {
            "event_id": "e-redact",
            "source": "nba_raw.nbac_injury_report",
            "game_date": "2025-11-19",
            "affected_entities": {"players": ["lalplayer00"]},
            "changed_fields": ["injury_status"],
            "priority": "critical",
        }
        deadline = time.monotonic() + 60
        async with aiohttp.ClientSession() as session:
            # the port answers 503 'starting' before the ingress is up: wait for /readyz
            await wait_ready(session, port, proc, log_path)
            async with session.post(f"http://127.0.0.1:{port}/events", json=event) as r:
                assert r.status == 200, await r.text()
        db = state / "state.db"  # serve's default: the per-window SQLite store
        while True:  # both targets fail permanently: two dead letters
            with sqlite3.connect(db) as conn:
                n = conn.execute("SELECT count(*) FROM sr_dead_letters").fetchone()[0]
            if n >= 2:
                break
            assert time.monotonic() < deadline, log_path.read_text()[-3000:]
            await asyncio.sleep(0.2)
    finally:
        proc.terminate()
        proc.wait(15)
        await runner.cleanup()
    files = [p for p in tmp_path.rglob("*") if p.is_file() and p.name != "routes.yaml"]
    assert any(p.name == "serve.log" for p in files)
    leaks = {
        str(p.relative_to(tmp_path)): s
        for p in files
        for s in (PASSWORD, TOKEN, USER)
        if s.encode() in p.read_bytes()
    }
    assert leaks == {}
    assert f"127.0.0.1:{stub_port}/run?token={MASK}".encode() in b"".join(
        p.read_bytes() for p in files
    )  # the redacted form is what operators see

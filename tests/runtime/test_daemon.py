"""Daemon assembly: the routes.yaml ``server:`` section (auth, body limit), the state-dir
lock, Cloud Logging JSON lines, and the ``serve`` command's graceful SIGTERM."""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from runtime_support import GAME_DAY, STARTUP_BUDGET_S, load, write_registry

from scoperouter.errors import ConfigError
from scoperouter.runtime import logs
from scoperouter.runtime.daemon import Daemon, DaemonSettings

EVENT = {
    "event_id": "d-1",
    "source": "nba_raw.nbac_injury_report",
    "game_date": "2025-11-19",
    "affected_entities": {"players": ["lalplayer01"]},
    "changed_fields": ["injury_status"],
}


def settings(state: Path, **kw: Any) -> DaemonSettings:
    return DaemonSettings(state_dir=state, port=0, as_of=GAME_DAY, sync="normal", **kw)


@pytest.mark.parametrize(
    ("headers", "body", "status"),
    [
        ({}, json.dumps(EVENT).encode(), 401),
        ({"Authorization": "Bearer nope"}, json.dumps(EVENT).encode(), 401),
        ({"Authorization": "Bearer tok-123"}, json.dumps(EVENT).encode(), 200),
        ({"Authorization": "Bearer tok-123"}, b" " * 3000, 413),
    ],
)
async def test_server_section_configures_auth_and_limits(
    tmp_path: Path, headers: dict[str, str], body: bytes, status: int
) -> None:
    """server.auth.bearer_token (with ${ENV}) and server.max_body_bytes apply to /events."""
    cfg = load(
        write_registry(
            tmp_path, server={"auth": {"bearer_token": "${ROUTER_TOKEN}"}, "max_body_bytes": 2048}
        )
    )
    d = Daemon(
        cfg.registry, cfg.relations, settings(tmp_path / "s", env={"ROUTER_TOKEN": "tok-123"})
    )
    await d.start()
    try:
        async with (
            aiohttp.ClientSession() as s,
            s.post(f"http://127.0.0.1:{d.port}/events", data=body, headers=headers) as r,
        ):
            assert r.status == status
    finally:
        await d.stop()


def test_missing_env_in_server_section_is_a_config_error(tmp_path: Path) -> None:
    """An unset ${VAR} in the auth token fails at startup, naming the variable."""
    cfg = load(write_registry(tmp_path, server={"auth": {"bearer_token": "${NOPE_UNSET}"}}))
    with pytest.raises(ConfigError, match="NOPE_UNSET"):
        Daemon(cfg.registry, cfg.relations, settings(tmp_path / "s", env={}))


async def test_state_dir_is_locked(tmp_path: Path, zero_cfg: Any) -> None:
    """A second daemon on the same state dir waits, then fails naming the holder (pid, host); after stop it can start."""
    a = Daemon(zero_cfg.registry, zero_cfg.relations, settings(tmp_path / "s"))
    await a.start()
    t0 = time.monotonic()
    holder = f"pid {os.getpid()} on {socket.gethostname()}"
    with pytest.raises(ConfigError, match=f"in use by another scoperouter \\({holder};"):
        Daemon(zero_cfg.registry, zero_cfg.relations, settings(tmp_path / "s", lock_timeout_s=0.3))
    assert time.monotonic() - t0 >= 0.3
    await a.stop()
    b = Daemon(zero_cfg.registry, zero_cfg.relations, settings(tmp_path / "s", lock_timeout_s=0.3))
    await b.start()
    await b.stop()


async def test_deleting_lock_file_does_not_let_a_second_daemon_in(
    tmp_path: Path, zero_cfg: Any
) -> None:
    """The lock is on the state dir itself: removing <state-dir>/LOCK changes nothing."""
    a = Daemon(zero_cfg.registry, zero_cfg.relations, settings(tmp_path / "s"))
    await a.start()
    try:
        (tmp_path / "s" / "LOCK").unlink()
        with pytest.raises(ConfigError, match="in use"):
            Daemon(
                zero_cfg.registry, zero_cfg.relations, settings(tmp_path / "s", lock_timeout_s=0.2)
            )
    finally:
        await a.stop()


@pytest.mark.parametrize(
    ("project", "extra", "trace"),
    [
        ("proj", {"correlation_id": "c-9"}, "projects/proj/traces/c-9"),
        (None, {"correlation_id": "c-9"}, "c-9"),
        ("proj", {}, None),
    ],
)
def test_cloud_logging_json(project: str | None, extra: dict[str, Any], trace: str | None) -> None:
    """Log lines are JSON with severity, message and the trace from correlation_id."""
    rec = logging.LogRecord(
        "scoperouter.x", logging.WARNING, __file__, 1, "hello %s", ("world",), None
    )
    for k, v in extra.items():
        setattr(rec, k, v)
    line = json.loads(logs.CloudJsonFormatter(project=project or "").format(rec))
    assert line["severity"] == "WARNING" and line["message"] == "hello world"
    assert line.get(logs.TRACE_KEY) == trace


def test_configure_writes_json_lines() -> None:
    """configure() routes scoperouter loggers to one JSON handler."""
    buf = io.StringIO()
    root = logging.getLogger("scoperouter")
    saved = (list(root.handlers), root.propagate, root.level)
    try:
        logs.configure("INFO", stream=buf)
        logging.getLogger("scoperouter.test").info("routed", extra={"event_id": "e-1"})
    finally:
        root.handlers[:] = saved[0]
        root.propagate, root.level = saved[1], saved[2]
    out = json.loads(buf.getvalue().splitlines()[-1])
    assert out["event_id"] == "e-1" and out["severity"] == "INFO"


def test_serve_exits_zero_on_sigterm(tmp_path: Path) -> None:
    """`scoperouter serve` stops on SIGTERM with exit code 0 and logs "stopped" (within a
    generous budget: the drain deadline is the daemon's own --shutdown-timeout, and wall
    clock is not asserted in the default suite)."""
    cfg = write_registry(tmp_path / "cfg", quiet="1h", max_wait="2h")
    port_file = tmp_path / "serve.log"
    with port_file.open("wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "scoperouter.cli",
                "serve",
                "--config",
                str(cfg),
                "--state-dir",
                str(tmp_path / "state"),
                "--port",
                "0",
                "--no-log",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + STARTUP_BUDGET_S
        while b"HTTP ingress listening" not in port_file.read_bytes():
            assert time.monotonic() < deadline and proc.poll() is None, port_file.read_text()
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert rc == 0
    lines = [json.loads(x) for x in port_file.read_text().splitlines() if x.startswith("{")]
    assert any(x["message"] == "stopped" for x in lines)
    assert all("severity" in x for x in lines)


async def test_serve_builds_a_mapping_that_reads_the_registry_date_field(tmp_path: Path) -> None:
    """A mapping reading $.business_date (the registry's date_field), which validate accepts, builds at serve and renders the trigger's date."""
    from datetime import date

    import yaml

    from scoperouter.messages.models import Trigger
    from scoperouter.processor_registry.loader import check_config_bytes, load_config_text

    retail = Path(__file__).resolve().parents[2] / "examples" / "retail"
    spec = yaml.safe_load((retail / "routes.yaml").read_text())
    proc = next(iter(spec["processors"]))
    out = tmp_path / "mapped.jsonl"
    spec["processors"][proc]["target"] = {
        "outbox": {"path": str(out)},
        "mapping": {"body": {"day": "$.business_date", "ids": "$.entity_ids"}},
    }
    text = yaml.safe_dump(spec)
    checked = check_config_bytes(text, file="r.yaml", base_dir=retail)
    assert checked.valid, [i.format() for i in checked.errors]
    cfg = load_config_text(text, base_dir=retail)
    d = Daemon(cfg.registry, cfg.relations, settings(tmp_path / "s", env={}))
    await d.start()
    try:
        day = date(2025, 11, 19)
        trig = Trigger(
            trigger_id="t-1", processor=proc, game_date=day, start_date=day, end_date=day,
            scope="date", reason="backfill", date_field="business_date",
        )  # fmt: skip
        await d.router.dispatcher.sinks[proc].send(trig, message_id="m")
    finally:
        await d.stop()
    assert json.loads(out.read_text()) == {"day": "2025-11-19", "ids": None}

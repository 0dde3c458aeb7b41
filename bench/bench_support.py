"""What several bench scripts share: a free loopback port and the Pub/Sub emulator started
on one (or the one ``PUBSUB_EMULATOR_HOST`` already names).

Invariant: everything binds to 127.0.0.1; an emulator started here runs in its own
process group so a caller can kill it whole.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

EMULATOR = Path(
    os.environ.get(
        "SCOPEROUTER_PUBSUB_EMULATOR",
        "/usr/lib/google-cloud-sdk/platform/pubsub-emulator/bin/cloud-pubsub-emulator",
    )
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start_emulator(tmp: Path, wait_s: float = 60.0) -> subprocess.Popen[bytes] | None:
    """The emulator on a free port, PUBSUB_EMULATOR_HOST set to it. None when one is already
    named by PUBSUB_EMULATOR_HOST, or when the emulator (or java) is missing or does not
    come up within ``wait_s``."""
    if os.environ.get("PUBSUB_EMULATOR_HOST"):
        return None
    if not EMULATOR.exists() or shutil.which("java") is None:
        return None
    port = free_port()
    proc = subprocess.Popen(
        [str(EMULATOR), "--host=127.0.0.1", f"--port={port}", f"--data-dir={tmp / 'emu'}"],
        stdout=(tmp / "emulator.log").open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                os.environ["PUBSUB_EMULATOR_HOST"] = f"127.0.0.1:{port}"
                return proc
        except OSError:
            time.sleep(0.2)
    os.killpg(proc.pid, 9)
    proc.wait()
    return None


def serve_cmd(
    cfg: Path, state: Path, port: int, as_of: date, *, log: bool = True,
    extra: tuple[str, ...] | list[str] = (),
) -> list[str]:  # fmt: skip
    """``scoperouter serve`` on 127.0.0.1:``port`` with WARNING logs; ``log=False``: --no-log."""
    cmd = [sys.executable, "-m", "scoperouter.cli", "serve", "--config", str(cfg),
           "--state-dir", str(state), "--port", str(port), "--as-of", as_of.isoformat(),
           "--log-level", "WARNING"]  # fmt: skip
    if not log:
        cmd.append("--no-log")
    return cmd + list(extra)


def daemon_bench() -> Any:
    """``bench/daemon.py`` loaded as a module (its rounds, contestants and helpers), for the
    scripts that measure one of its figures more closely."""
    spec = importlib.util.spec_from_file_location(
        "bench_daemon", Path(__file__).parent / "daemon.py"
    )
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod

"""A throwaway PostgreSQL cluster on a free loopback port (tests and benchmarks).

``initdb`` refuses to run as root: as root the cluster belongs to a system user (the
Debian package's ``postgres`` when it exists, else one created here, ``scoperouter-pg``)
and every server command runs through ``runuser``. The data directory lives in a fresh
temporary directory owned by that user; :meth:`PgCluster.stop` stops the server and
removes it. ``fsync=off`` unless ``durable``: a test cluster trades durability for speed.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg

SYSTEM_USER = "scoperouter-pg"


def find_bindir() -> Path | None:
    """The directory holding ``initdb`` and ``postgres``, or None when not installed."""
    env = os.environ.get("SCOPEROUTER_PG_BIN")
    candidates = [Path(env)] if env else []
    candidates.append(Path("/usr/local/bin"))
    candidates += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]
    which = shutil.which("initdb")
    if which:
        candidates.append(Path(which).parent)
    for d in candidates:
        if (d / "initdb").exists() and (d / "postgres").exists():
            return (d / "initdb").resolve().parent  # /usr/local/bin holds symlinks only
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _run_as_user() -> str | None:
    """The user to run the server as (None: the current, non-root user)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", SYSTEM_USER):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SYSTEM_USER],
        check=True,
        capture_output=True,
    )
    return SYSTEM_USER


class PgCluster:
    """initdb + postgres; ``dsn`` connects as the superuser ``scoperouter`` (trust auth)."""

    def __init__(self, bindir: Path, *, durable: bool = False) -> None:
        self.bindir = bindir
        self.durable = durable  # fsync on (benchmarks); tests trade it for speed
        self.user = _run_as_user()
        self.root = Path(tempfile.mkdtemp(prefix="scoperouter-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        if self.user is not None:
            pw = pwd.getpwnam(self.user)
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
        self.root.chmod(0o700)

    @property
    def dsn(self) -> str:
        return f"postgresql://scoperouter@127.0.0.1:{self.port}/postgres"

    def _cmd(self, *args: str) -> list[str]:
        base = list(args)
        return base if self.user is None else ["runuser", "-u", self.user, "--", *base]

    def start(self, timeout: float = 60.0) -> PgCluster:
        subprocess.run(
            self._cmd(
                str(self.bindir / "initdb"),
                "-D",
                str(self.data),
                "-U",
                "scoperouter",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
                "--locale=C",
            ),
            check=True,
            capture_output=True,
        )
        log = (self.root / "server.log").open("wb")
        settings = {
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": str(self.root),
            "max_connections": "200",
        }
        if not self.durable:
            settings |= {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
        args = [a for k, v in settings.items() for a in ("-c", f"{k}={v}")]
        self.proc = subprocess.Popen(
            self._cmd(
                str(self.bindir / "postgres"), "-D", str(self.data), "-p", str(self.port), *args
            ),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"postgres exited: {self.log_tail()}")
            try:
                psycopg.connect(self.dsn, connect_timeout=2).close()
            except psycopg.OperationalError:
                time.sleep(0.1)
            else:
                return self
        self.stop()
        raise RuntimeError(f"postgres did not start within {timeout}s: {self.log_tail()}")

    def log_tail(self) -> str:
        with contextlib.suppress(OSError):
            return (self.root / "server.log").read_text(errors="replace")[-2000:]
        return ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, 2)  # SIGINT: fast shutdown
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait(5)
        shutil.rmtree(self.root, ignore_errors=True)

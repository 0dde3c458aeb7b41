"""Issue 18 point 7: SIGTERM while the state store is failing exits 0 without a traceback
(nothing acked is lost: unrecorded outcomes stay pending and are re-dispatched at the next
start). docs/operations: exit code 0."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from runtime_support import MemorySink, RouterFactory, load, write_registry

from scoperouter.runtime.router import Inbound

# an injury reason only: one trigger (player_game_summary)
EVENT = {"event_id": "one", "source": "nba_raw.nbac_injury_report", "game_date": "2025-11-19",
         "affected_entities": {"players": ["lalplayer01"]}, "changed_fields": ["injury_reason"]}  # fmt: skip


class BrokenWrites:
    """Wraps the store's connection: once ``broken``, every write statement fails."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db, self.broken = db, False

    def execute(self, sql: str, *args: Any) -> Any:
        head = sql.lstrip().split(None, 1)[0].upper()
        if self.broken and head not in {"SELECT", "PRAGMA", "ROLLBACK"}:
            raise sqlite3.OperationalError("disk I/O error")
        return self.db.execute(sql, *args)

    def executemany(self, sql: str, *args: Any) -> Any:
        if self.broken:
            raise sqlite3.OperationalError("disk I/O error")
        return self.db.executemany(sql, *args)

    @property
    def in_transaction(self) -> bool:
        return self.db.in_transaction

    def close(self) -> None:
        self.db.close()


async def test_stop_with_a_failing_store_logs_once_and_loses_nothing(
    tmp_path: Path, make_router: RouterFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """stop() with unwritable outcomes does not raise, logs one ERROR, and the next start re-dispatches the trigger."""
    cfg = load(write_registry(tmp_path / "r"))
    sink = MemorySink()
    r1 = make_router(cfg, sink, mark_flush_interval_s=30.0)  # outcomes stay queued
    wrapped = BrokenWrites(r1.store._db)
    r1.store._db = wrapped  # type: ignore[assignment]
    deliver = sink.send

    async def send(trigger: Any, **kw: Any) -> None:
        wrapped.broken = True  # from the delivery on, no outcome can be recorded
        await deliver(trigger, **kw)

    sink.send = send  # type: ignore[method-assign]
    await r1.start()
    assert (await r1.submit(Inbound("test", obj=EVENT))).triggers == 1
    for _ in range(200):
        if sink.received:
            break
        await asyncio.sleep(0.01)
    assert len(sink.received) == 1
    await r1.stop(timeout=0.5)
    assert not r1.stopped_clean
    errors = [x for x in caplog.records if "store failing at shutdown" in x.getMessage()]
    assert len(errors) == 1 and errors[0].exc_info is None
    wrapped.broken = False
    again = MemorySink()
    r2 = make_router(cfg, again)
    await r2.start()
    assert await r2.idle()
    assert [t.trigger_id for t in again.received] == [sink.received[0].trigger_id]


# serve in a subprocess whose store (the default: per-window SQLite) fails every
# transaction once FLAG exists
RUNNER = """
import sqlite3, sys
from contextlib import contextmanager
from pathlib import Path
import scoperouter.state.sqlite as sq
flag = Path(sys.argv[1])
real = sq.SqliteStateStore._tx
@contextmanager
def _tx(self):
    if flag.exists():
        raise sqlite3.OperationalError("database or disk is full")
    with real(self) as db:
        yield db
sq.SqliteStateStore._tx = _tx
real_close = sq.SqliteStateStore.close
def close(self):
    if flag.exists():
        self._checkpointer.stop()
        self._db.close()
        raise sqlite3.OperationalError("disk I/O error")
    return real_close(self)
sq.SqliteStateStore.close = close
from scoperouter.cli import main
sys.exit(main(sys.argv[2:]))
"""


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _post(port: int, body: dict[str, Any]) -> int:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/events", data=json.dumps(body).encode(), method="POST"
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return int(r.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def test_sigterm_while_the_store_fails_exits_0_without_traceback(tmp_path: Path) -> None:
    """`scoperouter serve` gets SIGTERM while every store write fails: exit 0, one-line errors, no traceback."""
    # outcomes stay queued until the stop (then there is something the failing store must take)
    cfg = write_registry(tmp_path / "cfg", server={"mark_flush_interval": "30s"})
    flag = tmp_path / "broken"
    port = _port()
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", RUNNER, str(flag), "serve", "--config", str(cfg), "--state-dir",
             str(tmp_path / "state"), "--no-log", "--port", str(port), "--as-of", "2025-11-19",
             "--shutdown-timeout", "3"],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            # until the ingress takes the event (before it, the port refuses or answers 503
            # 'starting'); generous on a busy machine, not a timing check
            deadline = time.monotonic() + 120
            while True:
                assert proc.poll() is None, log.read_text(errors="replace")[-2000:]
                assert time.monotonic() < deadline, log.read_text(errors="replace")[-2000:]
                try:
                    if _post(port, EVENT) == 200:
                        break
                except OSError:
                    pass
                time.sleep(0.1)
            flag.write_text("x")
            assert _post(port, {**EVENT, "event_id": "two"}) == 503  # the store fails
            proc.send_signal(signal.SIGTERM)
            rc = proc.wait(30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    text = log.read_text(errors="replace")
    assert rc == 0, text[-3000:]
    assert "Traceback" not in text.split("signal received")[-1], text[-3000:]
    assert "store failing at shutdown" in text and "close failed" in text

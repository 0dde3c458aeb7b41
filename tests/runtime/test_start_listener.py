"""While ``serve`` starts -- waiting for another daemon's state-dir lock -- its port answers
``/healthz`` 200 and everything else 503 ``starting``, and the ingress takes the port over
once the lock is held. Without it a second ``serve`` did not listen while it waited: a
platform that stops the old instance only once the new one listens (Cloud Run's startup
probe) never stopped it, and the new revision failed (deploy/README.md, "One instance")."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from runtime_support import GAME_DAY, STARTUP_BUDGET_S, free_port, players_of, write_registry

from scoperouter.runtime.start_listener import answering_while_starting


def _event(event_id: str) -> dict[str, object]:
    return {"event_id": event_id, "source": "nba_raw.nbac_gamebook_player_stats",
            "game_date": str(GAME_DAY), "affected_entities": {"players": players_of("LAL")[:1]},
            "changed_fields": ["points"]}  # fmt: skip


def _get(url: str, body: bytes | None = None) -> tuple[int, dict[str, object]]:
    req = urllib.request.Request(url, data=body, method="POST" if body is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/healthz", 200), ("GET", "/readyz", 503), ("POST", "/events", 503),
     ("GET", "/metrics", 503), ("POST", "/backfills", 503)],
)  # fmt: skip
def test_the_start_listener_is_alive_and_accepts_nothing(
    method: str, path: str, status: int
) -> None:
    """/healthz 200; anything else 503 'starting'; the port is free again after the block."""
    port = free_port()
    with answering_while_starting("127.0.0.1", port) as listening:
        assert listening
        got, body = _get(f"http://127.0.0.1:{port}{path}", b"{}" if method == "POST" else None)
    assert got == status
    assert body.get("error") == ("starting" if status == 503 else None)
    with socket.socket() as s:  # closed: the ingress can bind the port
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))


def test_no_listener_on_port_zero_or_a_taken_port() -> None:
    """Port 0 (the ingress picks one) and a port in use: no listener, no error."""
    with answering_while_starting("127.0.0.1", 0) as listening:
        assert not listening
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with answering_while_starting("127.0.0.1", taken.getsockname()[1]) as listening:
            assert not listening


def _serve(cfg: Path, state: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    args = ["serve", "--config", str(cfg), "--state-dir", str(state), "--port", str(port),
            "--no-log", "--relations-refresh", "0", "--as-of", str(GAME_DAY),
            "--lock-timeout", f"{STARTUP_BUDGET_S}s"]  # fmt: skip
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "scoperouter.cli", *args], stdout=out, stderr=subprocess.STDOUT
        )


def _until(proc: subprocess.Popen[bytes], log: Path, url: str, status: int) -> None:
    deadline = time.monotonic() + STARTUP_BUDGET_S
    while True:
        assert proc.poll() is None, log.read_text()[-2000:]
        try:
            if _get(url)[0] == status:
                return
        except OSError:
            pass
        assert time.monotonic() < deadline, f"{url} never {status}:\n" + log.read_text()[-2000:]
        time.sleep(0.1)


def test_a_second_serve_listens_while_it_waits_then_takes_over(tmp_path: Path) -> None:
    """Serve B on serve A's state dir: alive (healthz 200) and refusing events (503) while A
    holds the lock; A stopped, B becomes ready and accepts the event."""
    cfg = write_registry(tmp_path / "cfg")
    state = tmp_path / "state"
    pa, pb = free_port(), free_port()
    a = _serve(cfg, state, pa, tmp_path / "a.log")
    b: subprocess.Popen[bytes] | None = None
    try:
        _until(a, tmp_path / "a.log", f"http://127.0.0.1:{pa}/readyz", 200)
        b = _serve(cfg, state, pb, tmp_path / "b.log")
        _until(b, tmp_path / "b.log", f"http://127.0.0.1:{pb}/healthz", 200)
        body = json.dumps(_event("e-while-waiting")).encode()
        got, answer = _get(f"http://127.0.0.1:{pb}/events", body)
        assert (got, answer.get("error")) == (503, "starting")
        assert _get(f"http://127.0.0.1:{pb}/readyz")[0] == 503
        a.send_signal(signal.SIGTERM)
        assert a.wait(STARTUP_BUDGET_S) == 0
        _until(b, tmp_path / "b.log", f"http://127.0.0.1:{pb}/readyz", 200)
        got, answer = _get(f"http://127.0.0.1:{pb}/events", body)
        assert (got, answer.get("status")) == (200, "accepted"), answer
        b.send_signal(signal.SIGTERM)
        assert b.wait(STARTUP_BUDGET_S) == 0
    finally:
        for p in (a, b):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()

"""The bare HTTP baseline ``bench/daemon.py`` measures ``serve`` against does its job in both
ways it can answer (``bench/baseline_ingest.py --answer lean|app``): a valid event is
answered 200 only once its line is in the file, an invalid body gets a 400 and no line, and
a keep-alive connection carries many events. A baseline that answered without writing would
make every ratio meaningless; so would a load generator that miscounted its answers
(``bench/daemon.py --load-client raw``). Timing is not measured here: ``bench/``."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from runtime_support import free_port

from bench_scripts import bench_module

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["lean", "app"])
def bare(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """The bare HTTP server on a free loopback port, in one answer mode."""
    port = free_port()
    log = (tmp_path / "bare.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "bench" / "baseline_ingest.py"), "http", "--port",
         str(port), "--dir", str(tmp_path), "--answer", request.param],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while b"ready" not in (tmp_path / "bare.log").read_bytes():
            assert proc.poll() is None, (tmp_path / "bare.log").read_text()
            assert time.monotonic() < deadline, "the bare server never became ready"
            time.sleep(0.02)
        yield port, tmp_path / "bare-ingest.jsonl"
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


async def test_bare_http_answers_after_the_line_is_written(bare: tuple[int, Path]) -> None:
    """Each 200 comes after its event's line is in the file; junk gets a 400 and no line."""
    port, out = bare
    url = f"http://127.0.0.1:{port}/events"
    async with aiohttp.ClientSession() as s:  # one keep-alive connection pool
        for i in range(20):
            body = json.dumps({"event_id": f"e-{i}", "source": "s"}).encode()
            async with s.post(url, data=body) as r:
                assert r.status == 200
                assert await r.json() == {"status": "accepted"}
            lines = out.read_bytes().splitlines()
            assert json.loads(lines[-1])["event_id"] == f"e-{i}"
            assert len(lines) == i + 1
        for junk in (b"not json", b"[1, 2]"):
            async with s.post(url, data=junk) as r:
                assert r.status == 400
        async with s.get(f"http://127.0.0.1:{port}/readyz") as r:
            assert r.status == 200
    assert len(out.read_bytes().splitlines()) == 20


async def test_raw_load_client_counts_exactly_the_answered_events(bare: tuple[int, Path]) -> None:
    """bench/daemon.py's raw HTTP/1.1 producers count as answered exactly the events the
    bare server wrote: none lost, none counted twice, keep-alive across requests."""
    port, out = bare
    ok, elapsed = await bench_module("daemon").saturate_raw(
        f"http://127.0.0.1:{port}/events", 0.3, "raw", producers=4
    )
    assert ok > 4  # several requests per connection
    assert elapsed > 0
    lines = out.read_bytes().splitlines()
    assert len(lines) == ok
    assert len({json.loads(x)["event_id"] for x in lines}) == ok


def test_http_threads_splits_a_saturated_run_by_thread(tmp_path: Path) -> None:
    """``bench/http_threads.py`` runs its contestant saturated and reports its events and the
    CPU of each of its threads (here the bare server, briefly; no figure is checked)."""
    out = subprocess.run(
        [sys.executable, str(REPO / "bench" / "http_threads.py"), "bare", "--seconds", "0.5",
         "--warm", "0"],
        capture_output=True, text=True, timeout=180, cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    head, *threads = out.stdout.splitlines()
    assert head.startswith("bare: ") and int(head.split()[1]) > 0, out.stdout
    assert threads and all(t.strip().split()[1] == "ms/event" for t in threads), out.stdout


def test_front_split_runs_the_router_behind_a_front(tmp_path: Path) -> None:
    """``bench/front_split.py`` answers through its front and splits the CPU by process."""
    out = subprocess.run(
        [sys.executable, str(REPO / "bench" / "front_split.py"), "--who", "split",
         "--rounds", "1", "--seconds", "0.5", "--warm", "0"],
        capture_output=True, text=True, timeout=180, cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    head, router, front = out.stdout.splitlines()
    assert head.startswith("split: ") and float(head.split()[1]) > 0, out.stdout
    assert router.strip().startswith("router: ") and "scoperouter-state" in router, out.stdout
    assert front.strip().startswith("front: "), out.stdout

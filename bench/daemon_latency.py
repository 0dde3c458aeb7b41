"""Benchmark of ``scoperouter serve`` (the real daemon, as a subprocess, on loopback).

Measures, with zero-length windows and an HTTP target served by this script:

* HTTP ingress: sustained events/s at saturation (closed loop, N concurrent producers),
  then p50/p99 ingest-to-dispatch latency at a fixed offered rate (open loop): from the
  start of the producer's POST to the moment the target receives the trigger.
* Pub/Sub ingress through the emulator (when available): publish -> streaming pull ->
  dispatch latency and throughput.
* Memory: RSS of the daemon holding 10,000 open windows.

This process (producer and target) keeps its own garbage collector off while it measures,
so its collections do not count as the router's latency; ``--bench-gc`` leaves it on.

Usage::

    python bench/daemon.py [--seconds 10] [--rate 2000] [--skip-emulator] [--sync full|normal]

Prints a small report (and ``--json`` for machine-readable output). Every event fires
exactly one trigger (``nbac_injury_report`` with ``changed_fields: [injury_reason]``
reaches ``player_game_summary`` only), so events/s equals triggers/s. (Runs saved before
routes.yaml routed the gamebook to ``upcoming_player_game_context`` used
``nbac_gamebook_player_stats`` with ``[minutes]``, then also one trigger.)
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import gc
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "runtime"))  # the test registry/relations generator
sys.path.insert(0, str(REPO / "bench"))  # bench_support, also when loaded by file path
from bench_support import free_port, serve_cmd, start_emulator  # noqa: E402
from runtime_support import GAME_DAY, TEAMS, players_of, write_registry  # noqa: E402

PLAYERS = [p for t in TEAMS for p in players_of(t)]
LOOP = ["auto"]
BENCH_GC = [False]  # --bench-gc: leave this process's garbage collector on while measuring


@contextlib.contextmanager
def no_bench_gc_pauses() -> Any:
    """Keep this process's cyclic GC off while measuring. This process is the producer *and*
    the target, and holds every request task and timestamp of the run: its full collections
    (20-35 ms on this machine) stalled the producer between taking a start time and sending,
    and the target before it took the arrival time -- time the router never spent."""
    if BENCH_GC[0]:
        yield
        return
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def event(i: int, tag: str, day: date = GAME_DAY) -> bytes:
    return json.dumps(
        {
            "event_id": f"{tag}-{i}",
            "source": "nba_raw.nbac_injury_report",
            "game_date": day.isoformat(),
            "affected_entities": {"players": [PLAYERS[i % len(PLAYERS)]]},
            "changed_fields": ["injury_reason"],
        }
    ).encode()


class Target:
    """The HTTP target: records when each event's trigger arrives."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        self.count = 0
        app = web.Application()
        app.router.add_post("/process", self.process)
        self.runner = web.AppRunner(app, access_log=None)
        self.port = free_port()

    async def start(self) -> None:
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def process(self, request: web.Request) -> web.Response:
        now = time.perf_counter()
        body = await request.json()
        trig = json.loads(base64.b64decode(body["message"]["data"]))
        self.count += 1
        for eid in trig["caused_by"]:
            self.arrived.setdefault(eid, now)
        return web.Response(status=204)


class Serve:
    def __init__(
        self, cfg: Path, state: Path, *, sync: str, subscription: str | None = None
    ) -> None:
        self.port = free_port()
        self.log = state.parent / f"serve-{self.port}.log"
        cmd = serve_cmd(
            cfg, state, self.port, GAME_DAY, log=False,
            extra=["--sync", sync, "--loop", LOOP[0]],
        )  # fmt: skip
        if subscription:
            cmd += ["--subscription", subscription]
        self.proc = subprocess.Popen(cmd, stdout=self.log.open("wb"), stderr=subprocess.STDOUT)

    async def ready(self, s: aiohttp.ClientSession) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit("daemon died:\n" + self.log.read_text()[-3000:])
            try:
                async with s.get(f"http://127.0.0.1:{self.port}/readyz") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
        raise SystemExit("daemon not ready")

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self) -> float:
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        return time.monotonic() - t0


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


class OutboxTail:
    """Follows <state-dir>/outbox.jsonl (1 ms polling): when each event's trigger landed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.arrived: dict[str, float] = {}
        self.count = 0
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while not self.path.exists():
            await asyncio.sleep(0.001)
        buf = b""
        with self.path.open("rb") as fh:
            while True:
                chunk = fh.read()
                if not chunk:
                    await asyncio.sleep(0.001)
                    continue
                now = time.perf_counter()
                buf += chunk
                *lines, buf = buf.split(b"\n")
                for line in lines:
                    self.count += 1
                    for eid in json.loads(line)["caused_by"]:
                        self.arrived.setdefault(eid, now)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()


async def wait_arrivals(target: Target | OutboxTail, want: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while target.count < want and time.monotonic() < deadline:
        await asyncio.sleep(0.01)


async def bench_http(
    tmp: Path, seconds: float, rate: float, sync: str, sink: str
) -> dict[str, Any]:
    """HTTP ingress; triggers go to an HTTP target served here, or to the outbox file."""
    run = f"http-{sink}-{rate:g}"
    state = tmp / f"{run}-state"
    target: Target | OutboxTail
    if sink == "http":
        target = Target()
        default_target: dict[str, Any] = {
            "http": {"url": f"http://127.0.0.1:{target.port}/process"},
            "concurrency": 64,
        }
    else:
        target = OutboxTail(state / "outbox.jsonl")
        default_target = {"outbox": {}}
    await target.start()
    cfg = write_registry(tmp / f"{run}-cfg", default_target=default_target)
    serve = Serve(cfg, state, sync=sync)
    out: dict[str, Any] = {}
    conn = aiohttp.TCPConnector(limit=128)
    async with aiohttp.ClientSession(connector=conn) as s:
        await serve.ready(s)
        url = f"http://127.0.0.1:{serve.port}/events"

        # warm-up
        for i in range(200):
            async with s.post(url, data=event(i, "warm")) as r:
                assert r.status == 200
        await wait_arrivals(target, 200)

        # 1. saturation, closed loop
        with no_bench_gc_pauses():
            stop_at = time.perf_counter() + seconds
            sent = [0]
            errors = [0]

            async def producer(k: int) -> None:
                i = k
                while time.perf_counter() < stop_at:
                    async with s.post(url, data=event(i, "sat")) as r:
                        if r.status != 200:
                            errors[0] += 1
                        await r.read()
                    sent[0] += 1
                    i += 64

            base = target.count
            t0 = time.perf_counter()
            await asyncio.gather(*(producer(k) for k in range(64)))
            elapsed = time.perf_counter() - t0
            await wait_arrivals(target, base + sent[0])
            drained = time.perf_counter() - t0
            out["saturation_events_per_s"] = round(sent[0] / elapsed, 1)
            out["saturation_dispatched_per_s"] = round((target.count - base) / drained, 1)
            out["saturation_errors"] = errors[0]

            # 2. latency at a fixed offered rate, open loop
            n = int(rate * seconds)
            starts: dict[str, float] = {}
            inflight = asyncio.Semaphore(512)

            async def post(i: int) -> None:
                async with inflight:
                    starts[f"lat-{i}"] = time.perf_counter()
                    async with s.post(url, data=event(i, "lat")) as r:
                        if r.status != 200:
                            errors[0] += 1
                        await r.read()

            base = target.count
            tasks = []
            t0 = time.perf_counter()
            for i in range(n):
                delay = t0 + i / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(post(i)))
            await asyncio.gather(*tasks)
            achieved = n / (time.perf_counter() - t0)
            await wait_arrivals(target, base + n)
            lat = [(target.arrived[k] - v) * 1000 for k, v in starts.items() if k in target.arrived]
            out["offered_rate"] = rate
            out["achieved_rate"] = round(achieved, 1)
            out["latency_ms_p50"] = round(pct(lat, 0.50), 2)
            out["latency_ms_p99"] = round(pct(lat, 0.99), 2)
            out["latency_ms_mean"] = round(statistics.fmean(lat), 2) if lat else None
            out["lost"] = n - len(lat)
            out["rss_mb_after"] = round(serve.rss_mb(), 1)
    out["sigterm_exit_s"] = round(serve.stop(), 2)
    if isinstance(target, Target):
        await target.runner.cleanup()
    else:
        await target.stop()
    return out


async def bench_emulator(tmp: Path, seconds: float, rate: float, sync: str) -> dict[str, Any]:
    from google.cloud import pubsub_v1

    project = "scoperouter-bench"
    topic = f"projects/{project}/topics/bench-in"
    sub = f"projects/{project}/subscriptions/bench-in"
    pub = pubsub_v1.PublisherClient(batch_settings=pubsub_v1.types.BatchSettings(max_latency=0.002))
    pub.create_topic(name=topic)
    sc = pubsub_v1.SubscriberClient()
    sc.create_subscription(request={"name": sub, "topic": topic, "ack_deadline_seconds": 30})
    sc.close()
    target = Target()
    await target.start()
    cfg = write_registry(
        tmp / "emu-cfg",
        default_target={
            "http": {"url": f"http://127.0.0.1:{target.port}/process"},
            "concurrency": 64,
        },
    )
    serve = Serve(cfg, tmp / "emu-state", sync=sync, subscription=sub)
    out: dict[str, Any] = {}
    async with aiohttp.ClientSession() as s:
        await serve.ready(s)
        for i in range(100):
            pub.publish(topic, event(i, "ewarm"))
        await wait_arrivals(target, 100)
        n = int(rate * seconds)
        starts: dict[str, float] = {}
        base = target.count
        with no_bench_gc_pauses():
            t0 = time.perf_counter()
            for i in range(n):
                delay = t0 + i / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                starts[f"emu-{i}"] = time.perf_counter()
                pub.publish(topic, event(i, "emu"))
            await wait_arrivals(target, base + n, timeout=60)
            elapsed = time.perf_counter() - t0
        lat = [(target.arrived[k] - v) * 1000 for k, v in starts.items() if k in target.arrived]
        out["offered_rate"] = rate
        out["events_per_s"] = round((target.count - base) / elapsed, 1)
        out["latency_ms_p50"] = round(pct(lat, 0.50), 2)
        out["latency_ms_p99"] = round(pct(lat, 0.99), 2)
        out["lost"] = n - len(lat)
    pub.stop()
    out["sigterm_exit_s"] = round(serve.stop(), 2)
    await target.runner.cleanup()
    return out


async def bench_windows(tmp: Path, windows: int, sync: str) -> dict[str, Any]:
    cfg = write_registry(tmp / "win-cfg", quiet="1h", max_wait="2h")
    serve = Serve(cfg, tmp / "win-state", sync=sync)
    out: dict[str, Any] = {}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as s:
        await serve.ready(s)
        out["rss_mb_idle"] = round(serve.rss_mb(), 1)
        url = f"http://127.0.0.1:{serve.port}/events"
        sem = asyncio.Semaphore(64)

        async def post(i: int) -> None:
            async with sem, s.post(url, data=event(i, "w", GAME_DAY - timedelta(days=i))) as r:
                assert r.status == 200, await r.text()

        t0 = time.perf_counter()
        await asyncio.gather(*(post(i) for i in range(windows)))
        out["fill_s"] = round(time.perf_counter() - t0, 2)
        async with s.get(f"http://127.0.0.1:{serve.port}/metrics") as r:
            text = await r.text()
        line = next(x for x in text.splitlines() if x.startswith("scoperouter_open_windows "))
        out["open_windows"] = int(float(line.split()[1]))
        out["rss_mb"] = round(serve.rss_mb(), 1)
    out["sigterm_exit_s"] = round(serve.stop(), 2)
    # restart: windows restored from the snapshot
    serve2 = Serve(cfg, tmp / "win-state", sync=sync)
    async with aiohttp.ClientSession() as s:
        t0 = time.perf_counter()
        await serve2.ready(s)
        out["restart_ready_s"] = round(time.perf_counter() - t0, 2)
        async with s.get(f"http://127.0.0.1:{serve2.port}/metrics") as r:
            text = await r.text()
        line = next(x for x in text.splitlines() if x.startswith("scoperouter_open_windows "))
        out["open_windows_after_restart"] = int(float(line.split()[1]))
        out["rss_mb_after_restart"] = round(serve2.rss_mb(), 1)
    serve2.stop()
    return out


async def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument(
        "--rate", type=float, default=2000.0, help="offered events/s for the latency runs"
    )
    ap.add_argument("--emulator-rate", type=float, default=1000.0)
    ap.add_argument(
        "--http-target-rates",
        type=float,
        nargs="*",
        default=[1000.0, 2000.0],
        help="offered rates for the runs with an HTTP target (both hops over HTTP)",
    )
    ap.add_argument("--windows", type=int, default=10_000)
    ap.add_argument("--sync", choices=("full", "normal"), default="full")
    ap.add_argument("--skip-emulator", action="store_true")
    ap.add_argument(
        "--loop", choices=("auto", "asyncio", "uvloop"), default="auto", help="daemon event loop"
    )
    ap.add_argument(
        "--bench-gc",
        action="store_true",
        help="leave this process's garbage collector on while measuring (the old behaviour: "
        "its pauses count as latency)",
    )
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="scoperouter-bench-"))
    LOOP[0] = args.loop
    BENCH_GC[0] = args.bench_gc
    report: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "sync": args.sync,
        "loop": args.loop,
        "bench_gc": args.bench_gc,
    }
    report["http_to_outbox"] = await bench_http(tmp, args.seconds, args.rate, args.sync, "outbox")
    print("HTTP in -> outbox:", report["http_to_outbox"], flush=True)
    for rate in args.http_target_rates:
        key = f"http_to_http_target@{rate:g}"
        report[key] = await bench_http(tmp, args.seconds, rate, args.sync, "http")
        print(f"HTTP in -> HTTP target (offered {rate:g}/s):", report[key], flush=True)
    report["windows"] = await bench_windows(tmp, args.windows, args.sync)
    print("windows:", report["windows"], flush=True)
    if not args.skip_emulator:
        emu = start_emulator(tmp)
        if emu is None and not os.environ.get("PUBSUB_EMULATOR_HOST"):
            report["emulator"] = "skipped: emulator not available"
        else:
            try:
                report["emulator"] = await bench_emulator(
                    tmp, args.seconds, args.emulator_rate, args.sync
                )
            finally:
                if emu is not None:
                    os.killpg(emu.pid, signal.SIGTERM)
                    emu.wait(10)
        print("emulator:", report["emulator"], flush=True)
    if args.json:
        print(json.dumps(report, indent=2))
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))

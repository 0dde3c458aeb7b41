"""``scoperouter serve`` measured against the floor of its own stack (``bench/baseline_ingest.py``).

Every figure is a ratio to the bare durable ingest (HTTP) or the bare streaming-pull
subscriber (Pub/Sub emulator), measured in the same run, interleaved: each round runs every
contestant once (the order rotates), and the report gives min / median / max over rounds.
Contestants: ``serve`` on its defaults first (execution log on), then ``serve --no-log``.

* The bare HTTP server takes ``POST /events`` the way ``serve`` does (``--bare-answer
  lean``: its server's request handler, no coroutine per event, ready bytes); ``--bare-answer
  app``: through an aiohttp application and ``web.Response``, the baseline of the runs
  before 2026-12-04.
* HTTP, fixed offered rate (open loop): CPU seconds of the server process per event.
* HTTP, saturation (closed loop, 64 producers on raw keep-alive HTTP/1.1, cheap enough to
  saturate the bare server; ``--load-client aiohttp``: the aiohttp client of the runs before
  2026-12-04, which bound the bare server at about 10,000 events/s): events/s answered, CPU
  per event.
* Pub/Sub: messages published beforehand, then drained (first to last line out): msgs/s
  and CPU per message. The bare subscriber runs on ``serve``'s own client-library scheduler
  (``InlineScheduler``, the floor); ``--bare-scheduler pool``: on the library's default
  thread pool instead, the baseline of the runs before 2026-12-04.
* Execution log bytes per event (the default run).
* ``--run-retries N``: ``serve``'s registry with ``run_retries: N``, the closed loop (its
  ledger and snapshot + journal store, docs/ledger.md) instead of the default store.
* ``--soak N``: N events at saturation into ``serve`` (``SOAK_WHO=serve_no_log``: with
  ``--no-log``) with a short log retention, sampling
  the execution log's size and the daemon's RSS: both must stay flat.
  ``--soak-target-delay-ms D``: the triggers go to a local HTTP target answering after D ms
  (slower than ingest: a backlog for the whole run, which must wait in the state store, not
  in memory); ``--serve-args '--state sqlite:///{tmp}/s.db'``: extra ``serve`` arguments.

The machine is shared: the load average is recorded at the start and end of every round.
The daemon's triggers go to the outbox (``fdatasync`` before done, the default).

    python bench/daemon.py [--rounds 3] [--seconds 5] [--rate 1000] [--skip-emulator] [--json]

``bench/daemon_latency.py`` keeps the latency scenarios (ingest->dispatch p50/p99, an HTTP
target, 10,000 open windows).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "runtime"))  # the test registry/relations generator
sys.path.insert(0, str(REPO / "bench"))  # bench_support, also when loaded by file path
from bench_support import free_port, serve_cmd, start_emulator  # noqa: E402
from runtime_support import GAME_DAY, TEAMS, players_of, write_registry  # noqa: E402

PLAYERS = [p for t in TEAMS for p in players_of(t)]
TICK = os.sysconf("SC_CLK_TCK")
CONTESTANTS = ("bare", "serve", "serve_no_log")


def event_id(i: int, tag: str) -> str:
    """Event ``i``'s id, shaped like production's: the pipeline's processors publish their
    run id, ``str(uuid.uuid4())[:8]`` (data_processors/raw/processor_base.py:369, sent as
    ``execution_id`` at :1807), so ids arrive in random order, never sorted. Eight hex
    digits derived from (tag, i) -- random-looking, reproducible -- then ``-i`` so that no
    two of a run's events collide (32 random bits would, once in ~77k events)."""
    digest = hashlib.blake2b(f"{tag}-{i}".encode(), digest_size=4).hexdigest()
    return f"{digest}-{i}"


def event(i: int, tag: str) -> bytes:
    """One event that fires exactly one trigger (``player_game_summary``)."""
    return json.dumps(
        {
            "event_id": event_id(i, tag),
            "source": "nba_raw.nbac_injury_report",  # injury_reason: player_game_summary alone
            "game_date": GAME_DAY.isoformat(),
            "affected_entities": {"players": [PLAYERS[i % len(PLAYERS)]]},
            "changed_fields": ["injury_reason"],
        }
    ).encode()


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads)."""
    f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / TICK


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


PLACEMENT: dict[str, str] = {}  # contestant -> the CPUs its threads ran on (first seen)


def note_cpus(name: str, pid: int) -> None:
    """Record which CPUs contestant ``name``'s threads may run on (``Cpus_allowed_list`` of
    every thread, distinct lists joined by ``/``): ``serve`` keeps them on one CPU by
    default (its ``cpus`` setting), the bare baselines are left to the scheduler."""
    if name in PLACEMENT:
        return
    lists: set[str] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError, StopIteration):
            status = (task / "status").read_text().splitlines()
            lists.add(next(ln for ln in status if ln.startswith("Cpus_allowed_list:")).split()[1])
    PLACEMENT[name] = "/".join(sorted(lists))


def loadavg() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


class Proc:
    """A server under test (subprocess); ``ready_url`` answers 200 once it serves."""

    def __init__(
        self,
        cmd: list[str],
        log: Path,
        *,
        port: int | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.port = port
        self.log = log
        self.proc = subprocess.Popen(cmd, stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env)

    @property
    def pid(self) -> int:
        return self.proc.pid

    async def ready(self, s: aiohttp.ClientSession | None = None, *, line: bool = False) -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit("server died:\n" + self.log.read_text()[-3000:])
            if line:
                if b"ready" in self.log.read_bytes():
                    return
            elif s is not None:
                try:
                    async with s.get(f"http://127.0.0.1:{self.port}/readyz") as r:
                        if r.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
            await asyncio.sleep(0.05)
        raise SystemExit("server not ready: " + self.log.read_text()[-2000:])

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


BARE_SCHEDULER = ["inline"]  # --bare-scheduler: the bare subscriber's (baseline_ingest.py)
BARE_ANSWER = ["lean"]  # --bare-answer: how the bare HTTP server answers (baseline_ingest.py)


def bare_cmd(mode: str, out: Path, *, port: int = 0, subscription: str | None = None) -> list[str]:
    cmd = [sys.executable, str(REPO / "bench" / "baseline_ingest.py"), mode, "--dir", str(out)]
    if mode == "http":
        cmd += ["--port", str(port), "--answer", BARE_ANSWER[0]]
    else:
        cmd += ["--subscription", str(subscription), "--scheduler", BARE_SCHEDULER[0]]
    return cmd


SERVE_ARGS: list[str] = []  # --serve-args: extra ``serve`` arguments for every serve run


def serve_extra(state: Path, extra: list[str] | None = None) -> list[str]:
    """``--serve-args`` with ``{state}`` replaced by the run's state dir and ``{tmp}`` by
    the run's directory, then ``extra``."""
    run = str(state.parent)
    args = [a.replace("{state}", str(state)).replace("{tmp}", run) for a in SERVE_ARGS]
    return args + list(extra or [])


def start(name: str, tmp: Path, cfg: Path, run: str, extra: list[str] | None = None) -> Proc:
    port = free_port()
    d = tmp / run
    d.mkdir(parents=True, exist_ok=True)
    if name == "bare":
        return Proc(bare_cmd("http", d, port=port), d / "server.log", port=port)
    extra = serve_extra(d / "state", extra)
    cmd = serve_cmd(cfg, d / "state", port, GAME_DAY, log=name == "serve", extra=extra)
    return Proc(cmd, d / "server.log", port=port)


# ---------------------------------------------------------------------------- HTTP load
async def fixed_rate(
    s: aiohttp.ClientSession, url: str, rate: float, seconds: float, tag: str
) -> int:
    """Open loop: ``rate`` events/s for ``seconds``; returns how many were answered 200."""
    n = int(rate * seconds)
    inflight = asyncio.Semaphore(512)
    ok = [0]

    async def post(i: int) -> None:
        async with inflight, s.post(url, data=event(i, tag)) as r:
            await r.read()
            ok[0] += r.status == 200

    tasks = []
    t0 = time.perf_counter()
    for i in range(n):
        delay = t0 + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(post(i)))
    await asyncio.gather(*tasks)
    return ok[0]


LOAD_CLIENT = ["raw"]  # --load-client: what the saturating producers post with


async def saturate(
    s: aiohttp.ClientSession, url: str, seconds: float, tag: str, producers: int = 64
) -> tuple[int, float]:
    """Closed loop: ``producers`` concurrent POSTs for ``seconds``; (answered 200, elapsed).
    With ``--load-client raw``: :func:`saturate_raw` (``s`` unused)."""
    if LOAD_CLIENT[0] == "raw":
        return await saturate_raw(url, seconds, tag, producers)
    stop_at = time.perf_counter() + seconds
    ok = [0]

    async def producer(k: int) -> None:
        i = k
        while time.perf_counter() < stop_at:
            async with s.post(url, data=event(i, tag)) as r:
                await r.read()
                ok[0] += r.status == 200
            i += producers

    t0 = time.perf_counter()
    await asyncio.gather(*(producer(k) for k in range(producers)))
    return ok[0], time.perf_counter() - t0


async def saturate_raw(
    url: str, seconds: float, tag: str, producers: int = 64
) -> tuple[int, float]:
    """:func:`saturate` on raw keep-alive HTTP/1.1 connections, one per producer (asyncio
    streams: a request's bytes written at once, its answer read up to its headers' end,
    then its ``Content-Length`` bytes): the same closed loop for a fraction of the aiohttp
    client's CPU, which leaves more of the machine's cores to the server under test."""
    u = urllib.parse.urlsplit(url)
    host, port = u.hostname or "127.0.0.1", u.port or 80
    head = (
        f"POST {u.path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        "Content-Type: application/json\r\nContent-Length: "
    ).encode()
    stop_at = time.perf_counter() + seconds
    ok = [0]

    async def producer(k: int) -> None:
        reader, writer = await asyncio.open_connection(host, port)
        i = k
        try:
            while time.perf_counter() < stop_at:
                body = event(i, tag)
                writer.write(b"%s%d\r\n\r\n%s" % (head, len(body), body))
                answer = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in answer.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                await reader.readexactly(length)
                ok[0] += answer[9:12] == b"200"
                i += producers
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    t0 = time.perf_counter()
    await asyncio.gather(*(producer(k) for k in range(producers)))
    return ok[0], time.perf_counter() - t0


async def metric_sums(
    s: aiohttp.ClientSession, port: int, names: tuple[str, ...]
) -> dict[str, float]:
    """Each sample name of ``names`` on the daemon's ``/metrics``, summed over its labels
    (0 when absent)."""
    async with s.get(f"http://127.0.0.1:{port}/metrics") as r:
        text = await r.text()
    out = dict.fromkeys(names, 0.0)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in out:
                out[sample.name] += sample.value
    return out


async def gc_collections(s: aiohttp.ClientSession, port: int) -> float:
    """The daemon's garbage collections so far, every generation (``/metrics``)."""
    name = "python_gc_collections_total"
    return (await metric_sums(s, port, (name,)))[name]


def log_bytes(state: Path) -> int:
    return sum(p.stat().st_size for p in state.glob("execution_log.sqlite*") if p.is_file())


async def http_round(
    name: str, tmp: Path, cfg: Path, rnd: int, rate: float, seconds: float
) -> dict[str, Any]:
    p = start(name, tmp, cfg, f"r{rnd}-{name}")
    out: dict[str, Any] = {}
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=128)) as s:
            await p.ready(s)
            note_cpus(name, p.pid)
            url = f"http://127.0.0.1:{p.port}/events"
            await fixed_rate(s, url, 500, 0.6, f"warm{rnd}")
            await asyncio.sleep(0.5)
            c0 = cpu_s(p.pid)
            n = await fixed_rate(s, url, rate, seconds, f"fix{rnd}")
            await asyncio.sleep(0.3)  # the dispatches the last events fired
            c1 = cpu_s(p.pid)
            out["fixed_events"] = n
            out["cpu_ms_per_event"] = (c1 - c0) * 1000 / max(1, n)
            daemon = name != "bare"
            g0 = await gc_collections(s, p.port) if daemon else 0.0
            c0 = cpu_s(p.pid)
            n, el = await saturate(s, url, seconds, f"sat{rnd}")
            await asyncio.sleep(0.3)
            c1 = cpu_s(p.pid)
            if daemon:  # collections during the saturated run (runtime/daemon_run.py freeze_heap)
                out["saturation_gc_collections"] = await gc_collections(s, p.port) - g0
            out["saturation_events_per_s"] = n / el
            out["saturation_cpu_ms_per_event"] = (c1 - c0) * 1000 / max(1, n)
            out["rss_mb"] = rss_mb(p.pid)
            total = out["fixed_events"] + n + 300
    finally:
        p.stop()
    if name == "serve":  # at rest: stopped, the log flushed and its WAL checkpointed
        out["log_bytes_per_event"] = log_bytes(tmp / f"r{rnd}-{name}" / "state") / total
    return out


# ---------------------------------------------------------------------------- Pub/Sub


def count_lines(paths: list[Path]) -> int:
    n = 0
    for p in paths:
        try:
            with p.open("rb") as fh:
                n += sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b""))
        except FileNotFoundError:
            pass
    return n


def prepublish(project: str, name: str, n: int) -> str:
    from google.cloud import pubsub_v1

    topic = f"projects/{project}/topics/{name}"
    sub = f"projects/{project}/subscriptions/{name}"
    pub = pubsub_v1.PublisherClient(
        batch_settings=pubsub_v1.types.BatchSettings(max_messages=500, max_latency=0.01)
    )
    pub.create_topic(name=topic)
    sc = pubsub_v1.SubscriberClient()
    sc.create_subscription(request={"name": sub, "topic": topic, "ack_deadline_seconds": 60})
    sc.close()
    futs = [pub.publish(topic, event(i, name)) for i in range(n)]
    for f in futs:
        f.result(60)
    pub.stop()
    return sub


async def pull_round(name: str, tmp: Path, cfg: Path, rnd: int, n: int) -> dict[str, Any]:
    run = f"r{rnd}-pull-{name}"
    sub = prepublish("scoperouter-bench", run, n)
    d = tmp / run
    d.mkdir(parents=True, exist_ok=True)
    files: Callable[[], list[Path]]
    if name == "bare":
        p = Proc(bare_cmd("pull", d, subscription=sub), d / "server.log")
        files = lambda: [d / "bare-pull.jsonl"]  # noqa: E731
    else:
        port = free_port()
        extra = serve_extra(d / "state", ["--subscription", sub])
        cmd = serve_cmd(cfg, d / "state", port, GAME_DAY, log=name == "serve", extra=extra)
        p = Proc(cmd, d / "server.log", port=port)
        files = lambda: sorted((d / "state").glob("outbox*.jsonl*"))  # noqa: E731
    out: dict[str, Any] = {}
    try:
        deadline = time.monotonic() + 180
        while count_lines(files()) == 0:
            if p.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{run}: nothing drained\n" + p.log.read_text()[-3000:])
            await asyncio.sleep(0.005)
        note_cpus(f"pull-{name}", p.pid)
        t0, c0, n0 = time.perf_counter(), cpu_s(p.pid), count_lines(files())
        while (got := count_lines(files())) < n and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        t1, c1 = time.perf_counter(), cpu_s(p.pid)
        out["drained"] = got
        out["msgs_per_s"] = (got - n0) / (t1 - t0)
        out["cpu_ms_per_msg"] = (c1 - c0) * 1000 / max(1, got - n0)
    finally:
        p.stop()
    return out


# ---------------------------------------------------------------------------- soak
async def slow_target(delay_ms: float) -> tuple[Any, str]:
    """A local HTTP target answering 200 after ``delay_ms``: slower than ingest, so the
    daemon holds a backlog for the whole soak (an overload downstream, not only at intake)."""
    from aiohttp import web

    async def handle(request: web.Request) -> web.Response:
        await request.read()
        await asyncio.sleep(delay_ms / 1000)
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/t", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}/t"


def state_bytes(d: Path) -> dict[str, float]:
    """MB of the state files other than the execution log (databases, WALs, outbox)."""
    out: dict[str, float] = {}
    for p in sorted(d.rglob("*")):
        if p.is_file() and not p.name.startswith("execution_log") and p.stat().st_size > 100_000:
            out[p.name] = round(p.stat().st_size / 1e6, 2)
    return out


async def soak(
    tmp: Path,
    events: int,
    retention: str,
    seconds_per_sample: float,
    serve_args: list[str] | None = None,
    target_delay_ms: float = 0.0,
) -> dict[str, Any]:
    """``events`` at saturation into ``serve`` (log on, short retention): log size, state
    file sizes and RSS sampled along the way. ``serve_args``: the ``--serve-args`` every
    serve run gets (:func:`serve_extra`; recorded in the report here);
    ``target_delay_ms`` > 0: triggers go to a local HTTP target that slow (else the outbox)."""
    runner, target = None, None
    if target_delay_ms > 0:
        runner, url = await slow_target(target_delay_ms)
        target = {"http": {"url": url}}
    cfg = write_registry(
        tmp / "soak-cfg",
        server={"execution_log_retention": retention, "housekeeping_interval": "2s"},
        default_target=target,
    )
    run = tmp / "soak"
    p = start(os.environ.get("SOAK_WHO", "serve"), tmp, cfg, "soak")  # + --serve-args
    state = run / "state"
    samples: list[dict[str, Any]] = []
    sent = 0
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=128)) as s:
            await p.ready(s)
            url = f"http://127.0.0.1:{p.port}/events"
            t0 = time.perf_counter()
            while sent < events:
                n, _ = await saturate(s, url, seconds_per_sample, f"soak{sent}", producers=128)
                sent += n
                samples.append(
                    {
                        "events": sent,
                        "s": round(time.perf_counter() - t0, 1),
                        "log_mb": round(log_bytes(state) / 1e6, 2),
                        "rss_mb": round(rss_mb(p.pid), 1),
                        "load": loadavg(),
                        "state_mb": state_bytes(run),
                    }
                )
                print("soak:", samples[-1], flush=True)
    finally:
        p.stop()
        if runner is not None:
            await runner.cleanup()
    half = samples[len(samples) // 2 :]
    return {
        "events": sent,
        "retention": retention,
        "serve_args": serve_args or [],
        "target_delay_ms": target_delay_ms,
        "samples": samples,
        "log_mb_second_half_min_max": [
            min(x["log_mb"] for x in half),
            max(x["log_mb"] for x in half),
        ],
        "rss_mb_second_half_min_max": [
            min(x["rss_mb"] for x in half),
            max(x["rss_mb"] for x in half),
        ],
    }


# ---------------------------------------------------------------------------- report
def spread(values: list[float], nd: int = 2) -> dict[str, float]:
    return {
        "min": round(min(values), nd),
        "median": round(statistics.median(values), nd),
        "max": round(max(values), nd),
    }


def ratios(rounds: list[dict[str, dict[str, Any]]], key: str, nd: int = 2) -> dict[str, Any]:
    """Per contestant: the figure's spread, and its ratio to the bare run of the same round."""
    out: dict[str, Any] = {}
    for name in rounds[0]:
        vals = [r[name][key] for r in rounds if key in r[name]]
        if not vals:
            continue
        out[name] = spread(vals, 4)
        if name != "bare":
            out[name]["ratio_to_bare"] = spread([r[name][key] / r["bare"][key] for r in rounds], nd)
    return out


async def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--rate", type=float, default=1000.0, help="offered events/s (CPU per event)")
    ap.add_argument("--pull-messages", type=int, default=10_000)
    ap.add_argument("--skip-emulator", action="store_true")
    ap.add_argument("--skip-http", action="store_true")
    ap.add_argument("--soak", type=int, default=0, help="events of the soak run (0: none)")
    ap.add_argument("--soak-retention", default="20s")
    ap.add_argument(
        "--serve-args",
        default="",
        help="extra serve arguments of every serve run (HTTP, Pub/Sub, soak), one string "
        "({state}: the run's state dir, {tmp}: the run's directory), e.g. "
        "--serve-args='--state sqlite:///{tmp}/state.db'",
    )
    ap.add_argument(
        "--soak-target-delay-ms",
        type=float,
        default=0.0,
        help="soak triggers go to a local HTTP target answering after this many ms (a "
        "target slower than ingest: a backlog for the whole run); 0: the outbox",
    )
    ap.add_argument(
        "--bare-scheduler",
        choices=("inline", "pool"),
        default="inline",
        help="the bare subscriber's scheduler: inline (serve's own, the floor) or pool (the "
        "client library's default thread pool, the baseline of runs before 2026-12-04)",
    )
    ap.add_argument(
        "--bare-answer",
        choices=("lean", "app"),
        default="lean",
        help="how the bare HTTP server takes POST /events: lean (serve's own way, the floor) "
        "or app (an aiohttp application's handler, the baseline of runs before 2026-12-04)",
    )
    ap.add_argument(
        "--load-client",
        choices=("raw", "aiohttp"),
        default="raw",
        help="what the saturating producers post with: raw keep-alive HTTP/1.1 on asyncio "
        "streams (the default: cheap enough to saturate the bare server), or the aiohttp "
        "client (the runs before 2026-12-04: it bound the bare server at ~10,000 events/s)",
    )
    ap.add_argument(
        "--run-retries",
        type=int,
        default=0,
        help="defaults.run_retries in serve's registry: above 0 turns the closed loop on "
        "(its snapshot + journal store and ledger; docs/ledger.md); 0, the default: off",
    )
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--out", type=Path, help="also write the JSON report to this file")
    ap.add_argument(
        "--markdown", type=Path, metavar="REPORT", help="print the README table of a saved report"
    )
    args = ap.parse_args(argv)
    if args.markdown:
        print(markdown(json.loads(args.markdown.read_text(encoding="utf-8"))))
        return 0
    SERVE_ARGS[:] = shlex.split(args.serve_args)
    BARE_SCHEDULER[0] = args.bare_scheduler
    BARE_ANSWER[0] = args.bare_answer
    LOAD_CLIENT[0] = args.load_client
    tmp = Path(tempfile.mkdtemp(prefix="scoperouter-bench-"))
    retries = {"run_retries": args.run_retries} if args.run_retries else {}
    cfg = write_registry(tmp / "cfg", defaults=retries)
    report: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "cpus": os.cpu_count(),
        "rounds": args.rounds,
        "seconds": args.seconds,
        "rate": args.rate,
        "bare": {"http_answer": args.bare_answer, "pull_scheduler": args.bare_scheduler},
        "load_client": args.load_client,
    }
    if args.serve_args:
        report["serve_args"] = args.serve_args
    if args.run_retries:
        report["run_retries"] = args.run_retries
    loads: list[float] = []
    try:
        if not args.skip_http:
            rounds: list[dict[str, dict[str, Any]]] = []
            for rnd in range(args.rounds):
                loads.append(loadavg())
                order = CONTESTANTS[rnd % 3 :] + CONTESTANTS[: rnd % 3]
                res = {}
                for name in order:
                    res[name] = await http_round(name, tmp, cfg, rnd, args.rate, args.seconds)
                    print(
                        f"round {rnd} {name}:",
                        {k: round(v, 3) for k, v in res[name].items()},
                        flush=True,
                    )
                rounds.append({k: res[k] for k in CONTESTANTS})
            loads.append(loadavg())
            report["http"] = {
                "cpu_per_event_at_rate": ratios(rounds, "cpu_ms_per_event"),
                "saturation_events_per_s": ratios(rounds, "saturation_events_per_s"),
                "saturation_cpu_per_event": ratios(rounds, "saturation_cpu_ms_per_event"),
                "rss_mb": ratios(rounds, "rss_mb"),
                "log_bytes_per_event": spread(
                    [r["serve"]["log_bytes_per_event"] for r in rounds], 0
                ),
                # garbage collections in each saturated run (no ratio: the bare server is
                # not asked)
                "saturation_gc_collections": {
                    name: spread([r[name]["saturation_gc_collections"] for r in rounds], 0)
                    for name in ("serve", "serve_no_log")
                },
            }
        if not args.skip_emulator:
            emu = start_emulator(tmp)
            if emu is None and not os.environ.get("PUBSUB_EMULATOR_HOST"):
                report["pull"] = "skipped: emulator not available"
            else:
                try:
                    prounds = []
                    for rnd in range(args.rounds):
                        loads.append(loadavg())
                        order = CONTESTANTS[rnd % 3 :] + CONTESTANTS[: rnd % 3]
                        res = {}
                        for name in order:
                            res[name] = await pull_round(name, tmp, cfg, rnd, args.pull_messages)
                            print(
                                f"pull round {rnd} {name}:",
                                {k: round(v, 3) for k, v in res[name].items()},
                                flush=True,
                            )
                        prounds.append({k: res[k] for k in CONTESTANTS})
                    loads.append(loadavg())
                    report["pull"] = {
                        "messages": args.pull_messages,
                        "drain_msgs_per_s": ratios(prounds, "msgs_per_s"),
                        "cpu_per_msg": ratios(prounds, "cpu_ms_per_msg"),
                    }
                finally:
                    if emu is not None:
                        os.killpg(emu.pid, signal.SIGTERM)
                        emu.wait(10)
        if args.soak:
            report["soak"] = await soak(
                tmp,
                args.soak,
                args.soak_retention,
                10.0,
                shlex.split(args.serve_args),
                args.soak_target_delay_ms,
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    report["loadavg_1min"] = spread(loads) if loads else None
    report["cpus_allowed"] = dict(PLACEMENT)
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(report, indent=2) if args.json else summary(report))
    return 0


ROWS = (  # (section, figure key, label, unit): the README table, in order
    ("http", "saturation_cpu_per_event", "HTTP in -> outbox, CPU per event at saturation", "ms"),
    ("http", "cpu_per_event_at_rate", "HTTP in -> outbox, CPU per event at the offered rate", "ms"),
    ("http", "saturation_events_per_s", "HTTP in -> outbox, saturation throughput", "events/s"),
    ("http", "rss_mb", "RSS after the HTTP runs", "MB"),
    ("pull", "drain_msgs_per_s", "Pub/Sub emulator backlog drain", "msgs/s"),
    ("pull", "cpu_per_msg", "Pub/Sub emulator, CPU per message", "ms"),
)


def markdown(r: dict[str, Any]) -> str:
    """The README's daemon table, rendered from a saved ``--json`` report: each figure as
    the median ratio to the bare baseline (min-max over rounds) and the bare median."""
    pull = r.get("pull")
    out = [
        f"Measured {r['date']} with `python bench/daemon.py`: {r['rounds']} rounds of "
        f"{r['seconds']:g} s per HTTP figure ({r['rate']:g} events/s offered for the CPU per "
        f"event at a fixed rate, 64 closed-loop producers"
        + (f" ({r['load_client']} client)" if "load_client" in r else "")
        + " for saturation)"
        + (
            f", {pull['messages']:,} Pub/Sub messages drained per round"
            if isinstance(pull, dict)
            else ""
        )
        + (f", a soak of {r['soak']['events']:,} events" if "soak" in r else "")
        + (
            f"; `serve`'s registry with `run_retries: {r['run_retries']}` (the closed loop)"
            if "run_retries" in r
            else ""
        )
        + (
            f"; bare baselines: HTTP answers `{r['bare']['http_answer']}`, Pub/Sub scheduler "
            f"`{r['bare']['pull_scheduler']}`"
            if "bare" in r
            else ""
        )
        + (
            f"; threads on CPUs: `serve` {r['cpus_allowed']['serve']}, bare "
            f"{r['cpus_allowed']['bare']}"
            if "serve" in r.get("cpus_allowed", {}) and "bare" in r.get("cpus_allowed", {})
            else ""
        )
        + f"; {r['cpus']} CPUs shared with other jobs, 1-minute load average "
        f"{r['loadavg_1min']['min']}-{r['loadavg_1min']['max']}.",
        "",
        "| figure | `serve` (defaults, log on) | `serve --no-log` | bare baseline (median) |",
        "|---|---|---|---|",
    ]
    for sect, key, label, unit in ROWS:
        block = r.get(sect)
        if not isinstance(block, dict) or key not in block:
            continue
        per = block[key]
        cells = []
        for name in ("serve", "serve_no_log"):
            q = per[name]["ratio_to_bare"]
            cells.append(f"{q['median']}x ({q['min']}-{q['max']})")
        out.append(f"| {label} | {cells[0]} | {cells[1]} | {per['bare']['median']:.3g} {unit} |")
    if isinstance(r.get("http"), dict):
        b = r["http"]["log_bytes_per_event"]
        out.append(
            f"| execution log size per event | {b['median']:g} bytes ({b['min']:g}-{b['max']:g}) | - | - |"
        )
    if "soak" in r:
        s = r["soak"]
        out.append(
            f"| soak: {s['events']:,} events at saturation, log retention {s['retention']} "
            f"(second half, min-max) | log {s['log_mb_second_half_min_max'][0]:g}-"
            f"{s['log_mb_second_half_min_max'][1]:g} MB, RSS {s['rss_mb_second_half_min_max'][0]:g}-"
            f"{s['rss_mb_second_half_min_max'][1]:g} MB | - | - |"
        )
    return "\n".join(out)


def summary(r: dict[str, Any]) -> str:
    lines = [f"{r['date']}, {r['cpus']} CPUs, {r['rounds']} rounds, load avg {r['loadavg_1min']}"]
    for sect in ("http", "pull"):
        block = r.get(sect)
        if not isinstance(block, dict):
            continue
        for fig, per in block.items():
            if not isinstance(per, dict) or "serve" not in per:
                continue
            for name in ("serve", "serve_no_log"):
                q = per[name].get("ratio_to_bare")
                if q:
                    lines.append(
                        f"{sect} {fig} {name}: {q['median']}x bare (min {q['min']}, max {q['max']})"
                    )
        if sect == "http":
            lines.append(f"execution log bytes/event: {block['log_bytes_per_event']}")
            gcs = block.get("saturation_gc_collections")
            if gcs:
                lines.append(f"garbage collections per saturated run: {gcs}")
    if "soak" in r:
        s = r["soak"]
        lines.append(
            f"soak {s['events']} events: log MB {s['log_mb_second_half_min_max']}, "
            f"RSS MB {s['rss_mb_second_half_min_max']} (second half min/max)"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))

"""Where a saturated HTTP run's CPU goes: the CPU per event of each thread of one
contestant of ``bench/daemon.py``'s saturation rounds (``bare``, ``serve``,
``serve_no_log``), the HTTP counterpart of ``bench/pull_threads.py``.

Invariant: measured as ``bench/daemon.py``'s saturation figure is (its contestant started
the same way, the same 64 closed-loop producers on the same load client, the same events),
only split by thread: the per-thread user+system CPU from ``/proc/<pid>/task`` over the
measured seconds, named by the Python thread names ``py-spy dump`` reports (the OS names
otherwise; ``py-spy`` comes with the dev extras): ``MainThread`` (the event loop),
``scoperouter-state`` (planning and the ingest transactions), ``scoperouter-log`` (the
execution log), ``scoperouter-outbox``; the bare server's ``bare-syncer``. The defaults
are ``bench/daemon.py``'s: the bare server answers ``lean``, the load client is ``raw``.
For ``serve``, also its execution log's queue over the measured seconds, from ``/metrics``:
how long the ingest waited for the log (backpressure) and how much was queued at the end.

    python bench/http_threads.py serve [--seconds 5] [--warm 2] [--rounds 1]
        [--record out.raw [--gil]]

``--rounds N`` repeats the run (a fresh server each time) and prints each round, so that
two trees can be compared interleaved: run it once per tree, ``PYTHONPATH=<tree>/src``
(``serve`` is started with this interpreter and environment). ``--record``: also ``py-spy
record --threads --format raw`` over the measured seconds (py-spy's sampling costs the
server CPU: the split is then marked). Prints figures only; nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import aiohttp

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # bench_support, pull_threads, also when loaded by file path
from bench_support import daemon_bench  # noqa: E402
from pull_threads import python_names, split, thread_cpu  # noqa: E402

LOG_QUEUE = (  # serve's execution-log queue on /metrics (runtime/metrics.py)
    "scoperouter_execution_log_backpressure_waits_total",
    "scoperouter_execution_log_backpressure_seconds_total",
    "scoperouter_execution_log_pending",
)


async def one_round(b: Any, who: str, args: argparse.Namespace, tmp: Path, run: str) -> str:
    """One contestant saturated for ``args.seconds`` after ``args.warm``: its report lines."""
    cfg = b.write_registry(tmp / "cfg")
    p = b.start(who, tmp, cfg, run)
    try:
        async with aiohttp.ClientSession() as s:
            await p.ready(s)
            url = f"http://127.0.0.1:{p.port}/events"
            if args.warm > 0:
                await b.saturate(s, url, args.warm, f"{run}-warm")
            names = python_names(p.pid)
            spy = None
            if args.record:
                cmd = ["py-spy", "record", "--pid", str(p.pid), "-o", str(args.record)]
                cmd += ["--format", "raw", "--threads", "-r", "200"] + ["--gil"] * args.gil
                spy = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            serve = who != "bare"
            q0 = await b.metric_sums(s, p.port, LOG_QUEUE) if serve else {}
            tick, load0 = b.TICK, b.loadavg()
            k0 = thread_cpu(p.pid, tick)
            n, elapsed = await b.saturate(s, url, args.seconds, f"{run}-sat")
            k1 = thread_cpu(p.pid, tick)
            q1 = await b.metric_sums(s, p.port, LOG_QUEUE) if serve else {}
            if spy is not None:
                spy.send_signal(signal.SIGINT)
                spy.wait(60)
    finally:
        p.stop()
    n = max(1, n)
    per_thread = split(k0, k1, names)
    total = sum(per_thread.values())
    lines = [
        f"{who}: {n} events, {n / elapsed:.0f} events/s, {total * 1000 / n:.4f} ms CPU per "
        f"event, load {load0:.2f}-{b.loadavg():.2f}" + (" (py-spy sampling)" if args.record else "")
    ]
    for name, cpu in per_thread.most_common():
        if cpu > 0:
            lines.append(f"  {cpu * 1000 / n:.4f} ms/event  {name}")
    if q1:
        w, sec = (q1.get(k, 0.0) - q0.get(k, 0.0) for k in LOG_QUEUE[:2])
        lines.append(
            f"  execution log queue: the ingest waited {sec:.2f} s in {w:.0f} waits over the "
            f"{elapsed:.1f} s; {q1.get(LOG_QUEUE[2], 0.0):.0f} queued at the end"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("who", choices=("bare", "serve", "serve_no_log"))
    ap.add_argument("--seconds", type=float, default=5.0, help="measured saturation")
    ap.add_argument("--warm", type=float, default=2.0, help="saturation before measuring")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--record", type=Path, help="py-spy raw profile of the run to this file")
    ap.add_argument("--gil", action="store_true", help="py-spy samples the GIL holder only")
    args = ap.parse_args(argv)
    if args.seconds <= 0 or args.rounds < 1:
        ap.error("--seconds must be > 0 and --rounds >= 1")
    bd = daemon_bench()
    tmp = Path(tempfile.mkdtemp(prefix="scoperouter-http-threads-"))
    try:
        for r in range(args.rounds):
            print(asyncio.run(one_round(bd, args.who, args, tmp, f"r{r}")), flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

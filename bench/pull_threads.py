"""Where a streaming-pull drain's CPU goes: the CPU per message of each thread of one
contestant of ``bench/daemon.py``'s Pub/Sub rounds (``bare``, ``serve``, ``serve_no_log``).

Invariant: measured exactly as ``bench/daemon.py``'s ``pull_round`` measures (the same
prepublished events, from the first line out to the last), only split by thread: the
per-thread user+system CPU from ``/proc/<pid>/task`` between those two moments, named by
the Python thread names ``py-spy dump`` reports (the OS names otherwise). It tells the
client library's threads (``Thread-ConsumeBidirectionalStream``,
``Thread-CallbackRequestDispatcher``, ``ThreadPoolExecutor-ThreadScheduler``: paid by the
bare subscriber too) from the daemon's (``MainThread``: the event loop; ``scoperouter-state``:
the ingest transactions; ``scoperouter-outbox``; ``scoperouter-log``).

    python bench/pull_threads.py serve [--messages 20000] [--record out.raw [--gil]]
        [--bare-scheduler inline|pool]

``--record``: also ``py-spy record --threads --format raw`` over the drain (py-spy's own
sampling costs CPU: the split is printed from a run without it only when it is absent).
Starts the Pub/Sub emulator itself (as ``bench/daemon.py`` does) unless
``PUBSUB_EMULATOR_HOST`` names one.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # bench_support, also when loaded by file path
from bench_support import daemon_bench  # noqa: E402


def thread_cpu(pid: int, tick: int) -> dict[str, tuple[str, float]]:
    """tid -> (OS thread name, user+system CPU seconds so far)."""
    out: dict[str, tuple[str, float]] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            f = (task / "stat").read_text().rsplit(")", 1)[1].split()
            name = (task / "comm").read_text().strip()
        except OSError:  # the thread ended meanwhile
            continue
        out[task.name] = (name, (int(f[11]) + int(f[12])) / tick)
    return out


def python_names(pid: int) -> dict[str, str]:
    """tid -> Python thread name (``py-spy dump``; empty when py-spy is missing)."""
    try:
        dump = subprocess.run(
            ["py-spy", "dump", "--pid", str(pid)], capture_output=True, text=True, timeout=30
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return {}
    return dict(re.findall(r'Thread (?:0x[0-9A-Fa-f]+ )?\(?(\d+)\)?[^"\n]*"([^"]+)"', dump))


def split(
    before: dict[str, tuple[str, float]], after: dict[str, tuple[str, float]], names: dict[str, str]
) -> Counter[str]:
    """CPU seconds per thread name (pool threads' numeric suffixes folded together)."""
    agg: Counter[str] = Counter()
    for tid, (name, cpu) in after.items():
        agg[re.sub(r"_?\d+$", "", names.get(tid, name))] += cpu - before.get(tid, (name, 0.0))[1]
    return agg


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("who", choices=("bare", "serve", "serve_no_log"))
    ap.add_argument("--messages", type=int, default=20_000)
    ap.add_argument("--record", type=Path, help="py-spy raw profile of the drain to this file")
    ap.add_argument("--gil", action="store_true", help="py-spy samples the GIL holder only")
    ap.add_argument(
        "--bare-scheduler", choices=("inline", "pool"), default="inline",
        help="the bare subscriber's client-library scheduler (as bench/daemon.py's)",
    )  # fmt: skip
    args = ap.parse_args(argv)
    bd = daemon_bench()
    bd.BARE_SCHEDULER[0] = args.bare_scheduler
    tmp = Path(tempfile.mkdtemp(prefix="scoperouter-pull-threads-"))
    emu = bd.start_emulator(tmp)
    if emu is None and not os.environ.get("PUBSUB_EMULATOR_HOST"):
        print("the Pub/Sub emulator is not available", file=sys.stderr)
        return 2
    try:
        sub = bd.prepublish("scoperouter-bench", "pull-threads", args.messages)
        d = tmp / "run"
        d.mkdir()
        if args.who == "bare":
            p = bd.Proc(bd.bare_cmd("pull", d, subscription=sub), d / "server.log")
            files = lambda: [d / "bare-pull.jsonl"]  # noqa: E731
        else:
            cfg = bd.write_registry(tmp / "cfg")
            cmd = bd.serve_cmd(
                cfg, d / "state", bd.free_port(), bd.GAME_DAY, log=args.who == "serve",
                extra=["--subscription", sub],
            )  # fmt: skip
            p = bd.Proc(cmd, d / "server.log")
            files = lambda: sorted((d / "state").glob("outbox*.jsonl*"))  # noqa: E731
        try:
            deadline = time.monotonic() + 180
            while bd.count_lines(files()) == 0:
                if p.proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("nothing drained\n" + p.log.read_text()[-3000:])
                time.sleep(0.005)
            spy = None
            if args.record:
                cmd = ["py-spy", "record", "--pid", str(p.pid), "-o", str(args.record)]
                cmd += ["--format", "raw", "--threads", "-r", "200"] + ["--gil"] * args.gil
                spy = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            k0, load0 = thread_cpu(p.pid, bd.TICK), bd.loadavg()
            t0, c0, n0 = time.perf_counter(), bd.cpu_s(p.pid), bd.count_lines(files())
            while (got := bd.count_lines(files())) < args.messages:
                if time.monotonic() > deadline:
                    break
                time.sleep(0.02)
            t1, c1, k1 = time.perf_counter(), bd.cpu_s(p.pid), thread_cpu(p.pid, bd.TICK)
            names = python_names(p.pid)
            if spy is not None:
                spy.send_signal(signal.SIGINT)
                spy.wait(60)
        finally:
            p.stop()
    finally:
        if emu is not None:
            os.killpg(emu.pid, signal.SIGTERM)
            emu.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)
    n = max(1, got - n0)
    print(
        f"{args.who}: {n} messages, {n / (t1 - t0):.0f} msgs/s, "
        f"{(c1 - c0) * 1000 / n:.4f} ms CPU per message, load {load0:.2f}-{bd.loadavg():.2f}"
        + (" (py-spy sampling)" if args.record else "")
    )
    for name, cpu in split(k0, k1, names).most_common():
        if cpu > 0:
            print(f"  {cpu * 1000 / n:.4f} ms/msg  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

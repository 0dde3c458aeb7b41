"""``scoperouter serve --state`` holding 100,000 open windows (issue 13, acceptance 4), per
store: the per-window SQLite store (``sqlite:///``) and PostgreSQL.

For each store:

* fill: ``--windows`` planned events (one per date, so one window each, quiet 1 h) written
  through the store's own ``ingest`` by this script (fast; the daemon is not running);
* restart: ``serve`` started on the filled store, seconds to ``/readyz`` (median of
  ``--starts``), against the same on an empty store -- the acceptance: <= 2x;
* RSS of the daemon holding them (the acceptance: < 200 MB);
* steady ingest: ``--rate`` events/s over HTTP for ``--seconds`` into the dates of random
  open windows, first on the empty store (the baseline: HTTP, planning, one commit per
  batch, this machine's noise), then with the windows open; the difference of the POST
  latencies (max, p99, p50) is what persisting next to 100k windows adds (the acceptance:
  no pause > 50 ms caused by persistence). The ingest transaction runs on the daemon's
  state thread, never on its event loop; the daemon's own histogram
  ``scoperouter_ingest_transaction_seconds`` (each batch's wait for the state thread, write
  and commit) gives the persistence pauses directly: ``ingest_tx_over_50ms`` must be 0
  (POST maxima also carry stalls of the whole process: scheduling on a shared machine).

Usage::

    python bench/state_daemon.py [--windows 100000] [--store sqlite|postgresql|both]
        [--rate 200] [--seconds 10] [--starts 3] [--dsn postgresql://...] [--json]

Prints figures only; nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "tests" / "runtime"))
sys.path.insert(0, str(REPO / "bench"))  # bench_support, also when loaded by file path
from bench_support import free_port  # noqa: E402
from runtime_support import GAME_DAY, players_of, write_registry  # noqa: E402

PLAYERS = [p for t in ("BOS", "LAL", "MIA", "DEN") for p in players_of(t)]


def event(i: int, tag: str, days_back: int) -> dict[str, Any]:
    return {
        "event_id": f"{tag}-{i}",
        "source": "nba_raw.nbac_injury_report",  # injury_reason: player_game_summary alone
        "game_date": (GAME_DAY - timedelta(days=days_back)).isoformat(),
        "affected_entities": {"players": [PLAYERS[i % len(PLAYERS)]]},
        "changed_fields": ["injury_reason"],
    }


def fill(cfg: Path, location: str, windows: int) -> float:
    """Open ``windows`` windows through the store (one per date); returns seconds."""
    from scoperouter.messages.normalize import normalize_event
    from scoperouter.processor_registry.loader import load_config
    from scoperouter.router.planner import planner_for
    from scoperouter.state import StoreOptions, open_state_store
    from scoperouter.state.merge import contributions
    from scoperouter.state.model import Admission, IngestBatch

    loaded = load_config(cfg)
    reg = loaded.registry
    planner = planner_for(reg)
    store = open_state_store(location, StoreOptions(owner="fill", date_field=reg.date_field))
    t0 = time.perf_counter()
    batch: list[Admission] = []
    for i in range(windows):
        ev = normalize_event(event(i, "fill", i), reg)
        cs = contributions(reg, ev, planner.plan(loaded.relations, ev, GAME_DAY))
        batch.append(Admission(ev.event_id, cs))
        if len(batch) == 1000 or i == windows - 1:
            store.ingest(IngestBatch(admissions=tuple(batch)), time.time())
            batch = []
    n = store.open_window_count()
    store.close()
    if n != windows:
        raise SystemExit(f"filled {n} windows, wanted {windows}")
    return time.perf_counter() - t0


class Serve:
    def __init__(self, cfg: Path, location: str, tmp: Path) -> None:
        self.port = free_port()
        self.tmp = tmp
        self.log = tmp / f"serve-{self.port}.log"
        env = dict(os.environ, PYTHONPATH=str(REPO / "src"), PYTHONUNBUFFERED="1")
        self.t0 = time.perf_counter()
        self.proc = subprocess.Popen(
            [
                sys.executable, "-m", "scoperouter.cli", "serve", "--config", str(cfg),
                "--state", location, "--state-dir", str(tmp / f"dir-{self.port}"),
                "--port", str(self.port), "--as-of", GAME_DAY.isoformat(), "--no-log",
                "--log-level", "WARNING", "--loop", "asyncio",
            ],
            stdout=self.log.open("wb"), stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip

    async def ready(self, s: aiohttp.ClientSession) -> float:
        """Seconds from the process start to the first 200 of /readyz."""
        while time.perf_counter() - self.t0 < 180:
            if self.proc.poll() is not None:
                raise SystemExit("serve died:\n" + self.log.read_text(errors="replace")[-3000:])
            try:
                async with s.get(f"http://127.0.0.1:{self.port}/readyz") as r:
                    if r.status == 200:
                        return time.perf_counter() - self.t0
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.01)
        raise SystemExit("serve not ready")

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


async def start_time(cfg: Path, location: str, tmp: Path, n: int) -> float:
    times = []
    async with aiohttp.ClientSession() as s:
        for _ in range(n):
            sv = Serve(cfg, location, tmp)
            times.append(await sv.ready(s))
            sv.stop()
    return statistics.median(times)


def pct(values: list[float], q: float) -> float:
    v = sorted(values)
    return v[min(len(v) - 1, int(q * len(v)))] if v else float("nan")


async def run_store(kind: str, location: str, empty: str, args: argparse.Namespace,
                    tmp: Path) -> dict[str, Any]:  # fmt: skip
    cfg = write_registry(tmp / f"cfg-{kind}", quiet="1h", max_wait="2h")
    out: dict[str, Any] = {"store": kind, "windows": args.windows, "loadavg_1min": [loadavg()]}
    out["fill_s"] = round(fill(cfg, location, args.windows), 1)
    out["ready_s_empty"] = round(await start_time(cfg, empty, tmp, args.starts), 3)
    out["ready_s_full"] = round(await start_time(cfg, location, tmp, args.starts), 3)
    out["ready_ratio"] = round(out["ready_s_full"] / out["ready_s_empty"], 2)
    for label, loc in (("empty", empty), ("full", location)):
        out.update({f"{k}_{label}": v for k, v in (await steady(cfg, loc, tmp, args)).items()})
    out["loadavg_1min"].append(loadavg())  # the machine is shared: read the times with it
    return out


def ingest_transactions(metrics: str) -> dict[str, Any]:
    """From ``scoperouter_ingest_transaction_seconds`` (the persistence pause each ingest
    batch saw: its wait for the state thread, write and commit): how many batches, how many
    took over 50 ms, and the upper bound of the slowest one's bucket (ms)."""
    buckets: list[tuple[float, float]] = []
    for x in metrics.splitlines():
        if x.startswith("scoperouter_ingest_transaction_seconds_bucket"):
            le = x.split('le="', 1)[1].split('"', 1)[0]
            buckets.append((float(le), float(x.split()[-1])))
    buckets.sort()
    total = buckets[-1][1]
    at_50 = next(n for le, n in buckets if le == 0.05)
    slowest = next(le for le, n in buckets if n == total)
    return {
        "ingest_tx": int(total),
        "ingest_tx_over_50ms": int(total - at_50),
        "ingest_tx_slowest_le_ms": slowest * 1000,
    }


def loadavg() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


async def steady(cfg: Path, location: str, tmp: Path, args: argparse.Namespace) -> dict[str, Any]:
    """``--rate`` events/s over HTTP into random windows' dates; POST latency and RSS."""
    out: dict[str, Any] = {}
    sv = Serve(cfg, location, tmp)
    rng = random.Random(13)
    lat: list[float] = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as s:
        await sv.ready(s)
        out["rss_mb_ready"] = round(sv.rss_mb(), 1)
        url = f"http://127.0.0.1:{sv.port}/events"

        async def post(i: int) -> None:
            body = json.dumps(event(i, "steady", rng.randrange(args.windows))).encode()
            t = time.perf_counter()
            async with s.post(url, data=body) as r:
                assert r.status == 200, await r.text()
            lat.append((time.perf_counter() - t) * 1000)

        tasks = []
        n = int(args.rate * args.seconds)
        t0 = time.perf_counter()
        for i in range(n):
            delay = t0 + i / args.rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(post(i)))
        await asyncio.gather(*tasks)
        out["post_ms_max"] = round(max(lat), 1)
        out["post_ms_p99"] = round(pct(lat, 0.99), 1)
        out["post_ms_p50"] = round(pct(lat, 0.50), 1)
        out["rss_mb_after"] = round(sv.rss_mb(), 1)
        async with s.get(f"http://127.0.0.1:{sv.port}/metrics") as r:
            text = await r.text()
        line = next(x for x in text.splitlines() if x.startswith("scoperouter_open_windows "))
        out["open_windows_gauge"] = int(float(line.split()[1]))
        out.update(ingest_transactions(text))
    sv.stop()
    return out


async def amain(args: argparse.Namespace) -> list[dict[str, Any]]:
    tmp = Path(tempfile.mkdtemp(prefix="scoperouter-state-daemon-"))
    out = []
    if args.store in ("sqlite", "both"):
        out.append(
            await run_store(
                "sqlite",
                f"sqlite:///{tmp / 'full.sqlite3'}",
                f"sqlite:///{tmp / 'empty.sqlite3'}",
                args,
                tmp,
            )
        )
    if args.store in ("postgresql", "both"):
        cluster = None
        dsn = args.dsn
        try:
            if dsn is None:
                import pg_cluster

                bindir = pg_cluster.find_bindir()
                if bindir is None:
                    raise SystemExit("PostgreSQL binaries not found")
                cluster = pg_cluster.PgCluster(bindir, durable=True).start()
                dsn = cluster.dsn
            import psycopg

            with psycopg.connect(dsn, autocommit=True) as c:
                for db in ("bench_full", "bench_empty"):
                    c.execute(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
                    c.execute(f"CREATE DATABASE {db}")
            base = dsn.rsplit("/", 1)[0]
            out.append(
                await run_store(
                    "postgresql", f"{base}/bench_full", f"{base}/bench_empty", args, tmp
                )
            )
        finally:
            if cluster is not None:
                cluster.stop()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--windows", type=int, default=100_000)
    ap.add_argument("--store", choices=("sqlite", "postgresql", "both"), default="both")
    ap.add_argument("--rate", type=float, default=200.0)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--starts", type=int, default=3)
    ap.add_argument("--dsn", help="an existing PostgreSQL server (else a throwaway cluster)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    res = asyncio.run(amain(args))
    print(json.dumps(res, indent=None if args.json else 2))


if __name__ == "__main__":
    main()

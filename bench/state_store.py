"""Benchmark of the state stores at 100,000 open windows (issue 13, acceptance 4).

For each store (embedded SQLite, and PostgreSQL from a throwaway durable cluster or
``--dsn``), in a fresh subprocess so that RSS is the store's own:

* fill: ingest ``--windows`` events, each opening its own window (quiet 1 h: none fires);
* RSS of the process holding them (the router process; PostgreSQL's server is separate);
* steady ingest with the windows open: ``--events`` events merging into random open
  windows, one transaction per batch of ``--batch``; the duration of each ingest
  transaction is the pause persistence adds to ingest (max, p99, p50);
* restart: close, then open + ``next_deadline()`` (all a router needs before ``/readyz``),
  median of 5, against the same for an empty store.

``--hot SECONDS``: instead, ``--replicas`` stores (threads, one connection each) feed ONE
window at ``--hot-rate`` events/s in total (quiet 5 s, max_wait 30 s) and fire due windows;
prints the transaction times and checks that no event is in two triggers.

Usage::

    python bench/state_store.py [--windows 100000] [--events 5000] [--batch 20]
        [--store sqlite|postgresql] [--dsn postgresql://...] [--sync full|normal]
        [--pg-no-fsync] [--json]

Prints figures only; nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "tests"))

from scoperouter.state import StateStore, StoreOptions, open_state_store  # noqa: E402
from scoperouter.state.model import Admission, Contribution, IngestBatch  # noqa: E402

T0 = 1_700_000_000.0
DAY0 = date(2020, 1, 1)
PROCESSORS = 100


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def key_of(i: int) -> tuple[str, date]:
    return f"proc_{i % PROCESSORS:03d}", DAY0 + timedelta(days=i // PROCESSORS)


def contribution(eid: str, key: tuple[str, date], ids: tuple[str, ...]) -> Contribution:
    return Contribution(
        processor=key[0],
        day=key[1],
        event_id=eid,
        correlation_id="c-" + eid,
        critical=False,
        entity_type="player",
        entity_ids=ids,
        reason="entity_scope",
        quiet_s=3600.0,
        max_wait_s=7200.0,
        max_entities=100,
        granularity="player",
    )


def open_store(location: str, sync: str) -> StateStore:
    return open_state_store(location, StoreOptions(owner="bench"), sync=sync)


def restart_s(location: str, sync: str, n: int = 5) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        s = open_store(location, sync)
        s.next_deadline()
        times.append(time.perf_counter() - t)
        s.close()
    return statistics.median(times)


def run_one(location: str, empty_location: str, args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(13)
    rss0 = rss_mb()
    store = open_store(location, args.sync)
    t = time.perf_counter()
    fill_batch = 500
    for start in range(0, args.windows, fill_batch):
        adm = tuple(
            Admission(f"f{i}", (contribution(f"f{i}", key_of(i), (f"pl{i % 450}",)),))
            for i in range(start, min(args.windows, start + fill_batch))
        )
        store.ingest(IngestBatch(admissions=adm), T0 + start / 1000)
    fill_s = time.perf_counter() - t
    assert store.open_window_count() == args.windows
    rss_full = rss_mb()
    pauses = []
    for b in range(0, args.events, args.batch):
        adm = tuple(
            Admission(
                f"s{i}",
                (
                    contribution(
                        f"s{i}", key_of(rng.randrange(args.windows)), (f"pl{rng.randrange(450)}",)
                    ),
                ),
            )
            for i in range(b, b + args.batch)
        )
        t = time.perf_counter()
        store.ingest(IngestBatch(admissions=adm), T0 + 200 + b / 1000)
        pauses.append(time.perf_counter() - t)
    store.close()
    restart = restart_s(location, args.sync)
    open_store(empty_location, args.sync).close()  # create the empty store
    restart_empty = restart_s(empty_location, args.sync)
    pauses.sort()
    return {
        "windows": args.windows,
        "fill_s": round(fill_s, 2),
        "rss_mb_before_open": round(rss0, 1),
        "rss_mb_with_windows": round(rss_full, 1),
        "ingest_tx_ms_max": round(pauses[-1] * 1000, 2),
        "ingest_tx_ms_p99": round(pauses[int(len(pauses) * 0.99) - 1] * 1000, 2),
        "ingest_tx_ms_p50": round(pauses[len(pauses) // 2] * 1000, 2),
        "ingest_batches": len(pauses),
        "batch": args.batch,
        "restart_s": round(restart, 4),
        "restart_empty_s": round(restart_empty, 4),
        "restart_ratio": round(restart / restart_empty, 2),
    }


def run_hot(location: str, args: argparse.Namespace) -> dict[str, Any]:
    """``--replicas`` stores feed ONE window at ``--hot-rate`` events/s in total for
    ``--hot`` seconds while each also fires due windows; then checks every event is in
    exactly one trigger."""
    import threading

    stores = [open_store(location, args.sync) for _ in range(args.replicas)]
    key = ("hot_processor", DAY0)
    per = args.hot_rate / args.replicas
    pauses: list[float] = []
    triggers: list[tuple[str, ...]] = []
    lock = threading.Lock()

    accepted: list[str] = []

    def replica(n: int, store: StateStore) -> None:
        i = 0
        nxt = time.monotonic()
        end = nxt + args.hot
        owed = 0.0
        while time.monotonic() < end:
            nxt += 0.05  # a batch every 50 ms
            owed += per * 0.05
            k = int(owed)
            owed -= k
            adm = tuple(
                Admission(
                    f"h{n}-{i + j}",
                    (
                        Contribution(
                            key[0],
                            key[1],
                            f"h{n}-{i + j}",
                            None,
                            args.hot_critical,
                            "player",
                            (f"pl{(i + j) % 450}",),
                            "entity_scope",
                            5.0,
                            30.0,
                            100,
                            "player",
                        ),
                    ),
                )
                for j in range(k)
            )
            i += k
            t = time.perf_counter()
            r = store.ingest(IngestBatch(admissions=adm), time.time())
            fired = store.fire_due(time.time())
            with lock:
                accepted.extend(r.accepted)
                pauses.append(time.perf_counter() - t)
                triggers.extend(x.trigger.caused_by for x in [*r.fired, *fired])
            time.sleep(max(0.0, nxt - time.monotonic()))

    threads = [threading.Thread(target=replica, args=(n, s)) for n, s in enumerate(stores)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    triggers.extend(x.trigger.caused_by for x in stores[0].fire_due(time.time() + 1e5))
    counts: dict[str, int] = {}
    for caused in triggers:
        for e in caused:
            counts[e] = counts.get(e, 0) + 1
    for s in stores:
        s.close()
    pauses.sort()
    return {
        "hot_seconds": args.hot,
        "replicas": args.replicas,
        "critical": args.hot_critical,
        "events_accepted": len(accepted),
        "events_per_s": round(len(accepted) / args.hot, 1),
        "lost": len(set(accepted) - set(counts)),
        "triggers": len(triggers),
        "in_two_triggers": sum(1 for n in counts.values() if n > 1),
        "ingest_plus_fire_ms_max": round(pauses[-1] * 1000, 2),
        "ingest_plus_fire_ms_p99": round(pauses[int(len(pauses) * 0.99) - 1] * 1000, 2),
        "ingest_plus_fire_ms_p50": round(pauses[len(pauses) // 2] * 1000, 2),
    }


def child(args: argparse.Namespace) -> dict[str, Any]:
    run: Any = run_one if not args.hot else (lambda loc, _empty, a: run_hot(loc, a))
    if args.store == "sqlite":
        with tempfile.TemporaryDirectory() as d:
            return run(f"{d}/full.sqlite3", f"{d}/empty.sqlite3", args)  # type: ignore[no-any-return]
    import psycopg

    def schema_dsn(dsn: str, schema: str) -> str:
        with psycopg.connect(dsn, autocommit=True) as c:
            c.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
            c.execute(f"CREATE SCHEMA {schema}")
        sep = "&" if "?" in dsn else "?"
        return f"{dsn}{sep}options=-csearch_path%3D{schema}"

    cluster = None
    dsn = args.dsn
    if dsn is None:
        import pg_cluster

        bindir = pg_cluster.find_bindir()
        if bindir is None:
            return {"skipped": "PostgreSQL binaries not found"}
        cluster = pg_cluster.PgCluster(bindir, durable=not args.pg_no_fsync).start()
        dsn = cluster.dsn
    try:
        return run(schema_dsn(dsn, "bench_full"), schema_dsn(dsn, "bench_empty"), args)  # type: ignore[no-any-return]
    finally:
        if cluster is not None:
            cluster.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--windows", type=int, default=100_000)
    ap.add_argument("--events", type=int, default=5000)
    ap.add_argument("--batch", type=int, default=20)
    ap.add_argument("--store", choices=["sqlite", "postgresql"])
    ap.add_argument("--dsn", help="an existing PostgreSQL (default: a throwaway cluster)")
    ap.add_argument("--sync", choices=["full", "normal"], default="full")
    ap.add_argument(
        "--pg-no-fsync",
        action="store_true",
        help="throwaway cluster with fsync off (separates disk flushes from the rest)",
    )
    ap.add_argument("--hot", type=float, default=0.0, help="hot-window mode: seconds")
    ap.add_argument("--hot-rate", type=float, default=200.0, help="events/s in total")
    ap.add_argument("--hot-critical", action="store_true", help="every hot event is critical")
    ap.add_argument("--replicas", type=int, default=3, help="stores feeding the hot window")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if args.store is not None:
        print(json.dumps(child(args)))
        return
    results = {}
    for store in ("sqlite", "postgresql"):
        cmd = [sys.executable, __file__, "--store", store, *sys.argv[1:]]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        results[store] = json.loads(out.strip().splitlines()[-1])
    if args.json:
        print(json.dumps(results, indent=2))
        return
    if args.hot:
        for store, r in results.items():
            print(f"  {store:10s} hot window: {r}")
        return
    print(f"state stores at {args.windows:,} open windows (sync={args.sync})")
    for store, r in results.items():
        if "skipped" in r:
            print(f"  {store}: skipped ({r['skipped']})")
            continue
        print(
            f"  {store:10s} fill {r['fill_s']} s | RSS {r['rss_mb_with_windows']} MB "
            f"(before open {r['rss_mb_before_open']} MB) | ingest tx of {r['batch']} events: "
            f"max {r['ingest_tx_ms_max']} ms, p99 {r['ingest_tx_ms_p99']} ms, "
            f"p50 {r['ingest_tx_ms_p50']} ms | restart {r['restart_s'] * 1000:.1f} ms vs "
            f"empty {r['restart_empty_s'] * 1000:.1f} ms ({r['restart_ratio']}x)"
        )


if __name__ == "__main__":
    main()

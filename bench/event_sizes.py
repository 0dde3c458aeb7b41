"""Issue 18: large events never stall small ones.

A real ``scoperouter serve`` (subprocess, outbox target) gets a steady open-loop stream of
small events (one player id) at ``--rate``/s; the bench measures each one's ack latency
(POST to 200: the commit happened) alone, then while large events flow at the same time:

* ``huge_ids``: ~1 MB events naming 100,000 player ids (over the per-event cap: routed as
  full date),
* ``at_cap``: events naming 2,000 ids (just at the cap: planned as entity sets),
* ``backfill``: 400-day backfills (the longest accepted range).

Usage::

    python bench/event_sizes.py [--seconds 10] [--rate 100] [--large-every 0.5] [--json]

Prints p50/p99/max of the small events' ack latency per phase, the large events' own
latency, and the daemon's RSS at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
import daemon_latency as bd  # (bench/daemon_latency.py: Serve, PLAYERS, GAME_DAY, write_registry)


def small(i: int) -> bytes:
    return json.dumps(
        {"event_id": f"small-{i}", "source": "nba_raw.nbac_gamebook_player_stats",
         "game_date": bd.GAME_DAY.isoformat(), "changed_fields": ["points"],
         "affected_entities": {"players": [bd.PLAYERS[i % len(bd.PLAYERS)]]}}
    ).encode()  # fmt: skip


def large(kind: str, i: int) -> bytes:
    ev: dict[str, Any] = {"event_id": f"{kind}-{i}", "source": "nba_raw.nbac_gamebook_player_stats",
                          "changed_fields": ["points"]}  # fmt: skip
    if kind == "backfill":
        ev["start_date"] = (bd.GAME_DAY - timedelta(days=399 + i % 7)).isoformat()
        ev["end_date"] = (bd.GAME_DAY - timedelta(days=i % 7)).isoformat()
    else:
        n = 100_000 if kind == "huge_ids" else 2000
        ev["game_date"] = bd.GAME_DAY.isoformat()
        ev["affected_entities"] = {"players": [f"x{i}p{k}" for k in range(n)]}
    return json.dumps(ev, separators=(",", ":")).encode()


def pct(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    s = sorted(xs)
    return round(s[min(len(s) - 1, int(q * len(s)))] * 1000, 1)


async def phase(
    s: aiohttp.ClientSession, url: str, seconds: float, rate: float, kind: str | None,
    every: float, offset: int,
) -> dict[str, Any]:  # fmt: skip
    lat: list[float] = []
    big: list[float] = []
    statuses: dict[int, int] = {}
    tasks: list[asyncio.Task[None]] = []

    async def post(body: bytes, into: list[float]) -> None:
        t0 = time.perf_counter()
        async with s.post(url, data=body) as r:
            await r.read()
            statuses[r.status] = statuses.get(r.status, 0) + 1
        into.append(time.perf_counter() - t0)

    # built before the clock starts: making 1 MB of JSON here would stall this process's
    # own loop and show up as the router's latency
    bodies = [large(kind, offset + j) for j in range(int(seconds / every) + 2)] if kind else []

    async def large_loop() -> None:
        for body in bodies:
            await post(body, big)
            await asyncio.sleep(every)

    bg = asyncio.create_task(large_loop()) if kind else None
    start = time.perf_counter()
    i = 0
    while time.perf_counter() - start < seconds:
        tasks.append(asyncio.create_task(post(small(offset + i), lat)))
        i += 1
        await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
    await asyncio.gather(*tasks)
    if bg is not None:
        bg.cancel()
    return {"phase": kind or "alone", "small_n": len(lat), "small_p50_ms": pct(lat, 0.5),
            "small_p99_ms": pct(lat, 0.99), "small_max_ms": pct(lat, 1.0),
            "large_n": len(big), "large_p50_ms": pct(big, 0.5),
            "mean_small_ms": round(statistics.fmean(lat) * 1000, 1) if lat else None,
            "statuses": statuses}  # fmt: skip


async def run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    cfg = bd.write_registry(tmp / "cfg", server={"max_body_bytes": 4 << 20})
    serve = bd.Serve(cfg, tmp / "state", sync="normal")
    out: dict[str, Any] = {"rate": args.rate, "seconds": args.seconds, "phases": []}
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256)) as s:
            await serve.ready(s)
            url = f"http://127.0.0.1:{serve.port}/events"
            for n, kind in enumerate([None, "huge_ids", "at_cap", "backfill", None]):
                res = await phase(
                    s, url, args.seconds, args.rate, kind, args.large_every, n * 1_000_000
                )
                out["phases"].append(res)
            out["rss_mb_end"] = round(serve.rss_mb(), 1)
    finally:
        out["stop_s"] = round(serve.stop(), 2)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--rate", type=float, default=100.0, help="small events per second")
    ap.add_argument("--large-every", type=float, default=0.5, help="pause between large events")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="scoperouter-sizes-") as d:
        out = asyncio.run(run(args, Path(d)))
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        for p in out["phases"]:
            print(p)
        print({k: v for k, v in out.items() if k != "phases"})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

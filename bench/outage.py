"""Acceptance 1 of issue 18: a target down for a while, then back.

A local aiohttp target on 127.0.0.1 is down (connection refused, or ``--down-mode 503``)
for ``--outage`` seconds. Meanwhile ``--events`` events (3 triggers each) are posted to a
real ``scoperouter serve`` (a subprocess); half-way through the outage the daemon gets
SIGTERM (its exit code and stop time are measured against ``--shutdown-timeout``) and is
restarted on the same state dir with the whole backlog pending. The target comes back;
the bench waits until the store has no pending trigger, stops the daemon and checks:

* every trigger row of every acked event is ``done`` and none is ``dead``;
* the target received every trigger id;
* the daemon's RSS (max over the outage, sampled every 0.5 s) stays under ``--rss-mb``;
* SIGTERM during the outage exits 0 within the shutdown timeout;
* the restart logs a bounded number of lines (not one WARNING per trigger).

Usage::

    python bench/outage.py [--outage 600] [--events 20000] [--json]

Exit status 0 when every check holds, 1 otherwise. ``pytest -m slow`` runs a small
version (tests/runtime/test_outage.py::test_outage_bench_small_budget: 20 s, 2,000 events).

The daemon runs serve's default state: the per-window SQLite store (``state.db``); the
bench reads its ``sr_outbox`` (a row leased to the daemon counts as pending).

Measured with the defaults on that store (10 minutes, 20,000 events, 60,000 triggers;
bench/outage-600s.json, load average about 2): all acked, all 60,000 delivered once after
the target came back (drained in 21 s), none dead; RSS at most 75.9 MB with the whole
backlog waiting; SIGTERM mid-outage exit 0 in 0.42 s; the restart with 60,000 pending
wrote 7 log lines. ``--outage 60 --events 5000``: 15,000 delivered in 7.2 s, RSS at most
75.2 MB, SIGTERM 0.32 s. On the snapshot + journal store (the default before issue 13;
now the closed loop's) the 10-minute run gave: drained in 22 s, RSS at most 64.8 MB,
SIGTERM 0.17 s, 7 log lines.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent))
import daemon_latency as bd  # (bench/daemon_latency.py: Serve, free_port, PLAYERS, write_registry)


def event(i: int) -> bytes:
    """One event, three triggers (player and both team summaries), distinct per ``i``: the
    NBA.com box scores reach exactly those. (Saved runs used the gamebook, which routes.yaml
    now also routes to upcoming_player_game_context: four triggers.)"""
    return json.dumps(
        {
            "event_id": f"outage-{i}",
            "source": "nba_raw.nbac_player_boxscores",
            "game_date": bd.GAME_DAY.isoformat(),
            "affected_entities": {"players": [bd.PLAYERS[i % len(bd.PLAYERS)]]},
            "changed_fields": ["points"],
        }
    ).encode()


class Target:
    """The HTTP target; ``down()`` closes the listener (or answers 503), ``up()`` reopens."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.port = bd.free_port()
        self.received: dict[str, int] = {}
        self.refused = 0
        self.failing = False
        app = web.Application(client_max_size=1 << 24)
        app.router.add_post("/process", self.process)
        self.runner = web.AppRunner(app, access_log=None)
        self.site: web.TCPSite | None = None

    async def process(self, request: web.Request) -> web.Response:
        if self.failing:
            self.refused += 1
            return web.Response(status=503)
        body = await request.json()
        trig = json.loads(base64.b64decode(body["message"]["data"]))
        tid = trig["trigger_id"]
        self.received[tid] = self.received.get(tid, 0) + 1
        return web.Response(status=204)

    async def setup(self) -> None:
        await self.runner.setup()

    async def up(self) -> None:
        self.failing = False
        if self.site is None:
            self.site = web.TCPSite(self.runner, "127.0.0.1", self.port, reuse_address=True)
            await self.site.start()

    async def down(self) -> None:
        if self.mode == "503":
            await self.up()
            self.failing = True
        elif self.site is not None:
            await self.site.stop()
            self.site = None

    async def close(self) -> None:
        await self.runner.cleanup()


def _outbox(state: Path) -> tuple[Path, str]:
    """The state file serve's default uses and its outbox table: the per-window store
    (``state.db``, ``sr_outbox``), else the snapshot + journal store of a closed-loop
    registry (``state.sqlite3``, ``triggers``)."""
    if (state / "state.db").exists():
        return state / "state.db", "sr_outbox"
    return state / "state.sqlite3", "triggers"


def rows(state: Path) -> dict[str, int]:
    """Outbox rows by status; a row leased (the per-window store: in flight or paged) is
    counted as ``pending`` -- not finished either way."""
    path, table = _outbox(state)
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        got = db.execute(f"SELECT status, count(*) FROM {table} GROUP BY status").fetchall()
    finally:
        db.close()
    out: dict[str, int] = {}
    for s, n in got:
        key = "pending" if s == "leased" else str(s)
        out[key] = out.get(key, 0) + int(n)
    return out


def trigger_ids(state: Path) -> list[tuple[str, str]]:
    path, table = _outbox(state)
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        return [(str(a), str(b)) for a, b in db.execute(f"SELECT trigger_id, status FROM {table}")]
    finally:
        db.close()


class Daemon(bd.Serve):
    def __init__(self, cfg: Path, state: Path, shutdown_timeout: float) -> None:
        super().__init__(cfg, state, sync="normal")
        # bd.Serve logs at WARNING: restart log lines are what we count
        self.shutdown_timeout = shutdown_timeout

    def sigterm(self) -> tuple[int | None, float]:
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc: int | None = self.proc.wait(self.shutdown_timeout + 30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = None
        return rc, time.monotonic() - t0


async def run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    target = Target(args.down_mode)
    await target.setup()
    await target.down()
    url = f"http://127.0.0.1:{target.port}/process"
    cfg = bd.write_registry(
        tmp / "cfg",
        default_target={"http": {"url": url, "timeout": "5s"}, "concurrency": args.concurrency},
        server={"shutdown_timeout": f"{args.shutdown_timeout:g}s"},
    )
    state = tmp / "state"
    out: dict[str, Any] = {"outage_s": args.outage, "events": args.events}
    t_down = time.monotonic()
    rss: list[float] = []
    d = Daemon(cfg, state, args.shutdown_timeout)
    conn = aiohttp.TCPConnector(limit=64)
    async with aiohttp.ClientSession(connector=conn) as s:
        await d.ready(s)
        ev_url = f"http://127.0.0.1:{d.port}/events"
        acked = 0
        sem = asyncio.Semaphore(64)

        async def post(i: int) -> None:
            nonlocal acked
            async with sem, s.post(ev_url, data=event(i)) as r:
                acked += r.status == 200

        t0 = time.monotonic()
        sampler_stop = asyncio.Event()

        async def sample(daemon: Daemon) -> None:
            while not sampler_stop.is_set() and daemon.proc.poll() is None:
                rss.append(daemon.rss_mb())
                await asyncio.sleep(0.5)

        sampler = asyncio.create_task(sample(d))
        await asyncio.gather(*(post(i) for i in range(args.events)))
        out["ingest_s"] = round(time.monotonic() - t0, 2)
        out["acked"] = acked
        # half-way through the outage (at least after ingest): SIGTERM with the backlog
        await asyncio.sleep(max(0.0, t_down + args.outage / 2 - time.monotonic()))
        out["pending_at_sigterm"] = rows(state).get("pending", 0)
        out["rss_mb_before_sigterm"] = round(max(rss), 1)
        sampler_stop.set()
        await sampler
        rc, took = d.sigterm()
        out["sigterm_rc"], out["sigterm_s"] = rc, round(took, 2)
        log1 = d.log.read_text(errors="replace")
        # restart with the backlog pending, target still down
        d2 = Daemon(cfg, state, args.shutdown_timeout)
        await d2.ready(s)
        sampler_stop.clear()
        sampler = asyncio.create_task(sample(d2))
        await asyncio.sleep(max(0.0, t_down + args.outage - time.monotonic()))
        out["rss_mb_max"] = round(max(rss), 1)
        await target.up()
        t_up = time.monotonic()
        deadline = t_up + args.drain_timeout
        while time.monotonic() < deadline:
            if rows(state).get("pending", 0) == 0:
                break
            await asyncio.sleep(0.5)
        out["drain_s"] = round(time.monotonic() - t_up, 2)
        sampler_stop.set()
        await sampler
        out["rss_mb_max"] = round(max(rss), 1)
        rc2, took2 = d2.sigterm()
        out["final_rc"], out["final_stop_s"] = rc2, round(took2, 2)
        log2 = d2.log.read_text(errors="replace")
    await target.close()
    counts = rows(state)
    ids = trigger_ids(state)
    out["rows"] = counts
    out["triggers"] = len(ids)
    out["target_received_unique"] = len(target.received)
    out["target_duplicates"] = sum(n - 1 for n in target.received.values())
    out["target_refused_503"] = target.refused
    out["undelivered"] = sum(1 for tid, _s in ids if tid not in target.received)
    out["log_lines_first_run"] = log1.count("\n")
    out["log_lines_restart"] = log2.count("\n")
    out["warning_lines_restart"] = log2.count('"WARNING"')
    checks = {
        "all_acked": acked == args.events,
        "three_triggers_per_event": len(ids) == 3 * args.events,
        "none_dead": counts.get("dead", 0) == 0,
        "all_done": counts.get("done", 0) == len(ids),
        "all_received": out["undelivered"] == 0,
        "rss_under_limit": out["rss_mb_max"] < args.rss_mb,
        "sigterm_exit_0": rc == 0,
        "sigterm_within_timeout": took <= args.shutdown_timeout + 1.0,
        "restart_log_bounded": out["log_lines_restart"] < 1000,
    }
    out["checks"] = checks
    out["ok"] = all(checks.values())
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--outage", type=float, default=600.0, help="seconds the target is down")
    ap.add_argument("--events", type=int, default=20000)
    ap.add_argument("--concurrency", type=int, default=4, help="the target's in-flight cap")
    ap.add_argument("--shutdown-timeout", type=float, default=8.0)
    ap.add_argument("--drain-timeout", type=float, default=600.0)
    ap.add_argument("--rss-mb", type=float, default=150.0)
    ap.add_argument("--down-mode", choices=("refused", "503"), default="refused")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="scoperouter-outage-"))
    try:
        out = asyncio.run(run(args, tmp))
    finally:
        if not args.keep:
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        for k, v in out.items():
            print(f"{k}: {v}")
    return 0 if out["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())

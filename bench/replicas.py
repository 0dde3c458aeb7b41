"""Several ``scoperouter serve`` replicas on ONE Pub/Sub subscription sharing ONE PostgreSQL
(issue 13, acceptance 2 and 3), as subprocesses, against the Pub/Sub emulator.

``kills`` mode (acceptance 2): a bounded game-day stream is published while replicas are
SIGKILLed at random (one at a time, each restarted at once, ``--kills`` in all, some in the
middle of a delivery: the HTTP target answers after ``--target-delay``). Then, once every
message is routed and every trigger delivered, it checks from what the target received:

* lost: (processor, date, entity) requirements of the stream (planned here with the same
  registry) that no delivered trigger covers -- must be 0;
* split: contributions (processor, date, event) found in two different trigger ids -- 0;
* duplicates: deliveries of a trigger id already delivered (allowed: at-least-once) --
  counted; every duplicate is of the same trigger id by construction of the check;
* lateness: a monitor reads ``now - min(deadline)`` of the open windows every 50 ms: how
  long after its deadline the most overdue window was still open (fires within
  quiet + 1 s of its deadline <=> this stays <= 1 s).
* unrouted: events the store never saw (must be 0 once drained). Through Pub/Sub each is
  held to the replicas' settle lines (DEBUG ``ack``/``nack`` per message id, written before
  the ack): ``unrouted_acked`` -- acked, never committed -- is a loss and fails
  ``--check``; one never acked is still Pub/Sub's to deliver (the emulator is slow at it
  after kills: ``emulator_pushers_after_kills``, bench/emulator_pushers.py).

``hot`` mode (acceptance 3): ``--hot-rate`` events/s onto ONE processor and date for
``--hot`` seconds through the replicas (no kills), then again with every event critical;
checks nothing lost and no event in two triggers, prints publish-to-delivery latency and
the longest gap without a delivery (a stall).

Usage::

    python bench/replicas.py [--mode kills|hot|both] [--replicas 3] [--kills 30]
        [--rate 40] [--events 2400] [--hot 30] [--hot-rate 200] [--dsn postgresql://...]
        [--check] [--check-timing] [--json]

``--check`` exits 1 when a correctness figure is off (lost, split); ``--check-timing``
also when a window stayed open > 1 s past its deadline while replicas lived. Timing is
measured here, never asserted in the default test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import itertools
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "tests" / "runtime"))
sys.path.insert(0, str(REPO / "bench"))  # bench_support, also when loaded by file path
from bench_support import free_port, start_emulator  # noqa: E402
from runtime_support import GAME_DAY, game_day_stream, players_of, write_registry  # noqa: E402

PROJECT = "scoperouter-replicas"
STARTED: list[subprocess.Popen[bytes]] = []  # every replica process, killed at exit
EMULATOR_PID: list[int] = []  # the emulator this script started (its java process)
# serve with the Pub/Sub source's settle lines on (DEBUG "ack"/"nack" per message, written
# to the replica's log before the ack is sent: a SIGKILL cannot hide an ack), the rest at
# --log-level; the same as ``python -m scoperouter.cli``
SERVE_WITH_SETTLE_LOG = (
    "import logging, sys; "
    "logging.getLogger('scoperouter.runtime.pubsub').setLevel(logging.DEBUG); "
    "from scoperouter.cli import main; sys.exit(main())"
)


# ---------------------------------------------------------------------- infrastructure


def stop_group(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


def emulator_pushers() -> int | None:
    """How many streaming-pull pushers the emulator runs (``jstack``; None without it). The
    emulator (0.8.20) keeps one pushing for every stream whose subscriber was SIGKILLed:
    each takes up to 100 messages per pull and holds them for the stream's 10-s ack
    deadline, so after k kills a message comes back to a live replica only 1 time in
    (k + replicas) / replicas (docs/deploy-replicas.md)."""
    if not EMULATOR_PID or shutil.which("jstack") is None:
        return None
    out = subprocess.run(
        ["jstack", str(EMULATOR_PID[0])], capture_output=True, text=True, timeout=60
    ).stdout
    return out.count("FakePubsubServer$StreamingPullPusher.run")


def left_in_subscription(sub: str, seconds: float = 40.0) -> set[bytes]:
    """Messages (their data) the subscription still holds unacked once every replica stopped (pulled
    for ``seconds``, past the 10-s ack deadline of whatever a killed replica held; never
    acked): an unrouted event found here was never acked, so not lost by the router."""
    from google.cloud import pubsub_v1

    sc = pubsub_v1.SubscriberClient()
    found: set[bytes] = set()
    end = time.monotonic() + seconds
    try:
        while time.monotonic() < end:
            resp = sc.pull(request={"subscription": sub, "max_messages": 1000}, timeout=5.0)
            found.update(m.message.data for m in resp.received_messages)
            if not resp.received_messages:
                time.sleep(1.0)
    except Exception as exc:  # the figure is diagnostic: say why it is missing
        print(f"left_in_subscription: {type(exc).__name__}: {exc}", file=sys.stderr)
    finally:
        sc.close()
    return found


def topic_and_subscription(name: str) -> tuple[Any, str, str]:
    from google.cloud import pubsub_v1

    topic = f"projects/{PROJECT}/topics/{name}"
    sub = f"projects/{PROJECT}/subscriptions/{name}"
    pub = pubsub_v1.PublisherClient(batch_settings=pubsub_v1.types.BatchSettings(max_latency=0.005))
    pub.create_topic(name=topic)
    sc = pubsub_v1.SubscriberClient()
    sc.create_subscription(request={"name": sub, "topic": topic, "ack_deadline_seconds": 10})
    sc.close()
    return pub, topic, sub


class Target:
    """The HTTP target of every processor: records each delivery (trigger, time)."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.deliveries: list[tuple[float, dict[str, Any]]] = []
        app = web.Application()
        app.router.add_post("/process", self.process)
        self.runner = web.AppRunner(app, access_log=None)
        self.port = free_port()

    async def start(self) -> None:
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def process(self, request: web.Request) -> web.Response:
        body = await request.json()
        trig = json.loads(base64.b64decode(body["message"]["data"]))
        if self.delay:
            await asyncio.sleep(self.delay)  # a kill now re-sends the trigger after rescue
        self.deliveries.append((time.time(), trig))
        return web.Response(status=204)


@dataclass
class Replica:
    """One ``serve`` subprocess (restarted under the same slot after a kill)."""

    slot: int
    cfg: Path
    dsn: str
    sub: str | None  # None: events are pushed over HTTP (--source push)
    tmp: Path
    lease: str
    proc: subprocess.Popen[bytes] | None = None
    port: int = 0
    starts: int = 0

    def start(self) -> None:
        self.starts += 1
        self.port = free_port()
        state_dir = self.tmp / f"r{self.slot}"
        log = (self.tmp / f"r{self.slot}.log").open("ab")
        env = dict(os.environ, PYTHONPATH=str(REPO / "src"), PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            [
                sys.executable, "-c", SERVE_WITH_SETTLE_LOG, "serve", "--config", str(self.cfg),
                "--state", self.dsn, "--state-dir", str(state_dir), "--port", str(self.port),
                "--as-of", GAME_DAY.isoformat(), "--no-log", "--log-level", "WARNING",
                "--lease", self.lease,
                "--replica-id", f"r{self.slot}-{self.starts}", "--loop", "asyncio",
                # several replicas on one machine: each left to the scheduler, as when the
                # saved runs were measured (``auto`` could put them all on one CPU)
                "--cpus", "all",
            ] + (["--subscription", self.sub] if self.sub else []),
            stdout=log, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
        STARTED.append(self.proc)
        log.close()

    async def ready(self, s: aiohttp.ClientSession, timeout: float = 120) -> float:
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            assert self.proc is not None
            if self.proc.poll() is not None:
                tail = (self.tmp / f"r{self.slot}.log").read_text(errors="replace")[-3000:]
                raise SystemExit(f"replica {self.slot} died:\n{tail}")
            with contextlib.suppress(aiohttp.ClientError):
                async with s.get(f"http://127.0.0.1:{self.port}/readyz") as r:
                    if r.status == 200:
                        return time.monotonic() - t0
            await asyncio.sleep(0.05)
        raise SystemExit(f"replica {self.slot} not ready in {timeout}s")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


class Overdue:
    """Samples, every 50 ms, how long the most overdue open window is past its deadline."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.samples: list[float] = []
        self.seen: list[tuple[float, int]] = []  # (time, events admitted so far)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True) as c:
            while not self._stop.is_set():
                row = c.execute(
                    "SELECT (SELECT min(deadline) FROM sr_windows), (SELECT count(*) FROM sr_seen)"
                ).fetchone()
                now = time.time()
                assert row is not None
                self.samples.append(0.0 if row[0] is None else max(0.0, now - float(row[0])))
                self.seen.append((now, int(row[1])))
                self._stop.wait(0.05)

    def stop(self) -> dict[str, float]:
        self._stop.set()
        self._thread.join(5)
        s = sorted(self.samples) or [0.0]
        # an ingest stall: the longest time the admitted count stood still with events left
        stall, since, last = 0.0, None, -1
        final = self.seen[-1][1] if self.seen else 0
        for at, n in self.seen:
            if n != last or n >= final:
                since, last = at, n
            elif since is not None:
                stall = max(stall, at - since)
        return {
            "longest_ingest_stall_s": round(stall, 2),
            "max_overdue_s": round(s[-1], 3),
            "p99_overdue_s": round(s[min(len(s) - 1, int(len(s) * 0.99))], 3),
            "samples": len(s),
            "samples_over_1s": sum(x > 1.0 for x in s),
        }


def store_counts(dsn: str) -> dict[str, int]:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as c:
        seen = c.execute("SELECT count(*) FROM sr_seen").fetchone()
        windows = c.execute("SELECT count(*) FROM sr_windows").fetchone()
        unfinished = c.execute(
            "SELECT count(*) FROM sr_outbox WHERE status IN ('pending', 'leased')"
        ).fetchone()
        rescues = c.execute("SELECT coalesce(sum(rescues), 0) FROM sr_outbox").fetchone()
        letters = c.execute("SELECT count(*) FROM sr_dead_letters").fetchone()
        assert seen and windows and unfinished and rescues and letters
        return {
            "seen": int(seen[0]),
            "dead_letters": int(letters[0]),
            "open_windows": int(windows[0]),
            "unfinished_triggers": int(unfinished[0]),
            "rescues": int(rescues[0]),
        }


def lease_holder(dsn: str) -> str | None:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as c:
        row = c.execute(
            "SELECT lease_owner FROM sr_outbox WHERE status = 'leased' ORDER BY random() LIMIT 1"
        ).fetchone()
        return None if row is None else str(row[0])


async def drain(dsn: str, want_seen: int, target: Target, timeout: float) -> bool:
    """Until every event is routed, no window is open and no trigger is unfinished."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        c = await asyncio.to_thread(store_counts, dsn)
        if c["seen"] >= want_seen and c["open_windows"] == 0 and c["unfinished_triggers"] == 0:
            await asyncio.sleep(0.5)  # the last responses reach the target
            return True
        await asyncio.sleep(0.25)
    return False


# ---------------------------------------------------------------------- the checks
@dataclass
class Verdict:
    requirements: int = 0
    lost: list[str] = field(default_factory=list)
    split: list[str] = field(default_factory=list)
    missing_contributions: list[str] = field(default_factory=list)
    deliveries: int = 0
    triggers: int = 0
    duplicate_deliveries: int = 0
    unrouted: list[str] = field(default_factory=list)  # event ids the store never saw

    def ok(self) -> bool:
        return not (self.lost or self.split or self.missing_contributions or self.unrouted)

    def to_json(self) -> dict[str, Any]:
        return {
            "requirements": self.requirements,
            "lost": len(self.lost),
            "split_contributions": len(self.split),
            "contributions_in_no_trigger": len(self.missing_contributions),
            "deliveries": self.deliveries,
            "distinct_triggers": self.triggers,
            "duplicate_deliveries": self.duplicate_deliveries,
            "unrouted_events": len(self.unrouted),
            "examples": (self.unrouted + self.lost + self.split + self.missing_contributions)[:5],
        }


def verify(cfg: Path, events: list[dict[str, Any]], delivered: list[dict[str, Any]]) -> Verdict:
    """Plan the stream here (same registry and as-of date) and hold the deliveries to it."""
    from scoperouter.messages.normalize import normalize_event
    from scoperouter.processor_registry.loader import load_config
    from scoperouter.router.planner import planner_for
    from scoperouter.state.merge import contributions

    loaded = load_config(cfg)
    reg = loaded.registry
    planner = planner_for(reg)
    v = Verdict()
    by_id: dict[str, dict[str, Any]] = {}
    counts: Counter[str] = Counter()
    for t in delivered:
        by_id[t["trigger_id"]] = t
        counts[t["trigger_id"]] += 1
    v.deliveries = len(delivered)
    v.triggers = len(by_id)
    v.duplicate_deliveries = len(delivered) - len(by_id)
    # (processor, date, event) -> trigger ids holding it
    holders: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    # a hot window's trigger lists its first caused_by ids and counts the rest
    # (caused_by_more): (processor, date) -> those triggers and how many ids they left out
    capped: dict[tuple[str, str], set[str]] = defaultdict(set)
    unlisted: Counter[tuple[str, str]] = Counter()
    for tid, t in by_id.items():
        day = t.get(reg.date_field) or t.get("start_date")
        for eid in t["caused_by"]:
            holders[(t["processor"], str(day), eid)].add(tid)
        if t.get("caused_by_more"):
            capped[(t["processor"], str(day))].add(tid)
            unlisted[(t["processor"], str(day))] += t["caused_by_more"]
    for raw in events:
        ev = normalize_event(raw, reg)
        for c in contributions(reg, ev, planner.plan(loaded.relations, ev, GAME_DAY)):
            key = (c.processor, c.day.isoformat(), ev.event_id)
            tids = holders.get(key, set())
            if len(tids) > 1:
                v.split.append(f"split {key} -> {sorted(tids)}")
            if not tids and unlisted[key[:2]] > 0:
                # counted, not listed: held by one of the capped triggers (each counted
                # id is used once, so an event in two of them shows as a count left over)
                unlisted[key[:2]] -= 1
                tids = capped[key[:2]]
            elif not tids:
                v.missing_contributions.append(f"no trigger holds {key}")
            needs = ["*"] if c.entity_ids is None else list(c.entity_ids)
            for ent in needs:
                v.requirements += 1
                covered = any(
                    by_id[tid]["scope"] == "date"
                    or (ent != "*" and ent in (by_id[tid].get("entity_ids") or ()))
                    for tid in tids
                )
                if not covered:
                    v.lost.append(f"lost {(c.processor, c.day.isoformat(), ent)}")
    for pd, left in unlisted.items():
        if left > 0:  # triggers counted more ids than the stream has unlisted contributions
            v.split.append(f"split {pd}: {left} counted ids left over in capped triggers")
    return v


def event_ids(cfg: Path, events: list[dict[str, Any]]) -> list[str]:
    """Each event's id as the router normalises it (any input shape)."""
    from scoperouter.messages.normalize import normalize_event
    from scoperouter.processor_registry.loader import load_config

    reg = load_config(cfg, with_relations=False).registry
    return [normalize_event(e, reg).event_id for e in events]


def unrouted(dsn: str, cfg: Path, events: list[dict[str, Any]]) -> list[str]:
    """Event ids of the stream that the store never admitted."""
    import psycopg

    ids = event_ids(cfg, events)
    with psycopg.connect(dsn, autocommit=True) as c:
        seen = {r[0] for r in c.execute("SELECT event_id FROM sr_seen").fetchall()}
    return [f"never routed: {i}" for i in ids if i not in seen]


def settles(logs: Path) -> dict[str, list[str]]:
    """Pub/Sub message id -> the settles the replicas logged in ``logs/r*.log``, in order
    (``ack:accepted``, ``ack:duplicate``, ``nack:unavailable``...; see SERVE_WITH_SETTLE_LOG)."""
    out: dict[str, list[str]] = defaultdict(list)
    for log in sorted(logs.glob("r*.log")):
        for line in log.read_text(errors="replace").splitlines():
            if not line.startswith("{"):
                continue
            try:
                e = json.loads(line)
            except ValueError:  # a line cut short by a SIGKILL
                continue
            if e.get("logger") == "scoperouter.runtime.pubsub" and e.get("message") in (
                "ack",
                "nack",
            ):
                out[str(e["message_id"])].append(f"{e['message']}:{e['outcome']}")
    return out


def settle_evidence(
    ids: list[str], message_ids: list[str], seen: set[str], settled: dict[str, list[str]]
) -> dict[str, Any]:
    """Hold the store to the replicas' settle lines. An ack logged for a message whose event
    the store never saw is a message acked before (or without) its commit: a loss. An
    unrouted event with no ack line was never acked: Pub/Sub still owes its delivery."""
    acked_unseen, nacked_only, never_settled = [], [], []
    for eid, mid in zip(ids, message_ids, strict=True):
        if eid in seen:
            continue
        marks = settled.get(mid, [])
        if any(m.startswith("ack:") for m in marks):
            acked_unseen.append(f"{eid} (message {mid}: {', '.join(marks)})")
        elif marks:
            nacked_only.append(eid)
        else:
            never_settled.append(eid)
    every = [m for ms in settled.values() for m in ms]
    return {
        "settle_lines": len(every),
        "acks": sum(m.startswith("ack:") for m in every),
        "nacks": sum(m.startswith("nack:") for m in every),
        "messages_acked": sum(any(m.startswith("ack:") for m in ms) for ms in settled.values()),
        "messages_acked_more_than_once": sum(
            sum(m.startswith("ack:") for m in ms) > 1 for ms in settled.values()
        ),
        "routed_without_ack_line": sum(  # committed, killed before its ack: redelivered
            eid in seen and not any(m.startswith("ack:") for m in settled.get(mid, []))
            for eid, mid in zip(ids, message_ids, strict=True)
        ),
        "unrouted_acked": len(acked_unseen),  # a loss: must be 0
        "unrouted_nacked_only": len(nacked_only),
        "unrouted_never_settled": len(never_settled),
        "unrouted_acked_examples": acked_unseen[:5],
    }


def store_seen(dsn: str) -> set[str]:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as c:
        return {r[0] for r in c.execute("SELECT event_id FROM sr_seen").fetchall()}


# ---------------------------------------------------------------------- the runs
async def publish(
    pub: Any, topic: str, events: list[bytes], rate: float
) -> tuple[float, list[str]]:
    """Publish at ``rate``; the seconds it took and each event's Pub/Sub message id."""
    t0 = time.monotonic()
    futs = []
    for i, data in enumerate(events):
        delay = t0 + i / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        futs.append(pub.publish(topic, data))
    ids = [str(await asyncio.to_thread(f.result)) for f in futs]
    return time.monotonic() - t0, ids


async def push(
    s: aiohttp.ClientSession, reps: list[Replica], events: list[bytes], rate: float
) -> tuple[float, list[str]]:
    """Like a Pub/Sub push subscription: POST each event to a random replica, again (to
    another random one) after a connection error or a non-2xx answer, until one acks it."""
    rng = random.Random(7)
    sem = asyncio.Semaphore(64)

    async def deliver(data: bytes) -> None:
        async with sem:
            while True:
                r = rng.choice(reps)
                try:
                    async with s.post(f"http://127.0.0.1:{r.port}/events", data=data) as resp:
                        if resp.status == 200:
                            return
                except (TimeoutError, aiohttp.ClientError):
                    pass
                await asyncio.sleep(rng.uniform(0.1, 0.5))

    t0 = time.monotonic()
    tasks = []
    for i, data in enumerate(events):
        delay = t0 + i / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(deliver(data)))
    await asyncio.gather(*tasks)
    return time.monotonic() - t0, []


async def run_kills(args: argparse.Namespace, tmp: Path, dsn: str) -> dict[str, Any]:
    target = Target(args.target_delay)
    await target.start()
    cfg = write_registry(
        tmp / "cfg-kills",
        quiet=args.quiet,
        max_wait=args.max_wait,
        default_target={
            "http": {"url": f"http://127.0.0.1:{target.port}/process"},
            "concurrency": 16,
        },
    )
    pub: Any = None
    sub: str | None = None
    topic = ""
    if args.source == "pubsub":
        pub, topic, sub = topic_and_subscription("kills")
    events = game_day_stream(args.events, seed=args.seed)
    reps = [Replica(i, cfg, dsn, sub, tmp, args.lease) for i in range(args.replicas)]
    rng = random.Random(args.seed)
    restarts: list[float] = []
    async with aiohttp.ClientSession() as s:
        for r in reps:
            r.start()
        for r in reps:
            await r.ready(s)
        overdue = Overdue(dsn)
        overdue.start()
        datas = [json.dumps(e).encode() for e in events]
        pub_task = asyncio.create_task(
            publish(pub, topic, datas, args.rate) if pub else push(s, reps, datas, args.rate)
        )
        kills = mid_delivery = 0
        while kills < args.kills:
            await asyncio.sleep(rng.uniform(0.2, 1.0))
            victim = rng.choice(reps)
            if kills % 2 == 0:  # every other kill: a replica holding a trigger lease, if any
                owner = await asyncio.to_thread(lease_holder, dsn)
                for r in reps:
                    if owner == f"r{r.slot}-{r.starts}":
                        victim, mid_delivery = r, mid_delivery + 1
            victim.kill()
            kills += 1
            victim.start()
            restarts.append(await victim.ready(s))
        published_s, message_ids = await pub_task
        pushers_after_kills = await asyncio.to_thread(emulator_pushers) if pub else None
        t_drain = time.monotonic()
        drained = await drain(dsn, len(events), target, args.drain_timeout)
        drain_s = time.monotonic() - t_drain
        pushers_after_drain = await asyncio.to_thread(emulator_pushers) if pub else None
        lateness = overdue.stop()
        for r in reps:
            r.stop()
    if pub is not None:
        pub.stop()
    await target.runner.cleanup()
    counts = store_counts(dsn)
    verdict = verify(cfg, events, [t for _at, t in target.deliveries])
    verdict.unrouted = unrouted(dsn, cfg, events)
    held: set[str] = set()
    if verdict.unrouted and sub is not None:
        data = await asyncio.to_thread(left_in_subscription, sub)
        held = {eid for eid, d in zip(event_ids(cfg, events), datas, strict=True) if d in data}
    never = [u for u in verdict.unrouted if u.removeprefix("never routed: ") not in held]
    evidence: dict[str, Any] = {}
    if sub is not None:
        evidence = settle_evidence(
            event_ids(cfg, events), message_ids, await asyncio.to_thread(store_seen, dsn),
            settles(tmp),
        )  # fmt: skip
    return {
        "source": args.source,
        "events": len(events),
        "rate": args.rate,
        "publish_s": round(published_s, 1),
        "replicas": args.replicas,
        "kills": kills,
        "kills_holding_a_lease": mid_delivery,
        "restart_to_ready_s_median": round(sorted(restarts)[len(restarts) // 2], 2)
        if restarts
        else None,
        "drained": drained,
        "drain_s": round(drain_s, 1),
        # streaming-pull pushers the emulator runs (3 live replicas + one per killed stream)
        "emulator_pushers_after_kills": pushers_after_kills,
        "emulator_pushers_after_drain": pushers_after_drain,
        # unrouted events the emulator still held unacked after the run (never acked)
        "unrouted_still_in_subscription": len(verdict.unrouted) - len(never),
        "unrouted_not_in_subscription": len(never),
        **evidence,
        "replica_logs": str(tmp),
        "store": counts,
        "quiet": args.quiet,
        "max_wait": args.max_wait,
        "lease": args.lease,
        **verdict.to_json(),
        **lateness,
        "ok": verdict.ok() and drained and not evidence.get("unrouted_acked"),
    }


def hot_events(n: int, tag: str, critical: bool) -> list[dict[str, Any]]:
    """``n`` events onto ONE processor and date (player_game_summary, GAME_DAY)."""
    players = [p for t in ("BOS", "LAL", "MIA", "DEN") for p in players_of(t)]
    out = []
    for i in range(n):
        ev: dict[str, Any] = {
            "event_id": f"{tag}-{i:06d}",
            "source": "nba_raw.nbac_injury_report",  # injury_reason: player_game_summary alone
            "game_date": GAME_DAY.isoformat(),
            "affected_entities": {"players": [players[i % len(players)]]},
            "changed_fields": ["injury_reason"],
        }
        if critical:
            ev["priority"] = "critical"
        out.append(ev)
    return out


async def run_hot(args: argparse.Namespace, tmp: Path, dsn: str) -> dict[str, Any]:
    target = Target(0.0)
    await target.start()
    cfg = write_registry(
        tmp / "cfg-hot",
        quiet="5s",
        max_wait="30s",
        default_target={
            "http": {"url": f"http://127.0.0.1:{target.port}/process"},
            "concurrency": 32,
        },
    )
    out: dict[str, Any] = {}
    reps: list[Replica] = []
    async with aiohttp.ClientSession() as s:
        for phase, critical in (("normal", False), ("critical", True)):
            pub, topic, sub = topic_and_subscription(f"hot-{phase}")
            reps = [
                Replica(i, cfg, dsn, sub, tmp / phase, args.lease) for i in range(args.replicas)
            ]
            (tmp / phase).mkdir(exist_ok=True)
            for r in reps:
                r.start()
            for r in reps:
                await r.ready(s)
            n = int(args.hot * args.hot_rate)
            events = hot_events(n, f"hot-{phase}", critical)
            base = len(target.deliveries)
            seen_before = (await asyncio.to_thread(store_counts, dsn))["seen"]
            overdue = Overdue(dsn)
            overdue.start()
            t0 = time.time()
            published_s, _ids = await publish(
                pub, topic, [json.dumps(e).encode() for e in events], args.hot_rate
            )
            drained = await drain(dsn, seen_before + n, target, args.drain_timeout)
            lateness = overdue.stop()
            for r in reps:
                r.stop()
            pub.stop()
            got = target.deliveries[base:]
            times = sorted([t0] + [at for at, _t in got])
            gap = max((b - a for a, b in itertools.pairwise(times)), default=0.0)
            verdict = verify(cfg, events, [t for _at, t in got])
            verdict.unrouted = unrouted(dsn, cfg, events)
            out[phase] = {
                "events": n,
                "offered_rate": args.hot_rate,
                "publish_s": round(published_s, 1),
                "drained": drained,
                "ingest_to_done_s": round(times[-1] - t0, 1),
                "longest_gap_between_deliveries_s": round(gap, 2),
                **verdict.to_json(),
                **lateness,
                "ok": verdict.ok() and drained,
            }
    await target.runner.cleanup()
    return out


def reset_store(dsn: str) -> None:
    """An empty store: the replicas migrate it again at start. Every ``sr_`` table goes, the
    ones later migrations add included (a fixed list left ``sr_backfill_claims`` behind
    while dropping ``sr_schema_version``: the next start re-ran its migration and failed)."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(dsn, autocommit=True) as c:
        names = c.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
            "AND tablename LIKE 'sr\\_%'"
        ).fetchall()
        if names:
            tables = sql.SQL(", ").join(sql.Identifier(n) for (n,) in names)
            c.execute(sql.SQL("DROP TABLE IF EXISTS {} CASCADE").format(tables))


async def amain(args: argparse.Namespace) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="scoperouter-replicas-"))
    needs_emulator = args.mode != "kills" or args.source == "pubsub"
    emulator = start_emulator(tmp, wait_s=180) if needs_emulator else None
    if emulator is not None:
        EMULATOR_PID.append(emulator.pid)  # the launcher script execs java
    if needs_emulator and not os.environ.get("PUBSUB_EMULATOR_HOST"):
        raise SystemExit("Pub/Sub emulator did not start")
    cluster = None
    dsn = args.dsn
    try:
        if dsn is None:
            import pg_cluster

            bindir = pg_cluster.find_bindir()
            if bindir is None:
                raise SystemExit("PostgreSQL binaries not found (apt-get install postgresql)")
            cluster = pg_cluster.PgCluster(bindir, durable=args.pg_durable).start()
            dsn = cluster.dsn
        out: dict[str, Any] = {}
        if args.mode in ("kills", "both"):
            reset_store(dsn)
            out["kills"] = await run_kills(args, tmp, dsn)
        if args.mode in ("hot", "both"):
            reset_store(dsn)
            out["hot"] = await run_hot(args, tmp, dsn)
        return out
    finally:
        for proc in STARTED:  # a run that failed half-way leaves no replica behind
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        if cluster is not None:
            cluster.stop()
        stop_group(emulator)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--mode", choices=("kills", "hot", "both"), default="both")
    p.add_argument("--replicas", type=int, default=3)
    p.add_argument(
        "--source",
        choices=("pubsub", "push"),
        default="pubsub",
        help="kills mode: one emulator subscription (streaming pull), or HTTP push with "
        "retries to a random replica (through the emulator a run after 30 kills drains only "
        "after ~10 min: see --drain-timeout)",
    )
    p.add_argument("--kills", type=int, default=30)
    p.add_argument("--events", type=int, default=2400)
    p.add_argument("--rate", type=float, default=40.0, help="events/s published (kills mode)")
    p.add_argument("--quiet", default="1s")
    p.add_argument("--max-wait", default="4s")
    p.add_argument("--lease", default="3s")
    p.add_argument("--target-delay", type=float, default=0.05)
    p.add_argument("--hot", type=float, default=30.0, help="seconds of the hot window")
    p.add_argument("--hot-rate", type=float, default=200.0)
    p.add_argument(
        "--drain-timeout",
        type=float,
        default=1800.0,
        help="seconds to wait for every event routed and every trigger delivered (the run ends "
        "as soon as it is); through the emulator a kills run has needed 376-882 s: each killed "
        "stream's pusher keeps taking messages "
        "(emulator_pushers_after_kills, bench/emulator_pushers.py)",
    )
    p.add_argument("--seed", type=int, default=13)
    p.add_argument("--dsn", help="an existing PostgreSQL (else a throwaway cluster)")
    p.add_argument("--pg-durable", action="store_true", help="throwaway cluster with fsync on")
    p.add_argument("--check", action="store_true", help="exit 1 when anything is lost or split")
    p.add_argument(
        "--check-timing", action="store_true", help="also exit 1 when a window was > 1 s late"
    )
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    out = asyncio.run(amain(args))
    print(json.dumps(out, indent=None if args.json else 2))
    runs = [out["kills"]] if "kills" in out else []
    runs += list(out.get("hot", {}).values())
    bad = args.check and not all(r["ok"] for r in runs)
    late = args.check_timing and any(r["max_overdue_s"] > 1.0 for r in runs)
    return 1 if bad or late else 0


if __name__ == "__main__":
    raise SystemExit(main())

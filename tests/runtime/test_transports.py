"""One suite, every transport: the same game-day stream through the daemon by direct
submission (in-memory), HTTP POST, Pub/Sub streaming pull and Pub/Sub push (the last two
against the real emulator). Triggers must equal the replay dry-run, exactly once each,
even when every message is published twice and deliveries are forcibly nacked."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from runtime_support import GAME_DAY, dry_run_keys, game_day_stream, key_of, load, write_registry

from scoperouter.processor_registry.loader import LoadedConfig
from scoperouter.runtime.daemon import Daemon, DaemonSettings
from scoperouter.runtime.intake import Settle
from scoperouter.runtime.pubsub import PubSubSource
from scoperouter.runtime.pubsub_scheduler import InlineScheduler
from scoperouter.runtime.router import Inbound, Outcome

PROJECT = "scoperouter-test"
STREAM = game_day_stream(500)


def names(prefix: str) -> tuple[str, str]:
    tag = uuid.uuid4().hex[:8]
    return (
        f"projects/{PROJECT}/topics/{prefix}-{tag}",
        f"projects/{PROJECT}/subscriptions/{prefix}-{tag}",
    )


def create_topic_and_sub(topic: str, sub: str, *, push_endpoint: str | None = None) -> None:
    from google.cloud import pubsub_v1

    pub = pubsub_v1.PublisherClient()
    pub.create_topic(name=topic)
    subscriber = pubsub_v1.SubscriberClient()
    req: dict[str, Any] = {"name": sub, "topic": topic, "ack_deadline_seconds": 10}
    if push_endpoint:
        req["push_config"] = {"push_endpoint": push_endpoint}
    subscriber.create_subscription(request=req)
    subscriber.close()


def publish_all(topic: str, payloads: list[bytes]) -> None:
    from google.cloud import pubsub_v1

    pub = pubsub_v1.PublisherClient()
    futs = [pub.publish(topic, p) for p in payloads]
    for f in futs:
        f.result(timeout=30)
    pub.stop()


Feeder = Callable[[Daemon, list[bytes]], Awaitable[None]]


async def feed_memory(d: Daemon, payloads: list[bytes]) -> None:
    async def one(p: bytes) -> None:
        while not (await d.router.submit(Inbound("test", data=p))).ack:
            await asyncio.sleep(0.01)

    await asyncio.gather(*(one(p) for p in payloads))


async def feed_http(d: Daemon, payloads: list[bytes]) -> None:
    async with aiohttp.ClientSession() as s:
        sem = asyncio.Semaphore(32)

        async def one(p: bytes) -> None:
            async with sem:
                while True:  # an at-least-once producer: retry until 2xx
                    async with s.post(f"http://127.0.0.1:{d.port}/events", data=p) as r:
                        if r.status == 200:
                            return
                        assert r.status == 503, await r.text()
                    await asyncio.sleep(0.01)

        await asyncio.gather(*(one(p) for p in payloads))


TRANSPORTS = [
    pytest.param("memory", id="memory"),
    pytest.param("http", id="http"),
    pytest.param("pull", id="pubsub-pull", marks=pytest.mark.emulator),
    pytest.param("push", id="pubsub-push", marks=pytest.mark.emulator),
]


@pytest.fixture
async def start_daemon(tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[Daemon]]]:
    daemons: list[Daemon] = []

    async def start(cfg: LoadedConfig, subscription: str | None = None) -> Daemon:
        d = Daemon(
            cfg.registry,
            cfg.relations,
            DaemonSettings(
                state_dir=tmp_path / "state",
                port=0,
                subscription=subscription,
                as_of=GAME_DAY,
                sync="normal",
            ),
        )
        await d.start()
        daemons.append(d)
        return d

    yield start
    for d in daemons:
        await d.stop()


def flaky(d: Daemon, every: int) -> list[int]:
    """Make every ``every``-th first delivery fail (nack / 503) so it is redelivered: at
    ``Router.submit`` (HTTP, push, memory) and at ``Router.enqueue`` (streaming pull)."""
    real, real_enqueue = d.router.submit, d.router.enqueue
    seen: dict[bytes, int] = {}
    refused = [0]

    def refuse(inbound: Inbound) -> Outcome | None:
        key = inbound.data or json.dumps(inbound.obj).encode()
        n = seen[key] = seen.get(key, 0) + 1
        if n == 1 and hash(key) % every == 0:
            refused[0] += 1
            return Outcome("unavailable", reason="injected")
        return None

    async def submit(inbound: Inbound) -> Outcome:
        return refuse(inbound) or await real(inbound)

    def enqueue(inbound: Inbound, settle: Settle) -> Outcome | None:
        return refuse(inbound) or real_enqueue(inbound, settle)

    d.router.submit = submit  # type: ignore[method-assign]
    d.router.enqueue = enqueue  # type: ignore[method-assign]
    return refused


async def run_transport(
    transport: str,
    cfg: LoadedConfig,
    start_daemon: Any,
    payloads: list[bytes],
    *,
    nack_every: int = 0,
) -> tuple[Daemon, list[Any], int]:
    sub = None
    topic = None
    if transport == "pull":
        topic, sub = names("events")
        create_topic_and_sub(topic, sub)
    d = await start_daemon(cfg, sub)
    refused = flaky(d, nack_every) if nack_every else [0]
    if transport == "memory":
        await feed_memory(d, payloads)
    elif transport == "http":
        await feed_http(d, payloads)
    elif transport == "pull":
        assert topic is not None
        await asyncio.to_thread(publish_all, topic, payloads)
    else:
        topic, psub = names("push")
        await asyncio.to_thread(
            create_topic_and_sub, topic, psub, push_endpoint=f"http://127.0.0.1:{d.port}/events"
        )
        await asyncio.to_thread(publish_all, topic, payloads)
    unique = len({p for p in payloads})
    m = d.metrics
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # every copy handled (accepted or recognised duplicate)
        handled = m.events_accepted._value.get() + m.events_duplicate._value.get()
        if handled >= len(payloads) and await d.router.idle(timeout=0.1):
            break
        await asyncio.sleep(0.05)
    assert d.metrics.events_accepted._value.get() == unique
    await asyncio.sleep(0.3)  # late redeliveries, if any, must change nothing
    assert await d.router.idle(timeout=5)
    out = d.settings.state_dir / "outbox.jsonl"
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    return d, lines, refused[0]


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_stream_through_transport(
    transport: str, zero_cfg: LoadedConfig, start_daemon: Any, request: pytest.FixtureRequest
) -> None:
    """The 500-event game day through this transport gives exactly the dry-run's triggers."""
    if transport in ("pull", "push"):
        request.getfixturevalue("pubsub_emulator")
    payloads = [json.dumps(e).encode() for e in STREAM]
    _d, lines, _ = await run_transport(transport, zero_cfg, start_daemon, payloads)
    assert sorted(key_of(x) for x in lines) == dry_run_keys(zero_cfg, STREAM)


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_duplicates_and_redeliveries_dispatch_once(
    transport: str, zero_cfg: LoadedConfig, start_daemon: Any, request: pytest.FixtureRequest
) -> None:
    """Every message sent twice, and some first deliveries refused (nack/503): each
    trigger is still dispatched exactly once."""
    if transport in ("pull", "push"):
        request.getfixturevalue("pubsub_emulator")
    events = STREAM[:200]
    payloads = [json.dumps(e).encode() for e in events for _ in range(2)]
    d, lines, refused = await run_transport(
        transport, zero_cfg, start_daemon, payloads, nack_every=5
    )
    assert refused > 0
    keys = [key_of(x) for x in lines]
    assert sorted(keys) == dry_run_keys(zero_cfg, events)
    assert len({x["trigger_id"] for x in lines}) == len(lines)
    assert d.metrics.events_duplicate._value.get() >= len(events)
    assert d.metrics.events_accepted._value.get() == len(events)


@pytest.mark.emulator
async def test_pulled_messages_reach_the_router_from_the_client_s_own_thread(
    pubsub_emulator: str,
    zero_cfg: LoadedConfig,
    start_daemon: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Streaming pull calls the source's callback on the client's consumer thread, never
    through a thread pool (InlineScheduler), and every event is still routed once."""
    threads: set[str] = set()
    real = PubSubSource._callback

    def callback(self: PubSubSource, message: Any) -> None:
        threads.add(threading.current_thread().name)
        real(self, message)

    monkeypatch.setattr(PubSubSource, "_callback", callback)
    events = STREAM[:100]
    payloads = [json.dumps(e).encode() for e in events]
    _d, lines, _ = await run_transport("pull", zero_cfg, start_daemon, payloads)
    assert sorted(key_of(x) for x in lines) == dry_run_keys(zero_cfg, events)
    assert threads == {"Thread-ConsumeBidirectionalStream"}
    assert not [t.name for t in threading.enumerate() if "ThreadScheduler" in t.name]


def test_inline_scheduler_calls_back_at_once_and_holds_nothing() -> None:
    """InlineScheduler runs the callback on the scheduling thread before returning, hands
    acks over on a queue, and has no messages to give back at shutdown."""
    sched = InlineScheduler()
    got: list[tuple[Any, ...]] = []
    sched.schedule(lambda *a, **k: got.append((threading.current_thread().name, a, k)), 1, x=2)
    assert got == [(threading.current_thread().name, (1,), {"x": 2})]
    sched.queue.put("ack")
    assert sched.queue.get_nowait() == "ack"
    assert sched.shutdown(await_msg_callbacks=True) == []


@pytest.mark.emulator
async def test_pubsub_in_pubsub_out(
    pubsub_emulator: str, tmp_path: Path, start_daemon: Any
) -> None:
    """Events from a subscription arrive as triggers on per-processor topics, with the
    processor/game_date/scope attributes and the per-processor-date ordering key."""
    from google.cloud import pubsub_v1

    cfg0 = load(write_registry(tmp_path / "zero"))
    tag = uuid.uuid4().hex[:6]
    procs = sorted(cfg0.registry.processors)
    targets = {p: {"pubsub": {"topic": f"trig-{p}-{tag}", "project": PROJECT}} for p in procs}
    cfg = load(write_registry(tmp_path / "ps", targets=targets))
    out_subs = {}
    for p in procs:
        t = f"projects/{PROJECT}/topics/trig-{p}-{tag}"
        s = f"projects/{PROJECT}/subscriptions/trig-{p}-{tag}"
        await asyncio.to_thread(create_topic_and_sub, t, s)
        out_subs[p] = s
    topic, sub = names("in")
    await asyncio.to_thread(create_topic_and_sub, topic, sub)
    d = await start_daemon(cfg, sub)
    await asyncio.to_thread(publish_all, topic, [json.dumps(e).encode() for e in STREAM])
    want = dry_run_keys(cfg, STREAM)

    def pull_all() -> list[tuple[str, Any]]:
        import threading

        client = pubsub_v1.SubscriberClient()
        got: list[tuple[str, Any]] = []
        lock = threading.Lock()
        enough = threading.Event()

        def collector(p: str) -> Callable[[Any], None]:
            def cb(m: Any) -> None:
                m.ack()
                with lock:
                    got.append((p, m))
                    if len(got) >= len(want):
                        enough.set()

            return cb

        futures = [client.subscribe(s, callback=collector(p)) for p, s in out_subs.items()]
        enough.wait(60)
        time.sleep(0.3)  # anything extra would show up as a mismatch
        for f in futures:
            f.cancel()
        for f in futures:
            with contextlib.suppress(Exception):
                f.result(timeout=10)
        client.close()
        with lock:
            return list(got)

    got = await asyncio.to_thread(pull_all)
    assert await d.router.idle(timeout=5)
    keys = sorted(key_of(json.loads(m.data)) for _p, m in got)
    assert keys == want
    for p, m in got:
        body = json.loads(m.data)
        assert body["processor"] == p
        assert dict(m.attributes) == {
            "processor": p,
            "game_date": body["game_date"],
            "scope": body["scope"],
            "trigger_id": body["trigger_id"],
        }
        assert m.ordering_key == f"{p}:{body['game_date']}"


@pytest.mark.emulator
async def test_invalid_message_goes_to_dead_letter_topic(
    pubsub_emulator: str, tmp_path: Path
) -> None:
    """An invalid pulled message is acked, kept in the state store and published to the dead-letter topic."""
    from google.cloud import pubsub_v1

    cfg = load(write_registry(tmp_path / "dl"))
    topic, sub = names("dl-in")
    dl_topic, dl_sub = names("dl-out")
    await asyncio.to_thread(create_topic_and_sub, topic, sub)
    await asyncio.to_thread(create_topic_and_sub, dl_topic, dl_sub)
    d = Daemon(
        cfg.registry,
        cfg.relations,
        DaemonSettings(
            state_dir=tmp_path / "state",
            port=0,
            subscription=sub,
            as_of=GAME_DAY,
            sync="normal",
            dead_letter_topic=dl_topic,
        ),
    )
    await d.start()
    try:
        await asyncio.to_thread(
            publish_all, topic, [b"{broken", json.dumps({"game_date": "2025-11-19"}).encode()]
        )

        def pull() -> list[Any]:
            client = pubsub_v1.SubscriberClient()
            got: list[Any] = []
            deadline = time.monotonic() + 30
            while len(got) < 2 and time.monotonic() < deadline:
                resp = client.pull(request={"subscription": dl_sub, "max_messages": 10}, timeout=5)
                if resp.received_messages:
                    client.acknowledge(
                        request={
                            "subscription": dl_sub,
                            "ack_ids": [m.ack_id for m in resp.received_messages],
                        }
                    )
                got += [json.loads(m.message.data) for m in resp.received_messages]
            client.close()
            return got

        got = await asyncio.to_thread(pull)
    finally:
        await d.stop()
    assert sorted(g["reason"] for g in got) == ["missing_source", "not_json"]
    assert {g["kind"] for g in got} == {"event"}
    from scoperouter.state import open_state_store

    st = open_state_store(tmp_path / "state" / "state.db")  # serve's default store
    try:
        assert sorted(x.reason for x in st.dead_letters()) == ["missing_source", "not_json"]
    finally:
        st.close()

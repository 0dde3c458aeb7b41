"""Robustness of the daemon's I/O edges (audit findings 2, 3, 6, 7, 8, 9): malformed bodies
are counted 400s, push envelopes without usable data are dead-lettered, sinks do not share
pools, the outbox is fsynced, OIDC is cheap on junk, a missing subscription is loud."""

from __future__ import annotations

import asyncio
import base64
import gzip
import importlib
import json
import os
import subprocess
import sys
import time
import uuid
import zlib
from collections.abc import AsyncIterator, Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from runtime_support import MemorySink, RouterFactory, write_registry

from scoperouter.errors import ConfigError, EventError
from scoperouter.messages.models import Trigger
from scoperouter.messages.normalize import parse_event_bytes
from scoperouter.processor_registry.loader import LoadedConfig
from scoperouter.processor_registry.models import TargetSpec
from scoperouter.runtime.http import IngressApp
from scoperouter.runtime.pubsub import PubSubSource
from scoperouter.runtime.pubsub_health import check_subscription
from scoperouter.runtime.sinks import SinkFactory

EVENT = {
    "event_id": "e-robust",
    "source": "nba_raw.nbac_injury_report",
    "game_date": "2025-11-19",
    "affected_entities": {"players": ["lalplayer01"]},
    "changed_fields": ["injury_status"],
}
EVENT_BYTES = json.dumps(EVENT).encode()
HUGE_INT = EVENT_BYTES.replace(b'"game_date"', b'"n":' + b"9" * 5000 + b',"game_date"')

Client = tuple[TestClient[Any, Any], Any]


@pytest.fixture
async def ingress(
    zero_cfg: LoadedConfig, make_router: RouterFactory
) -> AsyncIterator[Callable[..., Any]]:
    """Starts a router + ingress app on demand; closes the clients at teardown."""
    clients: list[TestClient[Any, Any]] = []

    async def make(**kwargs: Any) -> Client:
        r = make_router(zero_cfg, MemorySink())
        await r.start()
        c: TestClient[Any, Any] = TestClient(TestServer(IngressApp(r, **kwargs).app))
        await c.start_server()
        clients.append(c)
        return c, r

    yield make
    for c in clients:
        await c.close()


def push(data: Any = None, **message: Any) -> bytes:
    msg: dict[str, Any] = {"messageId": "m-push", **message}
    if data is not None:
        msg["data"] = data
    return json.dumps({"message": msg, "subscription": "projects/p/subscriptions/s"}).encode()


def rejected_total(router: Any) -> float:
    return float(
        sum(
            s.value
            for m in router.metrics.events_rejected.collect()
            for s in m.samples
            if s.name.endswith("_total")
        )
    )


# ---------------------------------------------------------------- finding 6: no 500s
@pytest.mark.parametrize(
    ("body", "headers", "status", "reason"),
    [
        (HUGE_INT, {}, 400, "not_json"),
        (b"[" + b"1" * 4301 + b"]", {}, 400, "not_json"),
        (EVENT_BYTES, {"Content-Encoding": "gzip"}, 400, "bad_request"),
        (EVENT_BYTES, {"Content-Encoding": "deflate"}, 400, "bad_request"),
        (EVENT_BYTES, {"Content-Encoding": "br"}, 400, "bad_request"),
        (gzip.compress(EVENT_BYTES)[:-9], {"Content-Encoding": "gzip"}, 400, "bad_request"),
        (
            gzip.compress(b" " * 50_000 + EVENT_BYTES),
            {"Content-Encoding": "gzip"},
            413,
            "too_large",
        ),
        (push(base64.b64encode(HUGE_INT).decode()), {}, 200, "not_json"),
        # two gzip members: one body, decided as the same bytes sent plain (two documents)
        (
            gzip.compress(EVENT_BYTES) + gzip.compress(b"\n" + EVENT_BYTES),
            {"Content-Encoding": "gzip"},
            400,
            "not_json",
        ),
        (
            gzip.compress(EVENT_BYTES) + b"trailing garbage",
            {"Content-Encoding": "gzip"},
            400,
            "bad_request",
        ),
        (
            gzip.compress(EVENT_BYTES) + b"\x1f\x8b\x08",
            {"Content-Encoding": "gzip"},
            400,
            "bad_request",
        ),
        (
            gzip.compress(b" " * 6_000) + gzip.compress(b" " * 6_000 + EVENT_BYTES),
            {"Content-Encoding": "gzip"},
            413,
            "too_large",
        ),
        (
            zlib.compress(EVENT_BYTES) + b"trailing garbage",
            {"Content-Encoding": "deflate"},
            400,
            "bad_request",
        ),
    ],
    ids=[
        "huge-int",
        "huge-int-array",
        "gzip-plain",
        "deflate-plain",
        "br",
        "gzip-truncated",
        "gzip-bomb",
        "push-huge-int",
        "gzip-two-members-two-documents",
        "gzip-trailing-garbage",
        "gzip-truncated-second-member",
        "gzip-members-bomb",
        "deflate-trailing-garbage",
    ],
)
async def test_malformed_bodies_are_counted_4xx(
    ingress: Callable[..., Any], body: bytes, headers: dict[str, str], status: int, reason: str
) -> None:
    """Huge integers and bodies not matching their Content-Encoding get a counted 4xx (or a dead-letter), never a 5xx."""
    c, r = await ingress(max_body_bytes=10_000)
    resp = await c.post("/events", data=body, headers=headers)
    answer = await resp.json()
    assert resp.status == status, answer
    assert answer["error"] == reason
    assert rejected_total(r) == 1
    assert (await c.post("/events", data=EVENT_BYTES)).status == 200


@pytest.mark.parametrize(
    ("encode", "encoding"),
    [
        (gzip.compress, "gzip"),
        (zlib.compress, "deflate"),
        (lambda b: zlib.compress(b)[2:-4], "deflate"),  # raw deflate
        (lambda b: gzip.compress(b[:20]) + gzip.compress(b[20:]), "gzip"),  # RFC 1952 members
        (lambda b: gzip.compress(b"") + gzip.compress(b), "gzip"),  # an empty member first
        (lambda b: gzip.compress(b"") * 20_000 + gzip.compress(b), "gzip"),  # fed in chunks
        (lambda b: b, "identity"),
    ],
    ids=[
        "gzip",
        "deflate-zlib",
        "deflate-raw",
        "gzip-two-members",
        "gzip-empty-member",
        "gzip-many-members",
        "identity",
    ],
)
async def test_encoded_bodies_are_accepted(
    ingress: Callable[..., Any], encode: Callable[[bytes], bytes], encoding: str
) -> None:
    """A body correctly compressed with gzip or deflate (or identity) is decoded and accepted."""
    c, _ = await ingress()
    resp = await c.post("/events", data=encode(EVENT_BYTES), headers={"Content-Encoding": encoding})
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["status"] == "accepted"


def _layers(body: bytes, n: int, compress: Callable[[bytes], bytes] = gzip.compress) -> bytes:
    for _ in range(n):
        body = compress(body)
    return body


@pytest.mark.parametrize(
    ("body", "encoding"),
    [
        (_layers(EVENT_BYTES, 2), "gzip, gzip"),
        (_layers(EVENT_BYTES, 2), "gzip,identity,gzip"),
        (zlib.compress(gzip.compress(EVENT_BYTES)), "gzip, deflate"),
        (_layers(EVENT_BYTES, 40), ",".join(["gzip"] * 40)),
        (EVENT_BYTES, ",".join(["gzip"] * 1600)),  # refused before any decompression
    ],
    ids=["gzip-gzip", "gzip-identity-gzip", "gzip-deflate", "40-layers", "1600-codings"],
)
async def test_stacked_content_encodings_are_refused(
    ingress: Callable[..., Any], body: bytes, encoding: str
) -> None:
    """More than one non-identity Content-Encoding is a counted 400 naming the limit, never decoded layer by layer."""
    c, r = await ingress()
    resp = await c.post("/events", data=body, headers={"Content-Encoding": encoding})
    answer = await resp.json()
    assert resp.status == 400, answer
    assert answer["error"] == "bad_request"
    assert "one Content-Encoding" in answer["detail"], answer
    assert rejected_total(r) == 1


def test_decode_body_undoes_at_most_one_coding() -> None:
    """decode_body refuses stacked codings without decompressing a layer (BadEncoding); identity adds none."""
    from scoperouter.runtime.http_request import BadEncoding, decode_body

    assert decode_body(gzip.compress(b"x"), "identity, gzip, identity", 10) == b"x"
    with pytest.raises(BadEncoding, match="one Content-Encoding"):
        decode_body(b"not gzip at all", "gzip, gzip", 10)


def test_parse_event_bytes_huge_integer_is_not_json(zero_cfg: LoadedConfig) -> None:
    """parse_event_bytes turns an over-long integer into EventError('not_json'), not a bare ValueError."""
    with pytest.raises(EventError) as info:
        parse_event_bytes(HUGE_INT, zero_cfg.registry)
    assert info.value.reason == "not_json"


# ---------------------------------------------------------------- finding 2: subscription
PROJECT = "scoperouter-robust"


def topic_and_sub() -> tuple[str, str]:
    tag = uuid.uuid4().hex[:8]
    return f"projects/{PROJECT}/topics/t-{tag}", f"projects/{PROJECT}/subscriptions/s-{tag}"


def create_sub(topic: str, sub: str, *, topic_too: bool = True) -> None:
    pubsub_v1: Any = importlib.import_module("google.cloud.pubsub_v1")

    if topic_too:
        pubsub_v1.PublisherClient().create_topic(name=topic)
    client = pubsub_v1.SubscriberClient()
    client.create_subscription(request={"name": sub, "topic": topic, "ack_deadline_seconds": 10})
    client.close()


def delete_sub(sub: str) -> None:
    pubsub_v1: Any = importlib.import_module("google.cloud.pubsub_v1")

    client = pubsub_v1.SubscriberClient()
    client.delete_subscription(request={"subscription": sub})
    client.close()


async def wait_for(cond: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        await asyncio.sleep(0.1)
    return cond()


@pytest.mark.emulator
def test_check_subscription_missing_is_config_error(pubsub_emulator: str) -> None:
    """A subscription that does not exist is a ConfigError naming it; an existing one passes."""
    topic, sub = topic_and_sub()
    with pytest.raises(ConfigError) as info:
        check_subscription(sub, timeout=10)
    assert "does not exist" in info.value.issues[0].message and sub in info.value.issues[0].message
    create_sub(topic, sub)
    check_subscription(sub, timeout=10)


@pytest.mark.emulator
def test_serve_with_missing_subscription_exits_1(pubsub_emulator: str, tmp_path: Path) -> None:
    """`scoperouter serve --subscription <missing>` prints a clear error and exits 1 instead of idling."""
    _, sub = topic_and_sub()
    cfg = write_registry(tmp_path)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "scoperouter.cli",
            "serve",
            "--config",
            str(cfg),
            "--state-dir",
            str(tmp_path / "st"),
            "--subscription",
            sub,
            "--no-http",
            "--no-log",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert f"Pub/Sub subscription {sub} does not exist" in proc.stderr


@pytest.mark.emulator
async def test_pull_failure_flips_readiness_and_resubscribes(
    pubsub_emulator: str, zero_cfg: LoadedConfig, make_router: RouterFactory
) -> None:
    """When the subscription disappears the pull failure makes /readyz 503; once it is back the source resubscribes and routes again."""
    pubsub_v1: Any = importlib.import_module("google.cloud.pubsub_v1")

    topic, sub = topic_and_sub()
    create_sub(topic, sub)
    r = make_router(zero_cfg, MemorySink())
    await r.start()
    ingress = IngressApp(r)
    source = PubSubSource(sub, r, min_backoff_s=0.2, max_backoff_s=0.5)
    ingress.add_readiness_check(source.readiness)
    c: TestClient[Any, Any] = TestClient(TestServer(ingress.app))
    await c.start_server()
    try:
        source.start()
        assert (await c.get("/readyz")).status == 200
        await asyncio.get_running_loop().run_in_executor(None, delete_sub, sub)
        assert await wait_for(lambda: source.readiness() is not None, 30), (
            "pull failure not noticed"
        )
        resp = await c.get("/readyz")
        assert resp.status == 503 and "Pub/Sub" in (await resp.json())["detail"]
        assert source.failures >= 1
        await asyncio.get_running_loop().run_in_executor(
            None, lambda: create_sub(topic, sub, topic_too=False)
        )
        assert await wait_for(lambda: source.readiness() is None, 30), source.readiness()
        assert (await c.get("/readyz")).status == 200
        pub = pubsub_v1.PublisherClient()
        await asyncio.wrap_future(pub.publish(topic, EVENT_BYTES))
        assert await wait_for(lambda: r.store.is_seen(EVENT["event_id"]), 30), (
            "no message routed after resubscribe"
        )
    finally:
        await source.stop(timeout=2)
        await c.close()


# ---------------------------------------------------------------- finding 3: per-target pools
def trigger(processor: str, n: int = 0) -> Trigger:
    return Trigger(
        trigger_id=f"t-{processor}-{n}",
        processor=processor,
        game_date=date(2025, 11, 19),
        start_date=date(2025, 11, 19),
        end_date=date(2025, 11, 19),
        scope="date",
        reason="date_scope",
        caused_by=("e-1",),
        correlation_id="c-1",
    )


@pytest.mark.parametrize("hung", [8, 64])
async def test_hanging_processor_does_not_starve_another_on_the_same_host(
    tmp_path: Path, hung: int
) -> None:
    """With every connection of a hung processor busy, another processor on the same host still gets through within its timeout."""
    release = asyncio.Event()
    in_flight = 0

    async def hang(request: web.Request) -> web.Response:
        nonlocal in_flight
        in_flight += 1
        await release.wait()
        return web.Response(text="late")

    async def ok(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hang", hang)
    app.router.add_post("/ok", ok)
    server = TestServer(app)
    await server.start_server()
    f = SinkFactory(tmp_path)
    slow = f.build(
        "slow",
        TargetSpec.model_validate(
            {"http": {"url": str(server.make_url("/hang")), "timeout": "60s"}, "concurrency": hung}
        ),
    )
    # the fast target's own timeout is the verdict: starved, its send would wait for a
    # connection until `release` (never, here) and fail with a DispatchError; no wall clock
    fast = f.build(
        "fast",
        TargetSpec.model_validate(
            {"http": {"url": str(server.make_url("/ok")), "timeout": "20s"}, "concurrency": 2}
        ),
    )
    stuck = [
        asyncio.create_task(slow.send(trigger("slow", i), message_id=f"s{i}")) for i in range(hung)
    ]
    try:
        assert await wait_for(lambda: in_flight == hung, 10), in_flight
        await fast.send(trigger("fast"), message_id="f")  # raises DispatchError if starved
        assert in_flight == hung  # the hung processor still holds every connection
    finally:
        release.set()
        await asyncio.gather(*stuck, return_exceptions=True)
        await f.close()
        await server.close()


# ---------------------------------------------------------------- finding 9: push without data
@pytest.mark.parametrize(
    ("body", "status", "problem"),
    [
        (push(attributes={"kind": "ping"}), 200, "push message without data"),
        (push("%%%not-base64"), 200, "push message.data is not valid base64"),
        (push(17), 200, "push message.data is not a string"),
        (json.dumps({"message": {"data": "%%%"}}).encode(), 400, None),  # not recognisably a push
    ],
    ids=["no-data", "bad-base64", "data-not-string", "unrecognisable"],
)
async def test_push_without_usable_data_is_dead_lettered(
    ingress: Callable[..., Any], body: bytes, status: int, problem: str | None
) -> None:
    """A recognisable push whose message has no data or invalid base64 is dead-lettered and acked (200), not redelivered forever."""
    c, r = await ingress()
    resp = await c.post("/events", data=body)
    answer = await resp.json()
    assert resp.status == status, answer
    assert rejected_total(r) == 1
    if problem is None:
        assert answer["error"] == "invalid_envelope"
        return
    assert answer["status"] == "dead_lettered"
    rows = [(d.ref, (d.payload or b"").decode().split(": ", 1)[0]) for d in r.store.dead_letters()]
    assert rows == [("projects/p/subscriptions/s#m-push", problem)]  # subscription#messageId


# ---------------------------------------------------------------- finding 8: outbox fsync
@pytest.mark.parametrize(("fsync", "senders"), [(True, 1), (True, 50), (False, 50)])
async def test_outbox_send_returns_after_fdatasync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fsync: bool, senders: int
) -> None:
    """With fsync on (the SinkFactory default) every outbox send returns only after a flush that covers its line; concurrent sends share flushes."""
    import scoperouter.runtime.outbox as sinks_mod  # the outbox sink lives there

    synced_size: list[int] = []

    def spy(fd: int) -> None:
        size = os.fstat(fd).st_size  # what this flush makes durable
        time.sleep(0.005)
        synced_size.append(size)

    monkeypatch.setattr(sinks_mod, "_datasync", spy)
    f = SinkFactory(tmp_path) if fsync else SinkFactory(tmp_path, fsync=False)
    sink = f.build("p", TargetSpec.model_validate({"outbox": {}}))
    path = tmp_path / "outbox.jsonl"
    durable_at_return: dict[str, int] = {}

    async def one(i: int) -> None:
        t = trigger("p", i)
        await sink.send(t, message_id=f"m{i}")
        durable_at_return[t.trigger_id] = max(synced_size, default=0)

    await asyncio.gather(*(one(i) for i in range(senders)))
    await f.close()
    ends: dict[str, int] = {}
    offset = 0
    for line in path.read_bytes().splitlines(keepends=True):
        offset += len(line)
        ends[json.loads(line)["trigger_id"]] = offset
    assert len(ends) == senders
    if not fsync:
        assert synced_size == []
        return
    assert {tid: durable_at_return[tid] >= end for tid, end in ends.items()} == dict.fromkeys(
        ends, True
    )
    if senders > 1:
        assert len(synced_size) < senders  # group commit

"""A Pub/Sub target's ``timeout`` (``target.pubsub.timeout``, default 60s) bounds the wait
for Pub/Sub to confirm one publish: a publish that never completes (Pub/Sub unreachable;
the ordered client library retries it without end) is a retryable failure after that
long, retried by the dispatcher like any other, instead of holding a dispatch slot for the
library's own deadline while the circuit breaker hears nothing. A key paused by a publish
that failed after its sender gave up is resumed by the next send's failure."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from pathlib import Path
from typing import Any

import pytest
from google.cloud.pubsub_v1.publisher.exceptions import PublishToPausedOrderingKeyException
from google.cloud.pubsub_v1.publisher.futures import Future
from runtime_support import INJURY_EVENT, RouterFactory
from test_outage import FAST
from test_sinks import TRIGGER

from scoperouter.errors import DispatchError
from scoperouter.processor_registry.loader import LoadedConfig
from scoperouter.processor_registry.models import TargetSpec
from scoperouter.runtime.payloads import ordering_key
from scoperouter.runtime.pubsub_sink import PubSubPublisher, PubSubSink
from scoperouter.runtime.router import Inbound
from scoperouter.runtime.sinks import SinkFactory

TOPIC = "projects/p/topics/triggers"
TIMEOUT_S = 0.1
# The router test below runs nine sends at once beside the store's writes: a loop stalled
# past a 0.1 s deadline on a busy machine timed out publishes already confirmed (CI, stop
# 58: three retries, two duplicates; the sink reads the client's future at the deadline
# since, test_publish_confirmed_while_the_loop_stalled_past_the_deadline_is_sent), and a
# publish not yet confirmed by a stalled loop's deadline is still retried: it waits longer.
ROUTER_TIMEOUT_S = 2.0


class HangingClient:
    """A PublisherClient whose publish calls numbered in ``hang`` (1-based) never complete
    (Pub/Sub unreachable); the others are confirmed with message ids m-1, m-2, ...; while
    ``paused`` holds a key, a publish with it is refused at once, as the library refuses."""

    def __init__(self, hang: tuple[int, ...] = ()) -> None:
        self.hang = hang
        self.calls = 0
        self.sent: list[dict[str, str]] = []
        self.paused: set[str] = set()
        self.resumed: list[str] = []

    def publish(self, topic: str, data: bytes, ordering_key: str = "", **attrs: str) -> Future:
        self.calls += 1
        if ordering_key in self.paused:
            raise PublishToPausedOrderingKeyException(ordering_key)
        fut = Future()  # the library's own: it cannot be cancelled
        if self.calls not in self.hang:
            self.sent.append(attrs)
            fut.set_result(f"m-{len(self.sent)}")
        return fut

    def resume_publish(self, topic: str, ordering_key: str) -> None:
        self.resumed.append(ordering_key)
        self.paused.discard(ordering_key)

    def stop(self) -> None:
        return None


def _publisher(client: HangingClient) -> PubSubPublisher:
    pub = PubSubPublisher()
    pub._client = client
    return pub


@pytest.mark.parametrize(
    ("pubsub", "timeout_s"),
    [
        ({"topic": "t", "project": "p"}, 60.0),  # the default
        ({"topic": "t", "project": "p", "timeout": "30s"}, 30.0),
        ({"topic": "t", "project": "p", "timeout": "1500ms"}, 1.5),
    ],
)
def test_pubsub_target_timeout_reaches_its_sink(
    tmp_path: Path, pubsub: dict[str, Any], timeout_s: float
) -> None:
    """target.pubsub.timeout is parsed like the HTTP target's and bounds its sink's publish."""
    sink = SinkFactory(tmp_path).build("p", TargetSpec.model_validate({"pubsub": pubsub}))
    assert isinstance(sink, PubSubSink) and sink.timeout_s == timeout_s


@pytest.mark.parametrize("ordering", [True, False])
async def test_publish_that_never_completes_is_a_retryable_timeout(ordering: bool) -> None:
    """A publish Pub/Sub never confirms fails, retryable and not local, after the target's timeout."""
    client = HangingClient(hang=(1,))
    sink = PubSubSink(TOPIC, publisher=_publisher(client), ordering=ordering, timeout_s=TIMEOUT_S)
    t0 = time.monotonic()
    with pytest.raises(DispatchError) as caught:
        await sink.send(TRIGGER, message_id="m")
    waited = time.monotonic() - t0
    assert TIMEOUT_S <= waited < TIMEOUT_S + 2.0
    err = caught.value
    assert err.retryable and not err.local and err.detail.startswith("timeout")
    assert err.trigger_id == TRIGGER.trigger_id
    assert await sink.send(TRIGGER, message_id="m") == "m-1"  # the next attempt goes through


async def _stall_loop(seconds: float) -> None:
    """Hold the event loop (no await) for ``seconds``: a busy loop on a loaded machine."""
    time.sleep(seconds)


@pytest.mark.parametrize("ordering", [True, False])
async def test_publish_confirmed_while_the_loop_stalled_past_the_deadline_is_sent(
    ordering: bool,
) -> None:
    """A publish Pub/Sub confirmed before its deadline is sent, even when the loop hears of it after the deadline."""
    client = HangingClient()  # confirms every publish at once, from the publishing call
    sink = PubSubSink(TOPIC, publisher=_publisher(client), ordering=ordering, timeout_s=TIMEOUT_S)
    send = asyncio.create_task(sink.send(TRIGGER, message_id="m"))
    await asyncio.sleep(0)  # the send publishes; the confirmation reaches the loop next turn
    await _stall_loop(3 * TIMEOUT_S)  # ... after the deadline's timer has expired
    assert await send == "m-1"
    assert client.calls == 1 and client.resumed == []


class FailingClient(HangingClient):
    """A PublisherClient whose publishes fail at once (Pub/Sub refused them)."""

    def publish(self, topic: str, data: bytes, ordering_key: str = "", **attrs: str) -> Future:
        self.calls += 1
        fut = Future()
        fut.set_exception(RuntimeError("503 the service is unavailable"))
        return fut


async def test_publish_failed_while_the_loop_stalled_reports_its_own_error() -> None:
    """A publish Pub/Sub refused before the deadline fails with that error, not a timeout, when the loop hears of it late."""
    client = FailingClient()
    sink = PubSubSink(TOPIC, publisher=_publisher(client), timeout_s=TIMEOUT_S)
    send = asyncio.create_task(sink.send(TRIGGER, message_id="m"))
    await asyncio.sleep(0)
    await _stall_loop(3 * TIMEOUT_S)
    with pytest.raises(DispatchError) as caught:
        await send
    assert "503 the service is unavailable" in caught.value.detail
    assert not caught.value.detail.startswith("timeout") and caught.value.retryable
    assert client.calls == 1 and client.resumed == [ordering_key(TRIGGER)]


async def test_key_paused_after_the_sender_gave_up_is_resumed() -> None:
    """A publish refused at once on a paused ordering key fails retryably and resumes the key."""
    client = HangingClient()
    sink = PubSubSink(TOPIC, publisher=_publisher(client), timeout_s=TIMEOUT_S)
    key = "player_game_summary:2025-11-19"
    client.paused.add(key)  # a publish that timed out here failed later: the library paused
    with pytest.raises(DispatchError) as caught:
        await sink.send(TRIGGER, message_id="m")
    assert caught.value.retryable and "PublishToPausedOrderingKey" in caught.value.detail
    assert client.resumed == [key]
    assert await sink.send(TRIGGER, message_id="m") == "m-1"


async def test_unreachable_pubsub_times_out_with_the_real_client(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The real client library with nothing listening: the send fails after the timeout, not its own deadline."""
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", f"127.0.0.1:{port}")
    pub = PubSubPublisher()
    sink = PubSubSink(TOPIC, publisher=pub, timeout_s=0.5)
    t0 = time.monotonic()
    try:
        with pytest.raises(DispatchError, match="timeout") as caught:
            await sink.send(TRIGGER, message_id="m")
    finally:
        pub.close()
    assert caught.value.retryable and time.monotonic() - t0 < 5.0


async def test_timed_out_publish_is_retried_by_the_dispatcher(
    zero_cfg: LoadedConfig, make_router: RouterFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """A delivery whose publish times out is retried (counted, logged) and then delivered."""
    client = HangingClient(hang=(1,))
    sink = PubSubSink(TOPIC, publisher=_publisher(client), timeout_s=ROUTER_TIMEOUT_S)
    r = make_router(zero_cfg, sinks={p: sink for p in zero_cfg.registry.processors}, **FAST)
    caplog.set_level(logging.INFO, logger="scoperouter.runtime")
    await r.start()
    out = await r.submit(Inbound("test", obj=dict(INJURY_EVENT)))
    assert out.ack and out.triggers > 0
    assert await r.idle(timeout=30)
    sent = [a["trigger_id"] for a in client.sent]
    assert len(sent) == len(set(sent)) == out.triggers and client.calls == out.triggers + 1
    retries = sum(
        r.metrics.dispatch_attempts.labels(p, "retry", "live")._value.get()
        for p in zero_cfg.registry.processors
    )
    assert retries == 1
    lines = [x for x in caplog.records if x.getMessage() == "dispatch failed, retrying"]
    assert len(lines) == 1 and str(getattr(lines[0], "error", "")).startswith("timeout")

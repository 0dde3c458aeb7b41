"""Round trip on the Pub/Sub emulator: router -> example processor -> completion -> router -> next phase.

Hops checked:
1. an injury event POSTed to ``scoperouter serve`` reaches the example processor as an
   entity-scoped push trigger (HTTP target);
2. the processor publishes a canonical completion event naming only the changed player;
3. the daemon pulls that event from its subscription and routes it onward to the Phase 4
   processor's Pub/Sub target, still entity-scoped and with the same correlation id.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from examples.processor_service import SOURCE, connect, create_app, seed
from examples.processor_service.service import HISTORY_KEY

from scoperouter.sdk import CompletionPublisher

pytestmark = pytest.mark.emulator

PROJECT = "rt-project"
EVENTS_TOPIC = f"projects/{PROJECT}/topics/completions"
ROUTER_SUB = f"projects/{PROJECT}/subscriptions/completions-router"
PEEK_SUB = f"projects/{PROJECT}/subscriptions/completions-peek"
PHASE4_TOPIC = f"projects/{PROJECT}/topics/phase4-trigger"
PHASE4_SUB = f"projects/{PROJECT}/subscriptions/phase4-trigger-sub"

REGISTRY = """\
version: 1
entities:
  player: {{}}
defaults:
  window: {{quiet: 0s, max_wait: 0s}}
processors:
  player_game_summary:
    phase: 3
    granularity: player
    inputs:
      - source: nba_raw.nbac_injury_report
        fields: [injury_status]
    publishes: {source}
    target:
      http: {{url: "http://127.0.0.1:{service_port}/process", timeout: 20s}}
  player_shot_zone_analysis:
    phase: 4
    granularity: player
    inputs:
      - source: {source}
        fields: [injury_status, points, minutes]
    target:
      pubsub: {{topic: phase4-trigger, project: {project}}}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def create_topics(pairs: list[tuple[str, str]]) -> None:
    from google.cloud import pubsub_v1

    publisher = pubsub_v1.PublisherClient()
    subscriber = pubsub_v1.SubscriberClient()
    try:
        for topic, sub in pairs:
            if topic not in {t.name for t in publisher.list_topics(project=f"projects/{PROJECT}")}:
                publisher.create_topic(name=topic)
            subscriber.create_subscription(name=sub, topic=topic, ack_deadline_seconds=10)
    finally:
        subscriber.close()
        publisher.stop()


def pull_one(subscription: str, timeout: float) -> tuple[dict[str, Any], dict[str, str]]:
    """Pull (and ack) one message within ``timeout`` seconds: (decoded JSON, attributes)."""
    from google.api_core import exceptions
    from google.cloud import pubsub_v1

    subscriber = pubsub_v1.SubscriberClient()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            try:
                resp = subscriber.pull(subscription=subscription, max_messages=1, timeout=2.0)
            except exceptions.DeadlineExceeded:
                continue
            if resp.received_messages:
                rm = resp.received_messages[0]
                subscriber.acknowledge(subscription=subscription, ack_ids=[rm.ack_id])
                return json.loads(rm.message.data), dict(rm.message.attributes)
            time.sleep(0.2)
    finally:
        subscriber.close()
    raise AssertionError(f"no message on {subscription} within {timeout}s")


@pytest.fixture
def topics(pubsub_emulator: str) -> None:
    create_topics(
        [(EVENTS_TOPIC, ROUTER_SUB), (EVENTS_TOPIC, PEEK_SUB), (PHASE4_TOPIC, PHASE4_SUB)]
    )


@pytest.fixture
async def service(topics: None) -> AsyncIterator[tuple[int, web.Application]]:
    """The example processor on a free port, publishing completions to the events topic."""
    db = connect()
    seed(db)
    db.execute(
        "UPDATE raw_player_stats SET injury_status = 'out' WHERE player_lookup = 'lebronjames'"
    )
    # The stored summary reflects the previous injury report for everyone.
    db.execute(
        "INSERT INTO player_game_summary SELECT player_lookup, game_date, points, minutes, "
        "'available', 1 FROM raw_player_stats"
    )
    db.execute(
        "UPDATE player_game_summary SET injury_status = 'questionable' WHERE player_lookup = 'anthonydavis'"
    )
    db.commit()
    publisher = CompletionPublisher(EVENTS_TOPIC, source=SOURCE)
    app = create_app(db, publisher)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield port, app
    finally:
        await runner.cleanup()
        await asyncio.to_thread(publisher.close)


@pytest.fixture
def daemon_factory(tmp_path: Path) -> Iterator[Any]:
    procs: list[subprocess.Popen[bytes]] = []

    def start(service_port: int) -> int:
        cfg = tmp_path / "routes.yaml"
        cfg.write_text(REGISTRY.format(source=SOURCE, service_port=service_port, project=PROJECT))
        port = free_port()
        with (tmp_path / "serve.log").open("wb") as log:
            procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "scoperouter.cli",
                        "serve",
                        "--config",
                        str(cfg),
                        "--state-dir",
                        str(tmp_path / "state"),
                        "--port",
                        str(port),
                        "--subscription",
                        ROUTER_SUB,
                        "--as-of",
                        "2025-11-20",
                        "--shutdown-timeout",
                        "2",
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env={**os.environ},
                )
            )
        return port

    yield start
    for proc in procs:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


async def wait_ready(port: int, log: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            try:
                async with session.get(f"http://127.0.0.1:{port}/readyz") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise AssertionError(f"daemon not ready in {timeout}s:\n{log.read_text()[-3000:]}")


async def test_round_trip_entity_scope_through_processor_and_onward(
    service: tuple[int, web.Application], daemon_factory: Any, tmp_path: Path
) -> None:
    """Injury event -> entity trigger -> processor publishes the changed player -> Phase 4 trigger."""
    service_port, app = service
    port = daemon_factory(service_port)
    await wait_ready(port, tmp_path / "serve.log")
    event = {
        "event_id": "e-injury-1",
        "source": "nba_raw.nbac_injury_report",
        "game_date": "2025-11-19",
        "affected_entities": {"players": ["lebronjames", "anthonydavis"]},
        "changed_fields": ["injury_status"],
        "correlation_id": "c-rt",
    }
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"http://127.0.0.1:{port}/events", json=event) as resp,
    ):
        body = await resp.json()
    assert resp.status == 200, body

    # Hop 1: the processor got an entity-scoped trigger for exactly the event's players.
    deadline = time.monotonic() + 30
    while not app[HISTORY_KEY] and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    assert app[HISTORY_KEY], (tmp_path / "serve.log").read_text()[-3000:]
    run = app[HISTORY_KEY][0]
    assert run.scope.scope == "entities" and run.scope.entity_type == "player"
    assert run.scope.entity_ids == ("anthonydavis", "lebronjames")
    assert run.scope.caused_by == ("e-injury-1",) and run.scope.correlation_id == "c-rt"
    assert run.rows_processed == 2

    # Hop 2: the completion event names only the player whose output changed.
    completion, attrs = await asyncio.to_thread(pull_one, PEEK_SUB, 30)
    assert completion["source"] == SOURCE
    assert completion["affected_entities"] == {"players": ["lebronjames"]}
    assert completion["changed_fields"] == ["available", "injury_status"]
    assert completion["correlation_id"] == "c-rt"
    assert attrs["event_id"] == completion["event_id"] and attrs["scope"] == "entities"

    # Hop 3: the daemon routed it onward to Phase 4, entity-scoped.
    trigger, tattrs = await asyncio.to_thread(pull_one, PHASE4_SUB, 30)
    assert trigger["processor"] == "player_shot_zone_analysis"
    assert trigger["scope"] == "entities" and trigger["entity_ids"] == ["lebronjames"]
    assert trigger["caused_by"] == [completion["event_id"]]
    assert trigger["correlation_id"] == "c-rt"
    assert (tattrs["processor"], tattrs["game_date"], tattrs["scope"]) == (
        "player_shot_zone_analysis",
        "2025-11-19",
        "entities",
    )

"""Round trip with Pub/Sub targets end to end, as in production (push subscriptions).

Hops checked, all on the real Pub/Sub emulator:
1. an injury event POSTed to ``scoperouter serve`` is published to the Phase 3 processor's
   Pub/Sub target; a PUSH subscription on that topic makes the emulator POST it to the
   example service's ``/process`` on 127.0.0.1, entity-scoped, with the trigger attributes;
2. the service publishes its completion event (``CompletionPublisher``) naming only the
   changed player, to the topic the daemon pulls from;
3. the daemon routes it onward to the Phase 4 processor's topic, still entity-scoped and
   with the same correlation id.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from examples.processor_service import SOURCE, connect, create_app, seed
from examples.processor_service.service import HISTORY_KEY
from test_sdk_roundtrip import PROJECT, create_topics, free_port, pull_one, wait_ready

from scoperouter.sdk import CompletionPublisher

pytestmark = pytest.mark.emulator

# Names distinct from test_sdk_roundtrip's: the emulator is shared by the session.
EVENTS_TOPIC = f"projects/{PROJECT}/topics/push-completions"
ROUTER_SUB = f"projects/{PROJECT}/subscriptions/push-completions-router"
PEEK_SUB = f"projects/{PROJECT}/subscriptions/push-completions-peek"
PHASE3_TOPIC = f"projects/{PROJECT}/topics/push-phase3-trigger"
PHASE3_PUSH_SUB = f"projects/{PROJECT}/subscriptions/push-phase3-trigger-push"
PHASE4_TOPIC = f"projects/{PROJECT}/topics/push-phase4-trigger"
PHASE4_SUB = f"projects/{PROJECT}/subscriptions/push-phase4-trigger-sub"

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
      pubsub: {{topic: push-phase3-trigger, project: {project}}}
  player_shot_zone_analysis:
    phase: 4
    granularity: player
    inputs:
      - source: {source}
        fields: [injury_status, points, minutes]
    target:
      pubsub: {{topic: push-phase4-trigger, project: {project}}}
"""

PushLog = list[dict[str, Any]]


@pytest.fixture
def topics(pubsub_emulator: str) -> None:
    create_topics(
        [(EVENTS_TOPIC, ROUTER_SUB), (EVENTS_TOPIC, PEEK_SUB), (PHASE4_TOPIC, PHASE4_SUB)]
    )


def create_push_subscription(topic: str, subscription: str, endpoint: str) -> None:
    from google.cloud import pubsub_v1

    publisher = pubsub_v1.PublisherClient()
    subscriber = pubsub_v1.SubscriberClient()
    try:
        publisher.create_topic(name=topic)
        subscriber.create_subscription(
            request={
                "name": subscription,
                "topic": topic,
                "push_config": {"push_endpoint": endpoint},
                "ack_deadline_seconds": 20,
            }
        )
    finally:
        subscriber.close()
        publisher.stop()


def delete_subscription(subscription: str) -> None:
    from google.cloud import pubsub_v1

    subscriber = pubsub_v1.SubscriberClient()
    try:
        subscriber.delete_subscription(subscription=subscription)
    finally:
        subscriber.close()


@pytest.fixture
async def service(topics: None) -> AsyncIterator[tuple[web.Application, PushLog]]:
    """The example processor, pushed to by the emulator; records each push envelope."""
    db = connect()
    seed(db)
    db.execute(
        "UPDATE raw_player_stats SET injury_status = 'out' WHERE player_lookup = 'lebronjames'"
    )
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
    pushes: PushLog = []

    @web.middleware
    async def record(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if request.path == "/process":
            pushes.append(json.loads(await request.read()))  # read() is cached for the handler
        return await handler(request)

    app.middlewares.append(record)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    await asyncio.to_thread(
        create_push_subscription, PHASE3_TOPIC, PHASE3_PUSH_SUB, f"http://127.0.0.1:{port}/process"
    )
    try:
        yield app, pushes
    finally:
        # Stop the emulator pushing to a port that is about to close.
        await asyncio.to_thread(delete_subscription, PHASE3_PUSH_SUB)
        await runner.cleanup()
        await asyncio.to_thread(publisher.close)


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[int]:
    """``scoperouter serve`` pulling the completions topic; yields its HTTP port."""
    cfg = tmp_path / "routes.yaml"
    cfg.write_text(REGISTRY.format(source=SOURCE, project=PROJECT))
    port = free_port()
    with (tmp_path / "serve.log").open("wb") as log:
        proc = subprocess.Popen(
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
    try:
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


async def test_round_trip_through_pubsub_push_to_processor_and_onward(
    service: tuple[web.Application, PushLog], daemon: int, tmp_path: Path
) -> None:
    """Injury event -> Pub/Sub push to /process -> completion -> Phase 4 topic, entity-scoped."""
    app, pushes = service
    serve_log = tmp_path / "serve.log"
    await wait_ready(daemon, serve_log)
    event = {
        "event_id": "e-injury-push",
        "source": "nba_raw.nbac_injury_report",
        "game_date": "2025-11-19",
        "affected_entities": {"players": ["lebronjames", "anthonydavis"]},
        "changed_fields": ["injury_status"],
        "correlation_id": "c-push",
    }
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"http://127.0.0.1:{daemon}/events", json=event) as resp,
    ):
        body = await resp.json()
    assert resp.status == 200, body

    # Hop 1: the emulator pushed the trigger from the Phase 3 topic to /process.
    deadline = time.monotonic() + 20
    while not app[HISTORY_KEY] and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    assert app[HISTORY_KEY], serve_log.read_text()[-3000:]
    assert pushes[0]["subscription"] == PHASE3_PUSH_SUB
    run = app[HISTORY_KEY][0]
    assert run.scope.processor == "player_game_summary"
    assert run.scope.scope == "entities" and run.scope.entity_type == "player"
    assert run.scope.entity_ids == ("anthonydavis", "lebronjames")
    assert run.scope.caused_by == ("e-injury-push",) and run.scope.correlation_id == "c-push"
    assert run.scope.message_id
    assert dict(run.scope.attributes) == {
        "processor": "player_game_summary",
        "game_date": "2025-11-19",
        "scope": "entities",
    }
    assert run.rows_processed == 2

    # Hop 2: the completion event names only the player whose output changed.
    completion, attrs = await asyncio.to_thread(pull_one, PEEK_SUB, 20)
    assert completion["source"] == SOURCE
    assert completion["affected_entities"] == {"players": ["lebronjames"]}
    assert completion["changed_fields"] == ["available", "injury_status"]
    assert completion["correlation_id"] == "c-push"
    assert attrs["event_id"] == completion["event_id"] and attrs["scope"] == "entities"

    # Hop 3: the daemon pulled it and routed it onward to the Phase 4 topic, entity-scoped.
    trigger, tattrs = await asyncio.to_thread(pull_one, PHASE4_SUB, 20)
    assert trigger["processor"] == "player_shot_zone_analysis"
    assert trigger["scope"] == "entities" and trigger["entity_type"] == "player"
    assert trigger["entity_ids"] == ["lebronjames"]
    assert trigger["game_date"] == "2025-11-19"
    assert trigger["caused_by"] == [completion["event_id"]]
    assert trigger["correlation_id"] == "c-push"
    assert (tattrs["processor"], tattrs["game_date"], tattrs["scope"]) == (
        "player_shot_zone_analysis",
        "2025-11-19",
        "entities",
    )

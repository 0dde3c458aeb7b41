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
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from examples.processor_service import SOURCE
from roundtrip_support import (
    PROJECT,
    SERVE_LOG,
    RoundTripNames,
    create_topics,
    example_service,
    injury_event,
    post_event,
    pull_one,
    registry_yaml,
    serve_daemon,
    subscription_path,
    topic_path,
    wait_for_run,
    wait_ready,
)

pytestmark = pytest.mark.emulator

# Names distinct from test_sdk_roundtrip's: the emulator is shared by the session.
NAMES = RoundTripNames.with_prefix("push-")
PEEK_SUB = NAMES.peek_sub
PHASE3_TOPIC = topic_path("push-phase3-trigger")
PHASE3_PUSH_SUB = subscription_path("push-phase3-trigger-push")
PHASE4_SUB = NAMES.phase4_sub
PHASE3_TARGET = f"pubsub: {{topic: push-phase3-trigger, project: {PROJECT}}}"

PushLog = list[dict[str, Any]]


@pytest.fixture
def topics(pubsub_emulator: str) -> None:
    create_topics(NAMES.pull_pairs())


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
    pushes: PushLog = []

    @web.middleware
    async def record(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if request.path == "/process":
            pushes.append(json.loads(await request.read()))  # read() is cached for the handler
        return await handler(request)

    async with example_service(NAMES.events_topic, middlewares=[record]) as (port, app):
        await asyncio.to_thread(
            create_push_subscription,
            PHASE3_TOPIC,
            PHASE3_PUSH_SUB,
            f"http://127.0.0.1:{port}/process",
        )
        try:
            yield app, pushes
        finally:
            # Stop the emulator pushing to a port that is about to close.
            await asyncio.to_thread(delete_subscription, PHASE3_PUSH_SUB)


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[int]:
    """``scoperouter serve`` pulling the completions topic; yields its HTTP port."""
    registry = registry_yaml(PHASE3_TARGET, topic_prefix=NAMES.prefix)
    with serve_daemon(tmp_path, registry, NAMES.router_sub) as port:
        yield port


async def test_round_trip_through_pubsub_push_to_processor_and_onward(
    service: tuple[web.Application, PushLog], daemon: int, tmp_path: Path
) -> None:
    """Injury event -> Pub/Sub push to /process -> completion -> Phase 4 topic, entity-scoped."""
    app, pushes = service
    serve_log = tmp_path / SERVE_LOG
    await wait_ready(daemon, serve_log)
    await post_event(daemon, injury_event("e-injury-push", correlation_id="c-push"))

    # Hop 1: the emulator pushed the trigger from the Phase 3 topic to /process.
    run = await wait_for_run(app, 20, serve_log)
    assert pushes[0]["subscription"] == PHASE3_PUSH_SUB
    assert run.scope.processor == "player_game_summary"
    assert run.scope.scope == "entities" and run.scope.entity_type == "player"
    assert run.scope.entity_ids == ("anthonydavis", "lebronjames")
    assert run.scope.caused_by == ("e-injury-push",) and run.scope.correlation_id == "c-push"
    assert run.scope.message_id
    assert dict(run.scope.attributes) == {
        "processor": "player_game_summary",
        "game_date": "2025-11-19",
        "scope": "entities",
        "trigger_id": run.scope.trigger_id,
    }
    assert run.scope.trigger_id and run.rows_processed == 2

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

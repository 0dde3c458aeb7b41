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
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from aiohttp import web
from examples.processor_service import SOURCE
from roundtrip_support import (
    SERVE_LOG,
    RoundTripNames,
    create_topics,
    example_service,
    injury_event,
    post_event,
    pull_one,
    registry_yaml,
    serve_daemon,
    wait_for_run,
    wait_ready,
)

pytestmark = pytest.mark.emulator

NAMES = RoundTripNames.with_prefix("")
PEEK_SUB = NAMES.peek_sub
PHASE4_SUB = NAMES.phase4_sub


@pytest.fixture
def topics(pubsub_emulator: str) -> None:
    create_topics(NAMES.pull_pairs())


@pytest.fixture
async def service(topics: None) -> AsyncIterator[tuple[int, web.Application]]:
    """The example processor on a free port, publishing completions to the events topic."""
    async with example_service(NAMES.events_topic) as (port, app):
        yield port, app


@pytest.fixture
def daemon_factory(tmp_path: Path) -> Iterator[Callable[[int], int]]:
    """Starts ``scoperouter serve`` routing Phase 3 to the service's HTTP port; returns its port."""
    with ExitStack() as daemons:

        def start(service_port: int) -> int:
            target = f'http: {{url: "http://127.0.0.1:{service_port}/process", timeout: 20s}}'
            registry = registry_yaml(target, topic_prefix=NAMES.prefix)
            return daemons.enter_context(serve_daemon(tmp_path, registry, NAMES.router_sub))

        yield start


async def test_round_trip_entity_scope_through_processor_and_onward(
    service: tuple[int, web.Application], daemon_factory: Callable[[int], int], tmp_path: Path
) -> None:
    """Injury event -> entity trigger -> processor publishes the changed player -> Phase 4 trigger."""
    service_port, app = service
    port = daemon_factory(service_port)
    await wait_ready(port, tmp_path / SERVE_LOG)
    await post_event(port, injury_event("e-injury-1", correlation_id="c-rt"))

    # Hop 1: the processor got an entity-scoped trigger for exactly the event's players.
    run = await wait_for_run(app, 30, tmp_path / SERVE_LOG)
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

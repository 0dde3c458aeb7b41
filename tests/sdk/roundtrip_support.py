"""Shared pieces of the SDK round-trip tests (test_sdk_roundtrip*.py) on the Pub/Sub emulator.

Not a test module: the fixtures stay in the test modules; this holds the names, the
registry template, the seeded example service, the ``scoperouter serve`` subprocess and
the small Pub/Sub helpers they both use.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.typedefs import Middleware
from examples.processor_service import SOURCE, RunResult, connect, create_app, seed
from examples.processor_service.service import HISTORY_KEY

from scoperouter.sdk import CompletionPublisher

PROJECT = "rt-project"
AS_OF = "2025-11-20"
SERVE_LOG = "serve.log"


def topic_path(name: str) -> str:
    return f"projects/{PROJECT}/topics/{name}"


def subscription_path(name: str) -> str:
    return f"projects/{PROJECT}/subscriptions/{name}"


@dataclass(frozen=True)
class RoundTripNames:
    """Topic/subscription paths for one round-trip test, all starting with ``prefix`` so the
    two tests stay apart on the shared session emulator (build with :meth:`with_prefix`)."""

    prefix: str
    events_topic: str
    router_sub: str
    peek_sub: str
    phase4_topic: str
    phase4_sub: str

    @classmethod
    def with_prefix(cls, prefix: str) -> RoundTripNames:
        return cls(
            prefix=prefix,
            events_topic=topic_path(f"{prefix}completions"),
            router_sub=subscription_path(f"{prefix}completions-router"),
            peek_sub=subscription_path(f"{prefix}completions-peek"),
            phase4_topic=topic_path(f"{prefix}phase4-trigger"),
            phase4_sub=subscription_path(f"{prefix}phase4-trigger-sub"),
        )

    def pull_pairs(self) -> list[tuple[str, str]]:
        """(topic, pull subscription) pairs: the router's and a peek on completions, Phase 4."""
        return [
            (self.events_topic, self.router_sub),
            (self.events_topic, self.peek_sub),
            (self.phase4_topic, self.phase4_sub),
        ]


_REGISTRY = """\
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
      {phase3_target}
  player_shot_zone_analysis:
    phase: 4
    granularity: player
    inputs:
      - source: {source}
        fields: [injury_status, points, minutes]
    target:
      pubsub: {{topic: {prefix}phase4-trigger, project: {project}}}
"""


def registry_yaml(phase3_target: str, topic_prefix: str) -> str:
    """The two-processor registry: Phase 3 (``phase3_target``, one YAML flow line under
    ``target:``) publishes the example SOURCE, which feeds Phase 4's ``<prefix>phase4-trigger``."""
    return _REGISTRY.format(
        source=SOURCE, phase3_target=phase3_target, prefix=topic_prefix, project=PROJECT
    )


def seeded_example_db() -> sqlite3.Connection:
    """The example service's database: LeBron now 'out', the stored summary still reflecting
    the previous report ('available' for all, Anthony Davis 'questionable')."""
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
    return db


@asynccontextmanager
async def example_service(
    events_topic: str, middlewares: Iterable[Middleware] = ()
) -> AsyncIterator[tuple[int, web.Application]]:
    """The example processor on a free 127.0.0.1 port over the seeded database, publishing
    completions to ``events_topic``; yields (port, app) and shuts both down afterwards."""
    publisher = CompletionPublisher(events_topic, source=SOURCE)
    app = create_app(seeded_example_db(), publisher)
    app.middlewares.extend(middlewares)
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


@contextmanager
def serve_daemon(tmp_path: Path, registry: str, subscription: str) -> Iterator[int]:
    """``scoperouter serve`` on ``registry``, pulling ``subscription``, logging to
    ``tmp_path / SERVE_LOG``; yields its HTTP port and stops it afterwards."""
    cfg = tmp_path / "routes.yaml"
    cfg.write_text(registry)
    port = free_port()
    with (tmp_path / SERVE_LOG).open("wb") as log:
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
                subscription,
                "--as-of",
                AS_OF,
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


def injury_event(event_id: str, correlation_id: str) -> dict[str, Any]:
    """The injury-report event both tests POST: LeBron and Anthony Davis, 2025-11-19."""
    return {
        "event_id": event_id,
        "source": "nba_raw.nbac_injury_report",
        "game_date": "2025-11-19",
        "affected_entities": {"players": ["lebronjames", "anthonydavis"]},
        "changed_fields": ["injury_status"],
        "correlation_id": correlation_id,
    }


async def post_event(port: int, event: dict[str, Any]) -> None:
    """POST ``event`` to the daemon's ``/events``; fail with the body unless it answers 200."""
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"http://127.0.0.1:{port}/events", json=event) as resp,
    ):
        body = await resp.json()
    assert resp.status == 200, body


async def wait_for_run(app: web.Application, timeout: float, log: Path) -> RunResult:
    """The service's first run, waited for up to ``timeout`` seconds; on timeout fail with the
    tail of the daemon's log."""
    deadline = time.monotonic() + timeout
    while not app[HISTORY_KEY] and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    assert app[HISTORY_KEY], log.read_text()[-3000:]
    return app[HISTORY_KEY][0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def create_topics(pairs: list[tuple[str, str]]) -> None:
    """Create each topic (unless it exists) and a pull subscription on it."""
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


async def wait_ready(port: int, log: Path, timeout: float = 120.0) -> None:
    """Wait for the daemon's ``/readyz``; on timeout fail with the tail of its log."""
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

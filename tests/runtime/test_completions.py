"""Processor completion events reaching the daemon become execution-log completion rows,
once per event (a redelivered event is a duplicate and is not counted again)."""

from __future__ import annotations

import asyncio
import base64
import json
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from runtime_support import GAME_DAY

from scoperouter.execution_log import COMPLETIONS_TABLE, open_log
from scoperouter.processor_registry.loader import LoadedConfig
from scoperouter.runtime.daemon import Daemon, DaemonSettings
from scoperouter.runtime.router import attribute
from scoperouter.sdk import CompletionPublisher, parse_trigger

PROJECT = "local-project"


def completion(event_id: str, **kw: Any) -> dict[str, Any]:
    """A processor's own completion event (player_game_summary publishes this source)."""
    return {
        "event_id": event_id,
        "source": "nba_analytics.player_game_summary",
        "game_date": GAME_DAY.isoformat(),
        "record_count": 12,
        "affected_entities": {"players": ["lalplayer01", "lalplayer02"]},
        **kw,
    }


def push(event: dict[str, Any], message_id: str, **attributes: str) -> dict[str, Any]:
    """A Pub/Sub push envelope around ``event`` (the SDK sets attribute ``trigger_id``)."""
    data = base64.b64encode(json.dumps(event).encode()).decode()
    return {
        "message": {"data": data, "messageId": message_id, "attributes": attributes},
        "subscription": "projects/p/subscriptions/s",
    }


INJURY = {
    "event_id": "inj-1",
    "source": "nba_raw.nbac_injury_report",
    "game_date": GAME_DAY.isoformat(),
    "affected_entities": {"players": ["lalplayer01"]},
    "record_count": 3,
}


def completion_rows(path: Path) -> list[tuple[Any, ...]]:
    db = sqlite3.connect(path)
    try:
        return db.execute(
            "SELECT processor, game_date, trigger_id, records_processed, entities_changed, duration_s "
            f"FROM {COMPLETIONS_TABLE} ORDER BY records_processed"
        ).fetchall()
    finally:
        db.close()


Row = tuple[
    str, str, str | None, int, int | None
]  # processor, game_date, trigger_id, records, changed
PGS: Row = ("player_game_summary", GAME_DAY.isoformat(), None, 12, 2)


@pytest.mark.parametrize(
    ("bodies", "expected"),
    [
        pytest.param([completion("c-1")], [PGS], id="completion"),
        pytest.param([completion("c-1")] * 3, [PGS], id="duplicate-not-double-counted"),
        pytest.param(
            [completion("c-1"), completion("c-2", record_count=40)],
            [PGS, ("player_game_summary", GAME_DAY.isoformat(), None, 40, 2)],
            id="two-runs",
        ),
        pytest.param(
            [push(completion("c-1"), "m-1", trigger_id="t-9")] * 2,
            [("player_game_summary", GAME_DAY.isoformat(), "t-9", 12, 2)],
            id="push-trigger-id",
        ),
        pytest.param(
            [completion("c-1", affected_entities=None, record_count=450)],
            [("player_game_summary", GAME_DAY.isoformat(), None, 450, None)],
            id="date-level",
        ),
        pytest.param([INJURY], [], id="not-a-processor-completion"),
        pytest.param([completion("c-1", status="failed")], [], id="failed-run"),
        pytest.param([completion("c-1", record_count=None)], [], id="no-record-count"),
    ],
)
async def test_completion_event_becomes_completion_row(
    tmp_path: Path, zero_cfg: LoadedConfig, bodies: list[dict[str, Any]], expected: list[Row]
) -> None:
    """An event whose source is a processor's ``publishes`` is logged as that processor's
    completion (trigger id from the push attributes); redeliveries add no row."""
    log = open_log(tmp_path / "log.sqlite")
    settings = DaemonSettings(state_dir=tmp_path / "s", port=0, as_of=GAME_DAY, sync="normal")
    d = Daemon(zero_cfg.registry, zero_cfg.relations, settings, log=log)
    await d.start()
    try:
        async with aiohttp.ClientSession() as s:
            for body in bodies:
                async with s.post(f"http://127.0.0.1:{d.port}/events", json=body) as r:
                    assert r.status == 200, await r.text()
                    assert (await r.json())["status"] in ("accepted", "duplicate")
        assert await d.router.idle()
    finally:
        await d.stop()  # closes (flushes) the execution log
    got = completion_rows(tmp_path / "log.sqlite")
    assert [tuple(r[:5]) for r in got] == expected
    assert all(r[5] == 0.0 for r in got)  # unknown duration: not counted towards time per entity


BF = "bf-0123456789abcdef01234567"  # a backfill trigger's id (its completion routes nothing)


@pytest.mark.parametrize(
    ("body", "trigger_id", "state", "rows"),
    [
        pytest.param(completion("c-1"), BF, "success", 1, id="success"),
        pytest.param(completion("c-1", status="partial"), BF, "partial", 1, id="partial"),
        pytest.param(completion("c-1", record_count=None), BF, "success", 0, id="no-record_count"),
        pytest.param(
            completion("c-1", status="no_data", record_count=None), BF, "no_data", 0, id="no_data"
        ),
        pytest.param(
            completion("c-1", status="failed", record_count=None), BF, "failed", 0, id="failed"
        ),
        pytest.param(completion("c-1", status="failed"), BF, "failed", 0, id="failed-counted"),
        pytest.param(completion("c-1", status="no_data"), "t-9", "no_data", 0, id="router-trigger"),
    ],
)
async def test_a_completion_naming_a_trigger_logs_its_status_for_that_trigger(
    tmp_path: Path,
    zero_cfg: LoadedConfig,
    body: dict[str, Any],
    trigger_id: str,
    state: str,
    rows: int,
) -> None:
    """Whatever its status and record_count, the completion naming a trigger (push attribute trigger_id) is found by that id with its status; completion rows stay success/partial with record_count only."""
    from scoperouter.backfill.daemon_executor import log_completions

    body = {k: v for k, v in body.items() if v is not None}
    log = open_log(tmp_path / "log.sqlite")
    settings = DaemonSettings(state_dir=tmp_path / "s", port=0, as_of=GAME_DAY, sync="normal")
    d = Daemon(zero_cfg.registry, zero_cfg.relations, settings, log=log)
    await d.start()
    try:
        async with aiohttp.ClientSession() as s:
            envelope = push(body, "m-1", trigger_id=trigger_id)
            async with s.post(f"http://127.0.0.1:{d.port}/events", json=envelope) as r:
                assert r.status == 200, await r.text()
                assert (await r.json())["status"] == "accepted"
        assert await d.router.idle()
    finally:
        await d.stop()  # closes (flushes) the execution log
    lookup = log_completions(tmp_path / "log.sqlite")
    assert (lookup(trigger_id), lookup("bf-another")) == (state, None)
    assert len(completion_rows(tmp_path / "log.sqlite")) == rows


@pytest.mark.parametrize(
    ("attributes", "expected"),
    [
        ({"trigger_id": "t-1"}, "t-1"),
        ({"trigger_id": ""}, None),
        ({"trigger_id": 5}, None),
        ({"trigger_id": "t-\ud800"}, None),  # a lone surrogate: no id anyone issued
        ({"trigger_id": "t-é"}, "t-é"),
        ({}, None),
        (None, None),
        ("trigger_id", None),
    ],
)
def test_attribute(attributes: object, expected: str | None) -> None:
    """Only a non-empty string attribute is taken; anything else reads as absent."""
    assert attribute(attributes, "trigger_id") == expected


@pytest.mark.emulator
async def test_sdk_completion_over_pubsub_pull(
    pubsub_emulator: str, tmp_path: Path, zero_cfg: LoadedConfig
) -> None:
    """A completion published twice by the SDK (same event id) and pulled by the daemon is
    one completion row, carrying the run's trigger id from the message attributes."""
    from google.cloud import pubsub_v1

    tag = uuid.uuid4().hex[:8]
    topic, sub = (
        f"projects/{PROJECT}/topics/done-{tag}",
        f"projects/{PROJECT}/subscriptions/done-{tag}",
    )

    def create() -> None:
        pubsub_v1.PublisherClient().create_topic(name=topic)
        subscriber = pubsub_v1.SubscriberClient()
        subscriber.create_subscription(
            request={"name": sub, "topic": topic, "ack_deadline_seconds": 10}
        )
        subscriber.close()

    await asyncio.to_thread(create)
    log = open_log(tmp_path / "log.sqlite")
    settings = DaemonSettings(
        state_dir=tmp_path / "s",
        port=0,
        as_of=GAME_DAY,
        sync="normal",
        subscription=sub,
        http_enabled=False,
    )
    d = Daemon(zero_cfg.registry, zero_cfg.relations, settings, log=log)
    await d.start()
    scope = parse_trigger(
        {
            "trigger_id": "t-run-7",
            "processor": "player_game_summary",
            "game_date": GAME_DAY.isoformat(),
            "scope": "entities",
            "entity_type": "player",
            "entity_ids": ["lalplayer01", "lalplayer02", "lalplayer03"],
            "reason": "entities",
        }
    )
    pub = CompletionPublisher(topic, source="nba_analytics.player_game_summary")
    try:
        for _ in range(2):
            res = await asyncio.to_thread(
                pub.publish,
                game_date=GAME_DAY,
                affected_entities={"players": ["lalplayer02"]},
                scope=scope,
                event_id="done-1",
                record_count=3,
            )
            assert res.published and res.attributes["trigger_id"] == "t-run-7"
        for _ in range(500):
            if d.metrics.registry.get_sample_value("scoperouter_events_duplicate_total") == 1.0:
                break
            await asyncio.sleep(0.02)
        assert await d.router.idle()
    finally:
        pub.close()
        await d.stop()
    got = completion_rows(tmp_path / "log.sqlite")
    assert [tuple(r[:5]) for r in got] == [
        ("player_game_summary", GAME_DAY.isoformat(), "t-run-7", 3, 1)
    ]

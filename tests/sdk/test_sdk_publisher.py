"""Completion publisher: canonical event, attributes, size/count fallback, nothing-changed."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import pytest

from scoperouter.messages.event_fields import MAX_EVENT_ENTITIES
from scoperouter.sdk import (
    CompletionPublisher,
    PublishLimits,
    apply_limits,
    build_completion_event,
    encode_event,
    parse_trigger,
)
from scoperouter.sdk.publisher import topic_path

SOURCE = "nba_analytics.player_game_summary"
DAY = date(2025, 11, 19)
SCOPE = parse_trigger(
    {
        "trigger_id": "t-1",
        "processor": "player_game_summary",
        "game_date": "2025-11-19",
        "scope": "entities",
        "entity_type": "player",
        "entity_ids": ["lebronjames"],
        "correlation_id": "c-9",
        "priority": "critical",
    }
)


class Done:
    def __init__(self, value: str) -> None:
        self.value = value

    def result(self, timeout: float | None = None) -> str:
        return self.value


@dataclass
class FakeClient:
    """Records publish() calls like pubsub_v1.PublisherClient."""

    calls: list[tuple[str, bytes, dict[str, str]]] = field(default_factory=list)

    def publish(self, topic: str, data: bytes, **attrs: str) -> Done:
        self.calls.append((topic, data, attrs))
        return Done(str(len(self.calls)))


def ids(n: int) -> list[str]:
    return [f"player{i:04d}" for i in range(n)]


def publisher(client: FakeClient, **kw: Any) -> CompletionPublisher:
    return CompletionPublisher("projects/p/topics/done", source=SOURCE, client=client, **kw)


def test_publishes_canonical_event_with_attributes() -> None:
    """The published data is the canonical event; attributes carry source, date, id, scope, correlation."""
    client = FakeClient()
    res = publisher(client).publish(
        game_date=DAY,
        affected_entities={"players": ["b", "a", "a"]},
        changed_fields=["points"],
        scope=SCOPE,
    )
    assert res.published and not res.fell_back
    topic, data, attrs = client.calls[0]
    event = json.loads(data)
    assert topic == "projects/p/topics/done"
    assert event == res.event
    assert event["affected_entities"] == {"players": ["a", "b"]}
    assert (event["source"], event["game_date"], event["status"]) == (
        SOURCE,
        "2025-11-19",
        "success",
    )
    assert (event["correlation_id"], event["priority"]) == (SCOPE.correlation_id, SCOPE.priority)
    assert datetime.fromisoformat(event["produced_at"]).tzinfo is not None
    assert attrs == {
        "source": SOURCE,
        "game_date": "2025-11-19",
        "event_id": event["event_id"],
        "status": "success",
        "scope": "entities",
        "priority": "critical",
        "correlation_id": "c-9",
        "trigger_id": "t-1",
    }
    assert res.message_id == "1" and res.size_bytes == len(data)


@pytest.mark.parametrize(
    ("affected", "fields", "publish_unchanged"),
    [
        ({"players": []}, ["points"], False),
        ({}, None, False),
        ({"players": ["a"]}, [], False),  # ids named, fields unknown (SPEC: [] is unknown)
        (None, [], False),  # date level, fields unknown
        ({"players": []}, None, True),
        (None, None, False),
        ({"players": ["a"]}, None, False),
    ],
)
def test_every_built_event_is_published(
    affected: dict[str, list[str]] | None,
    fields: list[str] | None,
    publish_unchanged: bool,
) -> None:
    """A built event is always published (the router routes it), publish_unchanged or not."""
    client = FakeClient()
    res = publisher(client, publish_unchanged=publish_unchanged).publish(
        game_date=DAY, affected_entities=affected, changed_fields=fields
    )
    assert (res.published, res.reason, len(client.calls)) == (True, "published", 1)


@pytest.mark.parametrize(("n", "fell_back"), [(49, False), (50, False), (51, True)])
def test_count_limit_boundary(n: int, fell_back: bool) -> None:
    """Exactly max_entities ids stays entity-level; one more falls back to a date-level event."""
    client = FakeClient()
    res = publisher(client, limits=PublishLimits(max_entities=50)).publish(
        game_date=DAY, affected_entities={"players": ids(n)}, changed_fields=["points"], scope=SCOPE
    )
    event = json.loads(client.calls[0][1])
    assert res.fell_back is fell_back
    assert ("affected_entities" not in event) is fell_back
    assert client.calls[0][2]["scope"] == ("date" if fell_back else "entities")
    assert res.fallback_reason == ("max_entities" if fell_back else None)
    assert event["changed_fields"] == ["points"] and event["correlation_id"] == "c-9"


@pytest.mark.parametrize(("slack", "fell_back"), [(1, False), (0, False), (-1, True)])
def test_byte_limit_boundary(slack: int, fell_back: bool) -> None:
    """A message of exactly max_bytes stays entity-level; one byte over falls back."""
    event = build_completion_event(
        source=SOURCE,
        game_date=DAY,
        affected_entities={"players": ids(30)},
        scope=SCOPE,
        event_id="e-1",
    )
    size = len(encode_event(event))
    client = FakeClient()
    res = publisher(
        client, limits=PublishLimits(max_entities=1000, max_bytes=size + slack)
    ).publish_event(event, scope=SCOPE)
    assert res.fell_back is fell_back
    assert res.fallback_reason == ("max_bytes" if fell_back else None)
    assert ("affected_entities" in json.loads(client.calls[0][1])) is not fell_back
    if not fell_back:
        assert res.size_bytes == size


def test_apply_limits_does_not_mutate_input() -> None:
    """apply_limits returns a new dict and leaves the given event untouched."""
    event = build_completion_event(
        source=SOURCE, game_date=DAY, affected_entities={"players": ids(3)}
    )
    out, reason = apply_limits(event, PublishLimits(max_entities=2))
    assert reason == "max_entities" and "affected_entities" not in out
    assert event["affected_entities"] == {"players": ids(3)}


def test_correlation_id_from_scope_reaches_a_ready_event() -> None:
    """publish_event adds the trigger's correlation_id to an event that lacks one."""
    client = FakeClient()
    event = build_completion_event(
        source=SOURCE, game_date=DAY, affected_entities={"players": ["a"]}
    )
    publisher(client).publish_event(event, scope=SCOPE)
    assert json.loads(client.calls[0][1])["correlation_id"] == SCOPE.correlation_id


def test_range_event_and_explicit_fields() -> None:
    """A range event carries start/end dates; explicit event_id/priority/produced_at win."""
    produced = datetime(2025, 11, 19, 18, 5, tzinfo=UTC)
    event = build_completion_event(
        source=SOURCE,
        game_date=None,
        start_date=date(2025, 11, 1),
        end_date=date(2025, 11, 3),
        affected_entities=None,
        status="partial",
        event_id="e-9",
        priority="normal",
        scope=SCOPE,
        produced_at=produced,
        record_count=7,
        backfill=True,
    )
    assert event == {
        "event_id": "e-9",
        "source": SOURCE,
        "status": "partial",
        "produced_at": "2025-11-19T18:05:00Z",
        "start_date": "2025-11-01",
        "end_date": "2025-11-03",
        "correlation_id": "c-9",
        "priority": "normal",
        "record_count": 7,
    }


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"status": "ok"}, ValueError),
        ({"game_date": None}, ValueError),
        ({"changed_fields": "points"}, TypeError),
        ({"affected_entities": {"players": "lebronjames"}}, TypeError),
    ],
)
def test_build_rejects_bad_input(kwargs: dict[str, Any], error: type[Exception]) -> None:
    """Bad status, missing date, or a bare string where a list is expected are refused."""
    base: dict[str, Any] = {"source": SOURCE, "game_date": DAY, "affected_entities": None}
    with pytest.raises(error):
        build_completion_event(**{**base, **kwargs})


@pytest.mark.parametrize(
    ("topic", "env", "expected"),
    [
        ("projects/x/topics/t", {}, "projects/x/topics/t"),
        ("t", {"GOOGLE_CLOUD_PROJECT": "proj"}, "projects/proj/topics/t"),
        ("t", {"PUBSUB_EMULATOR_HOST": "127.0.0.1:1"}, "projects/local-project/topics/t"),
        ("t", {}, None),
    ],
)
def test_topic_path(
    topic: str, env: dict[str, str], expected: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Topic ids get a project from the environment; without one it is an error."""
    for var in ("GOOGLE_CLOUD_PROJECT", "GCP_PROJECT", "PUBSUB_EMULATOR_HOST"):
        monkeypatch.delenv(var, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    if expected is None:
        with pytest.raises(ValueError, match="no project"):
            topic_path(topic)
    else:
        assert topic_path(topic) == expected


@pytest.mark.parametrize(("entities", "byts"), [(0, 10), (10, 0)])
def test_limits_must_be_positive(entities: int, byts: int) -> None:
    """Non-positive limits are refused."""
    with pytest.raises(ValueError):
        PublishLimits(max_entities=entities, max_bytes=byts)


async def test_publish_async_runs_in_a_thread() -> None:
    """publish_async publishes the same event as publish."""
    client = FakeClient()
    res = await publisher(client).publish_async(game_date=DAY, affected_entities={"players": ["a"]})
    assert res.published and json.loads(client.calls[0][1])["affected_entities"] == {
        "players": ["a"]
    }


def test_publish_detected_uses_change_detection() -> None:
    """publish_detected sends one event per changed date, ids from the trigger, limits applied."""
    from scoperouter.sdk.change_detection import ChangeDetector

    detector = ChangeDetector(SOURCE, "player")
    detector.observe(
        DAY,
        before={"a": {"points": 1}, "b": {"points": 2}},
        after={"a": {"points": 1}, "b": {"points": 3}},
    )
    detector.observe(date(2025, 11, 20), before={"a": {"points": 1}}, after={"a": {"points": 1}})
    detector.observe(
        date(2025, 11, 21), before={}, after={f"p{i}": {"points": i} for i in range(5)}
    )
    client = FakeClient()
    results = publisher(client, limits=PublishLimits(max_entities=4)).publish_detected(
        detector, SCOPE
    )
    events = [json.loads(data) for _, data, _ in client.calls]
    assert [e["game_date"] for e in events] == ["2025-11-19", "2025-11-21"]
    assert events[0]["affected_entities"] == {"player": ["b"]} and events[0]["changed_fields"] == [
        "points"
    ]
    assert "affected_entities" not in events[1] and results[1].fell_back
    assert all(e["correlation_id"] == "c-9" and e["priority"] == "critical" for e in events)
    again = FakeClient()
    publisher(again, limits=PublishLimits(max_entities=4)).publish_detected(detector, SCOPE)
    assert [json.loads(d)["event_id"] for _, d, _ in again.calls] == [e["event_id"] for e in events]


def test_publish_detected_nothing_changed() -> None:
    """A detector that saw no change publishes nothing."""
    from scoperouter.sdk.change_detection import ChangeDetector

    detector = ChangeDetector(SOURCE, "player")
    detector.observe(DAY, before={"a": {"points": 1}}, after={"a": {"points": 1}})
    client = FakeClient()
    assert publisher(client).publish_detected(detector, SCOPE) == ()
    assert client.calls == []


@pytest.mark.parametrize(
    ("n", "limits", "fell_back"),
    [
        (120, None, False),  # the router's per-processor max_entities decide, after mapping
        (MAX_EVENT_ENTITIES, None, False),
        (MAX_EVENT_ENTITIES + 1, None, True),  # the router would read it as the full date
        (120, PublishLimits(max_entities=100), True),  # a caller's own threshold still applies
    ],
)
def test_default_limit_is_the_routers_size_guard(
    n: int, limits: PublishLimits | None, fell_back: bool
) -> None:
    """By default only the router's MAX_EVENT_ENTITIES (and max_bytes) make an event date level."""
    client = FakeClient()
    pub = CompletionPublisher("t", source=SOURCE, project="p", client=client, limits=limits)
    res = pub.publish(game_date=DAY, affected_entities={"players": [f"p{i:05d}" for i in range(n)]})
    assert (res.fell_back, "affected_entities" not in json.loads(client.calls[0][1])) == (
        fell_back,
        fell_back,
    )

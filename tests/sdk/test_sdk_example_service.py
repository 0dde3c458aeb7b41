"""The example processor service: scoped work on sqlite, change detection, completion events."""

from __future__ import annotations

import base64
import json
import sqlite3
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from examples.processor_service import SEED_ROWS, SOURCE, connect, create_app, seed
from examples.processor_service import service as service_module
from examples.processor_service.service import HISTORY_KEY

from pubsub_fakes import FakeClient as PubsubFake
from scoperouter.sdk import ChangeDetector, CompletionPublisher, PublishLimits


class Done:
    def __init__(self, value: str) -> None:
        self.value = value

    def result(self, timeout: float | None = None) -> str:
        return self.value


class FakeClient:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def publish(self, topic: str, data: bytes, **attrs: str) -> Done:
        self.events.append(json.loads(data))
        return Done(f"m{len(self.events)}")


def push(trigger: dict[str, Any]) -> dict[str, Any]:
    data = base64.b64encode(json.dumps(trigger).encode()).decode()
    return {"message": {"data": data, "attributes": {}, "messageId": "1"}, "subscription": "s"}


def entity_trigger(*ids: str) -> dict[str, Any]:
    return {
        "trigger_id": "t-1",
        "processor": "player_game_summary",
        "game_date": "2025-11-19",
        "start_date": "2025-11-19",
        "end_date": "2025-11-19",
        "scope": "entities",
        "entity_type": "player",
        "entity_ids": list(ids),
        "correlation_id": "c-1",
    }


@pytest.fixture
async def service() -> AsyncIterator[tuple[TestClient[Any, Any], FakeClient, Any]]:
    db = connect()
    seed(db)
    fake = FakeClient()
    publisher = CompletionPublisher(
        "projects/p/topics/done", source=SOURCE, client=fake, limits=PublishLimits(max_entities=3)
    )
    app = create_app(db, publisher)
    async with TestClient(TestServer(app)) as client:
        yield client, fake, db


async def test_legacy_date_trigger_processes_every_player(service: Any) -> None:
    """A date-only message runs the whole date; over the limit the event falls back to date level."""
    client, fake, _ = service
    resp = await client.post("/process", json=push({"game_date": "2025-11-19"}))
    body = await resp.json()
    assert resp.status == 200
    assert body["scope"] == "date" and body["rows_processed"] == len(SEED_ROWS)
    assert len(fake.events) == 1 and "affected_entities" not in fake.events[0]
    assert body["published"][0]["fell_back"] is True


async def test_entity_trigger_touches_only_its_players(service: Any) -> None:
    """An entity trigger recomputes only its ids and publishes exactly the changed ones."""
    client, fake, db = service
    await client.post("/process", json=push({"game_date": "2025-11-19"}))
    db.execute(
        "UPDATE raw_player_stats SET injury_status = 'out' WHERE player_lookup IN ('lebronjames', 'stephencurry')"
    )
    db.commit()
    resp = await client.post("/process", json=push(entity_trigger("lebronjames", "anthonydavis")))
    body = await resp.json()
    assert body["rows_processed"] == 2
    assert body["changed"] == {
        "2025-11-19": {"entities": ["lebronjames"], "fields": ["available", "injury_status"]}
    }
    event = fake.events[-1]
    assert event["affected_entities"] == {"players": ["lebronjames"]}
    assert event["changed_fields"] == ["available", "injury_status"]
    assert event["correlation_id"] == "c-1" and event["source"] == SOURCE
    stale = db.execute(
        "SELECT injury_status FROM player_game_summary WHERE player_lookup = 'stephencurry'"
    ).fetchone()
    assert stale == ("available",)


async def test_unchanged_rerun_publishes_nothing(service: Any) -> None:
    """Running the same scope twice publishes once: the second run changes nothing."""
    client, fake, _ = service
    for _ in range(2):
        await client.post("/process", json=push(entity_trigger("lebronjames")))
    assert len(fake.events) == 1
    assert [r.rows_processed for r in client.app[HISTORY_KEY]] == [1, 1]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"nope", "not_json"),
        (json.dumps({"message": {"data": "???"}}).encode(), "invalid_envelope"),
        (json.dumps(push({"processor": "player_game_summary"})).encode(), "missing_date"),
        (json.dumps(push({**entity_trigger("a"), "processor": "other"})).encode(), "invalid_field"),
    ],
)
async def test_bad_trigger_is_400(service: Any, body: bytes, reason: str) -> None:
    """A malformed or misaddressed trigger answers 400 with the reason; nothing published."""
    client, fake, _ = service
    resp = await client.post("/process", data=body)
    assert resp.status == 400
    assert (await resp.json())["error"] == reason
    assert fake.events == []


class CommitFails:
    """The example's sqlite connection whose first ``commit`` raises (a lost connection)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db, self.commits = db, 0

    def execute(self, *args: Any) -> sqlite3.Cursor:
        return self.db.execute(*args)

    def commit(self) -> None:
        self.commits += 1
        if self.commits == 1:
            raise sqlite3.OperationalError("disk I/O error")
        self.db.commit()

    def rollback(self) -> None:
        self.db.rollback()


class FailsOnSecondDate(ChangeDetector):
    """A detector whose second ``observe`` raises (a transient error half-way through a run)."""

    calls = 0

    def observe(self, day: Any, before: Any, after: Any) -> Any:
        FailsOnSecondDate.calls += 1
        if FailsOnSecondDate.calls == 2:
            raise RuntimeError("transient error on the second date")
        return super().observe(day, before, after)


TWO_DATES = (
    ("lebronjames", "2025-11-19", "LAL", 28, 35.5, "available"),
    ("lebronjames", "2025-11-20", "LAL", 30, 36.0, "available"),
)
RANGE = {"trigger_id": "t-2", "start_date": "2025-11-19", "end_date": "2025-11-20"}


@pytest.mark.parametrize(
    ("fault", "rows", "trigger", "dates"),
    [
        pytest.param(
            "publish", SEED_ROWS, entity_trigger("lebronjames"), ["2025-11-19"], id="publish"
        ),
        pytest.param(
            "commit", SEED_ROWS, entity_trigger("lebronjames"), ["2025-11-19"], id="commit"
        ),
        pytest.param("second-date", TWO_DATES, RANGE, ["2025-11-19", "2025-11-20"], id="half-way"),
    ],
)
async def test_failed_attempt_loses_no_change(
    monkeypatch: pytest.MonkeyPatch,
    fault: str,
    rows: tuple[tuple[Any, ...], ...],
    trigger: dict[str, Any],
    dates: list[str],
) -> None:
    """An attempt failing at publish, at commit or half-way answers 500 and leaves nothing
    written unannounced: the redelivery announces every change under ids of its own."""
    db = connect()
    seed(db, rows)
    client = PubsubFake(fail_on=(1,) if fault == "publish" else ())
    if fault == "second-date":
        FailsOnSecondDate.calls = 0
        monkeypatch.setattr(service_module, "ChangeDetector", FailsOnSecondDate)
    conn: Any = CommitFails(db) if fault == "commit" else db
    app = create_app(
        conn, CompletionPublisher("projects/p/topics/done", source=SOURCE, client=client)
    )
    async with TestClient(TestServer(app)) as http:
        first = await http.post("/process", json=push(trigger))
        assert first.status == 500
        second = await http.post("/process", json=push(trigger))
        assert second.status == 200
    events = [json.loads(data) for data, _ in client.sent]
    assert sorted({e["game_date"] for e in events}) == dates
    retry = events[-len(dates) :]
    assert [e["game_date"] for e in retry] == dates  # the successful attempt's events
    earlier = events[: -len(dates)]  # a failed attempt's copies (its commit failed)
    assert len(earlier) == (1 if fault == "commit" else 0)
    # ... never share an id with the retry's: the router routes the retry's, not a copy
    assert not {e["event_id"] for e in retry} & {e["event_id"] for e in earlier}
    stored = db.execute("SELECT game_date FROM player_game_summary ORDER BY game_date").fetchall()
    assert [d for (d,) in stored] == (dates if fault == "second-date" else ["2025-11-19"])


@pytest.mark.parametrize(
    ("deleted", "trigger", "announced", "kept"),
    [
        pytest.param(
            "player_lookup = 'draymondgreen'",
            {"trigger_id": "t-2", "game_date": "2025-11-19"},
            {"players": ["draymondgreen"]},
            ["anthonydavis", "lebronjames", "stephencurry"],
            id="one-player-full-date",
        ),
        pytest.param(
            "player_lookup = 'draymondgreen'",
            entity_trigger("draymondgreen", "lebronjames"),
            {"players": ["draymondgreen"]},
            ["anthonydavis", "lebronjames", "stephencurry"],
            id="one-player-entity-scope",
        ),
        pytest.param(
            "1 = 1",
            {"trigger_id": "t-2", "game_date": "2025-11-19"},
            None,  # four players: over max_entities=3, date level
            [],
            id="whole-date",
        ),
    ],
)
async def test_player_whose_raw_rows_disappeared_is_announced_and_removed(
    service: Any,
    deleted: str,
    trigger: dict[str, Any],
    announced: dict[str, list[str]] | None,
    kept: list[str],
) -> None:
    """A player whose raw rows were deleted upstream is diffed (removed), announced, and its
    summary row deleted, for an entity scope or a full date."""
    client, fake, db = service
    await client.post("/process", json=push({"game_date": "2025-11-19"}))
    db.execute(f"DELETE FROM raw_player_stats WHERE {deleted}")
    db.commit()
    resp = await client.post("/process", json=push(trigger))
    assert resp.status == 200
    [event] = fake.events[1:]
    assert event["game_date"] == "2025-11-19"
    assert event.get("affected_entities") == announced
    stored = db.execute("SELECT player_lookup FROM player_game_summary ORDER BY 1").fetchall()
    assert [p for (p,) in stored] == kept

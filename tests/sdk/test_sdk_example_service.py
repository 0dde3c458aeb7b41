"""The example processor service: scoped work on sqlite, change detection, completion events."""

from __future__ import annotations

import base64
import json
import sqlite3
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from examples.processor_service import (
    SEED_ROWS,
    SOURCE,
    PlayerGameSummary,
    connect,
    create_app,
    seed,
)
from examples.processor_service import service as service_module
from examples.processor_service.service import HISTORY_KEY

from pubsub_fakes import FakeClient as PubsubFake
from scoperouter.sdk import ChangeDetector, CompletionPublisher, PublishLimits, parse_trigger


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


@pytest.mark.parametrize(
    ("trigger", "records"),
    [
        pytest.param(entity_trigger("lebronjames"), 1, id="entities"),
        pytest.param(
            {"trigger_id": "t-1", "processor": "player_game_summary", "game_date": "2025-11-19"},
            4,
            id="full-date",
        ),
    ],
)
async def test_unchanged_rerun_reports_success(
    service: Any, trigger: dict[str, Any], records: int
) -> None:
    """A rerun that changes nothing publishes no change event but a success report of its
    trigger with the records it processed (docs/ledger.md: an SDK processor reports every
    run), through the outbox like the events."""
    client, fake, db = service
    for _ in range(2):
        await client.post("/process", json=push(trigger))
    first, report = fake.events
    assert first["source"] == SOURCE and "source" not in report
    assert (report["trigger_id"], report["status"]) == ("t-1", "success")
    assert (report["processor"], report["record_count"]) == ("player_game_summary", records)
    assert [r.rows_processed for r in client.app[HISTORY_KEY]] == [records, records]
    assert pending(db) == []


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

    def executemany(self, *args: Any) -> sqlite3.Cursor:
        return self.db.executemany(*args)

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


def pending(db: sqlite3.Connection) -> list[str]:
    """The event ids in the outbox, oldest first."""
    return [i for (i,) in db.execute("SELECT event_id FROM pending_events ORDER BY seq")]


def summary(db: sqlite3.Connection) -> list[tuple[str, str]]:
    return db.execute(
        "SELECT player_lookup, game_date FROM player_game_summary ORDER BY 2, 1"
    ).fetchall()


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
    """An attempt failing at publish, at commit or half-way answers 500; the redelivery
    announces every change exactly once, and no failed attempt published anything it did not
    commit (a failed commit publishes nothing: the events are published after it)."""
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
    sent = [json.loads(data) for data, _ in client.sent]
    events = [e for e in sent if "source" in e]
    assert [e["game_date"] for e in events] == dates  # once each, no failed attempt's copy
    # the retry of a failed publish changed nothing: it reports success
    assert [r["status"] for r in sent if "source" not in r] == (
        ["success"] if fault == "publish" else []
    )
    assert pending(db) == []
    assert [d for _, d in summary(db)] == (dates if fault == "second-date" else ["2025-11-19"])


async def test_publish_failure_after_commit_leaves_events_pending() -> None:
    """A publish failing after the commit answers 500 and leaves the run's events pending
    (rows committed); the next request publishes them first, under the ids computed when the
    rows were written, then its own: nothing lost, nothing published twice."""
    db = connect()
    seed(db)
    client = PubsubFake(fail_on=(1,))
    app = create_app(
        db, CompletionPublisher("projects/p/topics/done", source=SOURCE, client=client)
    )
    async with TestClient(TestServer(app)) as http:
        first = await http.post("/process", json=push(entity_trigger("lebronjames")))
        assert first.status == 500
        assert client.sent == [] and summary(db) == [("lebronjames", "2025-11-19")]
        [stored_id] = pending(db)
        db.execute("UPDATE raw_player_stats SET points = 40 WHERE player_lookup = 'stephencurry'")
        db.commit()
        second = await http.post("/process", json=push(entity_trigger("stephencurry")))
        assert second.status == 200
        body = await second.json()
    events = [json.loads(data) for data, _ in client.sent]
    assert [e["affected_entities"] for e in events] == [
        {"players": ["lebronjames"]},  # the pending event first
        {"players": ["stephencurry"]},
    ]
    assert events[0]["event_id"] == stored_id
    assert [p["event_id"] for p in body["published"]] == [e["event_id"] for e in events]
    assert pending(db) == []


async def test_failure_half_way_rolls_back_rows_and_events(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A run failing half-way through writing leaves neither rows nor pending events."""
    db = connect()
    seed(db, TWO_DATES)
    FailsOnSecondDate.calls = 0
    monkeypatch.setattr(service_module, "ChangeDetector", FailsOnSecondDate)
    client = PubsubFake()
    app = create_app(
        db, CompletionPublisher("projects/p/topics/done", source=SOURCE, client=client)
    )
    async with TestClient(TestServer(app)) as http:
        resp = await http.post("/process", json=push(RANGE))
        assert resp.status == 500
    assert summary(db) == [] and pending(db) == [] and client.sent == []


@pytest.mark.parametrize("restart", ["service-start", "next-run"])
async def test_pending_events_survive_a_restart(tmp_path: Any, restart: str) -> None:
    """Events committed but not published by a process that then died are published by the
    next one on the same database: at the service's start, or by its first run."""
    path = str(tmp_path / "pgs.sqlite")
    db = connect(path)
    seed(db)
    failing = PubsubFake(fail_on=(1,))
    first = PlayerGameSummary(
        db, CompletionPublisher("projects/p/topics/done", source=SOURCE, client=failing)
    )
    scope = parse_trigger(json.dumps(push(entity_trigger("lebronjames"))).encode())
    with pytest.raises(RuntimeError, match="publish failed"):
        first.run(scope)
    [stored_id] = pending(db)
    db.close()

    db = connect(path)
    client = PubsubFake()
    publisher = CompletionPublisher("projects/p/topics/done", source=SOURCE, client=client)
    if restart == "service-start":
        async with TestClient(TestServer(create_app(db, publisher))):
            pass  # no request: the start published them
    else:
        result = PlayerGameSummary(db, publisher).run(scope)
        assert result.changes == {}  # the rows were committed: nothing new to announce
        (_report, report_attrs) = client.sent.pop()  # the run is reported all the same
        assert report_attrs["status"] == "success"
    [(data, attrs)] = client.sent
    event = json.loads(data)
    assert event["event_id"] == attrs["event_id"] == stored_id
    assert event["affected_entities"] == {"players": ["lebronjames"]}
    # published as the first process would have: the trigger's attempt and ids
    assert event["trigger_message_id"] == "1" and attrs["trigger_id"] == "t-1"
    assert event["correlation_id"] == "c-1"
    assert pending(db) == []


async def test_events_are_published_after_the_rows_are_committed(tmp_path: Any) -> None:
    """When an event is published, a reader of the database (a downstream processor the router
    triggers at once) already sees the rows it announces."""
    path = str(tmp_path / "pgs.sqlite")
    db = connect(path)
    seed(db)
    seen: list[list[tuple[str, int]]] = []

    class Reading(PubsubFake):
        def publish(self, topic: str, data: bytes, **attrs: str) -> Any:
            reader = sqlite3.connect(path)
            try:
                seen.append(
                    reader.execute(
                        "SELECT player_lookup, points FROM player_game_summary"
                    ).fetchall()
                )
            finally:
                reader.close()
            return super().publish(topic, data, **attrs)

    client = Reading()
    app = create_app(
        db, CompletionPublisher("projects/p/topics/done", source=SOURCE, client=client)
    )
    async with TestClient(TestServer(app)) as http:
        resp = await http.post("/process", json=push(entity_trigger("lebronjames")))
        assert resp.status == 200
    assert seen == [[("lebronjames", 28)]]


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


@pytest.mark.parametrize(
    "points",
    [
        pytest.param((30, 28, 30), id="flip-flop-A-B-A"),
        pytest.param((30, 28, 30, 28), id="flip-flop-twice"),
    ],
)
def test_redelivery_after_upstream_flip_flop_gets_new_ids(points: tuple[int, ...]) -> None:
    """Each redelivery of one trigger message committing a real change announces it under an
    id of its own, also when the row returns to an earlier delivery's state (the router would
    drop a repeated id as a duplicate: a missed update)."""
    db = connect()
    seed(db)
    client = PubsubFake()
    svc = PlayerGameSummary(
        db, CompletionPublisher("projects/p/topics/done", source=SOURCE, client=client)
    )
    envelope = json.dumps(push(entity_trigger("lebronjames"))).encode()
    svc.run(parse_trigger(envelope))
    client.sent.clear()
    for pts in points:
        db.execute(
            "UPDATE raw_player_stats SET points = ? WHERE player_lookup = 'lebronjames'", (pts,)
        )
        db.commit()
        svc.run(parse_trigger(envelope))  # a redelivery of the same message
    ids = [json.loads(data)["event_id"] for data, _ in client.sent]
    assert len(ids) == len(points) == len(set(ids))

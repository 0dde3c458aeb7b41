"""Publishing never hides a run's outcome: failed and partial events are sent even when
nothing changed, report() takes ids as a list, a retry after a publish failure repeats ids."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

import pytest
from sdk_fakes import FakeClient

from scoperouter.sdk import (
    ChangeDetector,
    CompletionPublisher,
    EntityChanges,
    PublishLimits,
    parse_trigger,
)

SOURCE = "nba_analytics.player_game_summary"
DAY = date(2025, 11, 19)
SCOPE = parse_trigger(
    {
        "trigger_id": "t-1",
        "processor": "player_game_summary",
        "game_date": "2025-11-19",
        "scope": "entities",
        "entity_type": "player",
        "entity_ids": ["a", "b", "c"],
    }
)


def _calls(client: FakeClient) -> list[tuple[dict[str, Any], dict[str, str]]]:
    """What ``client`` published: each message's JSON and its attributes."""
    return [(json.loads(data), attrs) for data, attrs in client.sent]


def _publisher(client: FakeClient, **kwargs: Any) -> CompletionPublisher:
    return CompletionPublisher("done", source=SOURCE, project="p", client=client, **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "status"),
    [
        ({"affected_entities": {}, "status": "failed"}, "failed"),
        ({"affected_entities": {"players": []}, "missed_entities": ["b"]}, "partial"),
        ({"affected_entities": {}, "changed_fields": [], "status": "partial"}, "partial"),
        (
            {"affected_entities": {"players": ["a"]}, "changed_fields": [], "status": "failed"},
            "failed",
        ),
    ],
)
def test_unsuccessful_event_without_changes_is_published(
    kwargs: dict[str, Any], status: str
) -> None:
    """A failed or partial event that names no change still reaches the router."""
    client = FakeClient()
    result = _publisher(client).publish(game_date=DAY, scope=SCOPE, **kwargs)
    assert result.published
    [(event, attrs)] = _calls(client)
    assert event["status"] == status and attrs["trigger_id"] == "t-1"


def test_success_without_changes_is_not_published() -> None:
    """A success that changed nothing (completion_event's None) is not published."""
    client = FakeClient()
    result = _publisher(client).publish_event(None, scope=SCOPE)
    assert (result.published, result.reason, _calls(client)) == (False, "nothing_changed", [])


@pytest.mark.parametrize("missed", ["lebronjames", ["a", ""], ["a", "b "], [" b"]])
def test_report_refuses_bad_missed_ids(missed: Any) -> None:
    """report() refuses a string (it would name each letter), an empty or padded id."""
    client = FakeClient()
    with pytest.raises((TypeError, ValueError)):
        _publisher(client).report(SCOPE, "partial", missed_entities=missed)
    assert _calls(client) == []


def _detector() -> ChangeDetector:
    det = ChangeDetector(SOURCE, "player")
    for i in range(3):
        det.observe(DAY + timedelta(days=i), {"a": {"pts": i}}, {"a": {"pts": i + 1}})
    return det


@pytest.mark.parametrize("fail_on", [(1,), (2,), (3,), (2, 3)])
def test_retry_after_publish_failure_loses_nothing(fail_on: tuple[int, ...]) -> None:
    """A publish failure mid-way raises; retrying the run republishes every date with the same
    ids (the router deduplicates the ones that went out), each with the trigger_id attribute."""
    det = _detector()
    client = FakeClient(fail_on=fail_on)
    for _ in range(1 + len(fail_on)):
        try:
            _publisher(client, limits=PublishLimits(max_entities=1)).publish_detected(det, SCOPE)
            break
        except RuntimeError:
            continue
    else:
        pytest.fail("never published")
    by_date: dict[str, set[str]] = {}
    for event, attrs in _calls(client):
        assert attrs["trigger_id"] == "t-1"
        by_date.setdefault(event["game_date"], set()).add(event["event_id"])
    assert sorted(by_date) == [(DAY + timedelta(days=i)).isoformat() for i in range(3)]
    assert all(len(ids) == 1 for ids in by_date.values())  # one id per date, across retries


@pytest.mark.parametrize(
    ("status", "reported"), [("success", "partial"), ("no_data", "partial"), ("failed", "failed")]
)
def test_report_with_missed_ids_is_not_a_success(status: Any, reported: str) -> None:
    """report(status, missed_entities=...) says partial (a failure stays failed), as events do:
    the ledger closes a success or no_data and would never re-run the missed ids."""
    from scoperouter.router.completion_ref import completion_ref

    client = FakeClient()
    _publisher(client).report(SCOPE, status, missed_entities=["b"])
    [(msg, attrs)] = _calls(client)
    ref = completion_ref(msg)
    assert ref is not None
    assert (msg["status"], attrs["status"], ref.outcome, ref.missed) == (
        reported,
        reported,
        reported,
        ("b",),
    )


def test_missed_ids_of_a_run_that_changed_nothing_reach_the_router() -> None:
    """publish_detected(..., missed_entities=...) of a run with no change publishes its partial
    report instead of dropping the ids (the result names it: no second report needed)."""
    client = FakeClient()
    det = ChangeDetector(SOURCE, "player")
    det.observe(DAY, {"a": {"pts": 1}}, {"a": {"pts": 1}})
    results = _publisher(client).publish_detected(det, SCOPE, missed_entities=["b", "c"])
    [(msg, attrs)] = _calls(client)
    assert [r.event for r in results] == [msg]
    assert (msg["status"], msg["missed_entities"], attrs["trigger_id"]) == (
        "partial",
        ["b", "c"],
        "t-1",
    )


def test_missed_ids_without_a_scope_are_refused_when_nothing_changed() -> None:
    """Missed ids with no trigger to name and no event to carry them: a clear error, not silence."""
    det = ChangeDetector(SOURCE, "player")
    with pytest.raises(ValueError, match="missed_entities"):
        _publisher(FakeClient()).publish_detected(det, missed_entities=["b"])


@pytest.mark.parametrize(
    ("affected", "fields", "sent_fields"),
    [
        ({"players": ["x"]}, [], None),  # entities named, no field: unknown (relevant)
        ({"players": ["x"]}, None, None),
        ({"players": ["x"]}, ["points"], ["points"]),
        ({}, None, None),  # names no entity: date level (SPEC: no entity information)
        ({"players": []}, ["points"], ["points"]),
        (None, [], None),  # date level, fields unknown (SPEC: [] is unknown)
        (None, None, None),
        (None, ["points"], ["points"]),
    ],
)
def test_every_built_success_is_published(
    affected: Any, fields: Any, sent_fields: list[str] | None
) -> None:
    """A caller-built success is always published (the router routes it); an empty
    changed_fields is left out of the event (SPEC: unknown, as a missing one)."""
    client = FakeClient()
    result = _publisher(client).publish(
        game_date=DAY, affected_entities=affected, changed_fields=fields
    )
    assert result.published
    [(event, _)] = _calls(client)
    assert event.get("changed_fields") == sent_fields


def test_first_run_of_compare_sources_is_published() -> None:
    """compare_sources on a first run (no source columns) is not skippable, and the event
    naming its entities is published with its fields unknown (changed_fields=None)."""
    from scoperouter.sdk import compare_sources

    diff = compare_sources(None, {"points": 3})
    assert not diff.skip and diff.changed_columns == ()
    client = FakeClient()
    result = _publisher(client).publish(
        game_date=DAY, affected_entities={"players": ["x"]}, changed_fields=None
    )
    [(event, _)] = _calls(client)
    assert result.published and "changed_fields" not in event


@pytest.mark.parametrize(
    "changes",
    [
        EntityChanges(("x",), ()),  # a key-only row appeared: fields unknown
        EntityChanges(("x",), ("points",)),
    ],
)
def test_built_and_detected_events_name_the_same_fields(changes: EntityChanges) -> None:
    """completion_event and build_completion_event read a change set alike: the same
    affected_entities and changed_fields (none when no field is named)."""
    from scoperouter.sdk import build_completion_event, completion_event

    ev = completion_event(
        source=SOURCE,
        game_date=DAY,
        entity_type="player",
        changes=changes,
        run_id="r",
        entity_plural="players",
    )
    built = build_completion_event(
        source=SOURCE,
        game_date=DAY,
        affected_entities={"players": list(changes.entities)},
        changed_fields=list(changes.fields),
    )
    assert ev is not None
    assert ev["affected_entities"] == built["affected_entities"]
    assert ev.get("changed_fields") == built.get("changed_fields")

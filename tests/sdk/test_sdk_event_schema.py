"""What the SDK publishes agrees with the shipped schemas/event.schema.json (generated from
the router's model: ``scoperouter schema``), and its Pub/Sub attributes name the date by the
registry's date_field."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from sdk_fakes import FakeClient

from scoperouter.schemas import event_schema
from scoperouter.sdk import ChangeDetector, CompletionPublisher, parse_trigger

ROOT = Path(__file__).resolve().parents[2]
DAY = date(2025, 11, 19)
ENVELOPE_TRIGGER = {
    "message": {
        "data": "",
        "messageId": "m-42",
        "attributes": {},
    },
    "subscription": "projects/p/subscriptions/s",
}


def _scope(date_field: str = "game_date") -> Any:
    import base64

    trigger = {
        "trigger_id": "t-1",
        "processor": "p",
        date_field: "2025-11-19",
        "date_field": date_field,
        "scope": "entities",
        "entity_type": "player",
        "entity_ids": ["a", "b"],
    }
    data = base64.b64encode(json.dumps(trigger).encode()).decode()
    return parse_trigger(
        {**ENVELOPE_TRIGGER, "message": {**ENVELOPE_TRIGGER["message"], "data": data}}
    )


def _sent(missed: list[str], date_field: str = "game_date", with_scope: bool = True) -> Any:
    det = ChangeDetector("raw.a", "player", date_field=None if with_scope else date_field)
    det.observe(DAY, before={"a": {"points": 1}}, after={"a": {"points": 2}})
    client = FakeClient()
    pub = CompletionPublisher("projects/p/topics/t", source="raw.a", client=client)
    pub.publish_detected(det, _scope(date_field) if with_scope else None, missed_entities=missed)
    [(data, attrs)] = client.sent
    return json.loads(data), attrs


@pytest.mark.parametrize(
    "schema",
    [
        event_schema(),
        json.loads((ROOT / "schemas" / "event.schema.json").read_text()),
    ],
    ids=["generated", "shipped"],
)
@pytest.mark.parametrize("missed", [[], ["b"]])
def test_sdk_events_validate_against_the_event_schema(
    schema: dict[str, Any], missed: list[str]
) -> None:
    """A change event naming its attempt (trigger_message_id) and missed ids is schema-valid."""
    event, _ = _sent(missed)
    assert event["trigger_message_id"] == "m-42"
    assert ("missed_entities" in event) is bool(missed)
    assert [e.message for e in jsonschema.Draft202012Validator(schema).iter_errors(event)] == []


@pytest.mark.parametrize(
    ("date_field", "with_scope"),
    [("game_date", True), ("business_date", True), ("business_date", False)],
)
def test_attributes_name_the_date_by_its_field(date_field: str, with_scope: bool) -> None:
    """The date attribute is keyed by the date_field (as the router's triggers are), never ''."""
    event, attrs = _sent([], date_field, with_scope)
    assert event[date_field] == "2025-11-19"
    assert attrs[date_field] == "2025-11-19"
    assert "game_date" not in attrs or date_field == "game_date"

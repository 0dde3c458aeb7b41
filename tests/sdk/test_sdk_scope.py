"""Trigger parsing: every transport into a typed Scope, malformed triggers rejected."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pytest
from pydantic import ValidationError

from scoperouter.errors import EventError
from scoperouter.sdk import Scope, TriggerError, parse_trigger

TRIGGER: dict[str, Any] = {
    "trigger_id": "t-77",
    "processor": "player_game_summary",
    "game_date": "2025-11-19",
    "start_date": "2025-11-19",
    "end_date": "2025-11-19",
    "scope": "entities",
    "entity_type": "player",
    "entity_ids": ["lebronjames", "anthonydavis"],
    "reason": "entity_scope",
    "caused_by": ["e-123"],
    "correlation_id": "c-9",
    "priority": "critical",
}


def same_work(a: Scope, b: Scope) -> bool:
    """Two scopes ask for the same work (the nonce of each parse's run aside)."""
    return a.model_copy(update={"run_nonce": None}) == b.model_copy(update={"run_nonce": None})


def envelope(
    payload: object, *, attributes: dict[str, str] | None = None, mid: str = "m-1"
) -> dict[str, Any]:
    data = base64.b64encode(json.dumps(payload).encode()).decode()
    return {
        "message": {"data": data, "attributes": attributes or {}, "messageId": mid},
        "subscription": "projects/p/subscriptions/s",
    }


@dataclass
class FakeMessage:
    """Shape of google.cloud.pubsub_v1 subscriber Message."""

    data: bytes
    attributes: dict[str, str] = field(default_factory=dict)
    message_id: str = "m-2"


@dataclass
class FakeReceived:
    """Shape of pubsub_v1.types.ReceivedMessage (ack_id + message)."""

    message: FakeMessage
    ack_id: str = "ack"


TRANSPORTS: dict[str, Callable[[dict[str, Any]], object]] = {
    "dict": lambda t: t,
    "envelope_dict": lambda t: envelope(t),
    "envelope_bytes": lambda t: json.dumps(envelope(t)).encode(),
    "envelope_str": lambda t: json.dumps(envelope(t)),
    "raw_bytes": lambda t: json.dumps(t).encode(),
    "message": lambda t: FakeMessage(json.dumps(t).encode()),
    "received": lambda t: FakeReceived(FakeMessage(json.dumps(t).encode())),
}


@pytest.mark.parametrize("transport", sorted(TRANSPORTS))
def test_every_transport_parses_the_same_scope(transport: str) -> None:
    """Push envelope (bytes/str/dict), pulled Message/ReceivedMessage and dict give one Scope."""
    scope = parse_trigger(TRANSPORTS[transport](TRIGGER))
    assert scope.scope == "entities" and not scope.is_full_date
    assert scope.entity_type == TRIGGER["entity_type"]
    assert scope.entity_ids == tuple(sorted(TRIGGER["entity_ids"]))
    assert scope.dates == (date.fromisoformat(TRIGGER["game_date"]),)
    assert scope.caused_by == tuple(TRIGGER["caused_by"])
    assert (scope.correlation_id, scope.trigger_id, scope.processor, scope.priority) == (
        TRIGGER["correlation_id"],
        TRIGGER["trigger_id"],
        TRIGGER["processor"],
        TRIGGER["priority"],
    )


def test_envelope_attributes_and_message_id_are_kept() -> None:
    """Attributes and the Pub/Sub messageId of a push envelope are exposed on the Scope."""
    scope = parse_trigger(envelope(TRIGGER, attributes={"scope": "entities", "x": "1"}, mid="777"))
    assert scope.message_id == "777"
    assert dict(scope.attributes) == {"scope": "entities", "x": "1"}


_NO_ID = {k: v for k, v in TRIGGER.items() if k != "trigger_id"}


@pytest.mark.parametrize(
    ("raw", "trigger_id"),
    [
        # a target mapping left the id out of the data: the router's attribute carries it
        (envelope(_NO_ID, attributes={"trigger_id": "t-9"}), "t-9"),
        (FakeMessage(json.dumps(_NO_ID).encode(), {"trigger_id": "t-9"}), "t-9"),
        # the data's id wins over the attribute
        (envelope(TRIGGER, attributes={"trigger_id": "t-other"}), TRIGGER["trigger_id"]),
        # neither: none (an empty attribute is no id)
        (envelope(_NO_ID, attributes={"trigger_id": ""}), None),
        (envelope(_NO_ID), None),
    ],
)
def test_trigger_id_falls_back_to_the_attribute(raw: object, trigger_id: str | None) -> None:
    """A trigger whose data lacks trigger_id takes it from the message's attribute."""
    assert parse_trigger(raw).trigger_id == trigger_id


@pytest.mark.parametrize(
    ("message", "dates"),
    [
        ({"game_date": "2025-11-19"}, ("2025-11-19",)),
        (
            {"start_date": "2025-11-18", "end_date": "2025-11-20"},
            ("2025-11-18", "2025-11-19", "2025-11-20"),
        ),
        (
            {
                "processor": "x",
                "game_date": "2025-11-19",
                "start_date": "2025-11-19",
                "end_date": "2025-11-19",
            },
            ("2025-11-19",),
        ),
        (
            {"game_date": "2025-11-19", "record_count": 450, "event_type": "raw_data_loaded"},
            ("2025-11-19",),
        ),
    ],
)
def test_legacy_date_only_message_is_full_date(
    message: dict[str, Any], dates: tuple[str, ...]
) -> None:
    """A message without scope or entity ids is a full-date scope over its dates."""
    scope = parse_trigger(envelope(message))
    assert scope.is_full_date and scope.legacy
    assert scope.entity_ids == () and scope.entity_type is None
    assert scope.dates == tuple(date.fromisoformat(d) for d in dates)
    assert scope.covers("anyone")


def test_date_scope_trigger_ignores_entity_type() -> None:
    """A router date-scope trigger (entity fields null) is full date."""
    t = {
        **TRIGGER,
        "scope": "date",
        "entity_type": None,
        "entity_ids": None,
        "reason": "fallback_threshold",
    }
    scope = parse_trigger(t)
    assert scope.is_full_date and scope.entity_type is None and not scope.legacy


def test_entity_scope_covers_only_its_ids() -> None:
    """covers() is membership for an entity scope."""
    scope = parse_trigger(TRIGGER)
    assert [scope.covers(i) for i in ("lebronjames", "stephencurry")] == [True, False]


def test_round_trip_to_trigger_dict() -> None:
    """to_trigger_dict() parses back to the same Scope."""
    scope = parse_trigger(TRIGGER)
    assert same_work(parse_trigger(scope.to_trigger_dict()), scope)


BAD: list[tuple[str, object, str, str]] = [
    ("not_json", b"{nope", "not_json", "not valid JSON"),
    ("array", b"[1, 2]", "not_an_object", "JSON object"),
    ("envelope_no_data", {"message": {"attributes": {}}}, "invalid_envelope", "message.data"),
    ("envelope_bad_base64", {"message": {"data": "!!!"}}, "invalid_envelope", "not base64"),
    (
        "envelope_data_not_json",
        {"message": {"data": base64.b64encode(b"hello").decode()}},
        "not_json",
        "message.data",
    ),
    (
        "envelope_bad_attributes",
        {"message": {"data": "e30=", "attributes": {"a": 1}}},
        "invalid_envelope",
        "attributes",
    ),
    ("no_date", {"processor": "x"}, "missing_date", "game_date"),
    ("bad_date", {"game_date": "2025-13-01"}, "invalid_date", "game_date"),
    ("date_not_string", {"game_date": 20251119}, "invalid_date", "game_date"),
    ("half_range", {"start_date": "2025-11-19"}, "invalid_date_range", "end_date"),
    (
        "reversed_range",
        {"start_date": "2025-11-20", "end_date": "2025-11-19"},
        "invalid_date_range",
        "before",
    ),
    (
        "huge_range",
        {"start_date": "0025-01-01", "end_date": "2025-01-01"},
        "invalid_date_range",
        "spans",
    ),
    ("bad_scope", {**TRIGGER, "scope": "team"}, "invalid_field", "'scope'"),
    (
        "entities_without_ids",
        {**TRIGGER, "entity_ids": []},
        "invalid_field",
        "non-empty 'entity_ids'",
    ),
    ("ids_not_strings", {**TRIGGER, "entity_ids": ["a", 3]}, "invalid_field", "'entity_ids'"),
    ("ids_a_string", {**TRIGGER, "entity_ids": "lebronjames"}, "invalid_field", "'entity_ids'"),
    ("date_scope_with_ids", {**TRIGGER, "scope": "date"}, "invalid_field", "must not carry"),
    ("bad_entity_type", {**TRIGGER, "entity_type": "play er"}, "invalid_field", "'entity_type'"),
    ("bad_priority", {**TRIGGER, "priority": "urgent"}, "invalid_field", "'priority'"),
    ("bad_caused_by", {**TRIGGER, "caused_by": [1]}, "invalid_field", "'caused_by'"),
    ("bad_correlation", {**TRIGGER, "correlation_id": 5}, "invalid_field", "'correlation_id'"),
    ("unsupported_object", 42, "invalid_envelope", "cannot read a trigger"),
    (
        "game_date_before_range",
        {"game_date": "2025-11-17", "start_date": "2025-11-18", "end_date": "2025-11-19"},
        "invalid_date_range",
        "outside",
    ),
    (
        "game_date_after_range",
        {**TRIGGER, "game_date": "2025-11-20"},
        "invalid_date_range",
        "outside",
    ),
    (
        "entity_type_trailing_newline",
        {**TRIGGER, "entity_type": "player\n"},
        "invalid_field",
        "'entity_type'",
    ),
    ("game_date_trailing_newline", {"game_date": "2025-11-19\n"}, "invalid_date", "game_date"),
    (
        "non_ascii_digits_date",
        {"game_date": "\uff12\uff10\uff12\uff15-11-19"},
        "invalid_date",
        "game_date",
    ),
    (
        "envelope_message_without_data",
        {"message": {"messageId": "m-1"}},
        "invalid_envelope",
        "message.data",
    ),
]


@pytest.mark.parametrize(("name", "raw", "reason", "needle"), BAD, ids=[b[0] for b in BAD])
def test_malformed_trigger_is_rejected_with_reason(
    name: str, raw: object, reason: str, needle: str
) -> None:
    """Malformed triggers raise TriggerError (an EventError) with a reason and a clear message."""
    with pytest.raises(TriggerError) as info:
        parse_trigger(raw)
    assert isinstance(info.value, EventError)
    assert info.value.reason == reason
    assert needle in str(info.value)


def test_error_names_the_trigger() -> None:
    """A rejected trigger's id is carried on the error."""
    with pytest.raises(TriggerError) as info:
        parse_trigger({**TRIGGER, "priority": "urgent"})
    assert info.value.event_id == TRIGGER["trigger_id"]


@pytest.mark.parametrize(
    ("expect", "ok"), [("player_game_summary", True), ("league_rankings", False)]
)
def test_expect_processor(expect: str, ok: bool) -> None:
    """expect_processor rejects a trigger addressed to another processor."""
    if ok:
        assert parse_trigger(TRIGGER, expect_processor=expect).processor == expect
    else:
        with pytest.raises(TriggerError, match="is for processor"):
            parse_trigger(TRIGGER, expect_processor=expect)


def test_processor_falls_back_to_attribute() -> None:
    """A trigger without 'processor' takes it from the Pub/Sub attribute."""
    t = {k: v for k, v in TRIGGER.items() if k != "processor"}
    assert parse_trigger(envelope(t, attributes={"processor": "p9"})).processor == "p9"


def test_scope_is_frozen() -> None:
    """Scope cannot be mutated."""
    scope = parse_trigger(TRIGGER)
    with pytest.raises(ValidationError):
        scope.entity_ids = ()  # type: ignore[misc]
    assert isinstance(scope, Scope)


def test_real_pubsub_types_parse() -> None:
    """google.cloud.pubsub_v1 ReceivedMessage and PubsubMessage parse like the push envelope."""
    from google.cloud import pubsub_v1

    msg = pubsub_v1.types.PubsubMessage(
        data=json.dumps(TRIGGER).encode(),
        attributes={"processor": "player_game_summary"},
        message_id="55",
    )
    received = pubsub_v1.types.ReceivedMessage(ack_id="ack-1", message=msg)
    for raw in (msg, received):
        scope = parse_trigger(raw)
        assert scope == parse_trigger(
            envelope(TRIGGER, attributes={"processor": "player_game_summary"}, mid="55")
        )


@pytest.mark.parametrize(
    ("game_date", "start", "end"),
    [
        ("2025-11-18", "2025-11-18", "2025-11-20"),
        ("2025-11-19", "2025-11-18", "2025-11-20"),
        ("2025-11-20", "2025-11-18", "2025-11-20"),
    ],
)
def test_game_date_inside_range_is_accepted(game_date: str, start: str, end: str) -> None:
    """A game_date within start_date..end_date (bounds included) parses to that range."""
    scope = parse_trigger({"game_date": game_date, "start_date": start, "end_date": end})
    assert (scope.game_date, scope.dates[0], scope.dates[-1]) == (
        date.fromisoformat(game_date),
        date.fromisoformat(start),
        date.fromisoformat(end),
    )


@pytest.mark.parametrize(
    "message",
    ["queued for retry", {"text": "hello"}, {}, None, ["data"]],
    ids=["string", "object_without_pubsub_keys", "empty_object", "null", "array"],
)
def test_plain_trigger_with_message_field_is_not_an_envelope(message: object) -> None:
    """A plain trigger dict with a non-envelope 'message' key parses as that trigger."""
    raw = {**TRIGGER, "message": message}
    scope = parse_trigger(raw)
    assert same_work(scope, parse_trigger(TRIGGER))
    assert scope.entity_ids == tuple(sorted(TRIGGER["entity_ids"]))


@pytest.mark.parametrize(
    ("name", "fields", "needle"),
    [
        (
            "entities_no_ids",
            {"scope": "entities", "entity_type": "player", "entity_ids": ()},
            "at least one",
        ),
        (
            "entities_empty_id",
            {"scope": "entities", "entity_type": "player", "entity_ids": ("",)},
            "non-empty",
        ),
        ("entities_no_type", {"scope": "entities", "entity_ids": ("a",)}, "entity_type"),
        ("date_with_ids", {"scope": "date", "entity_ids": ("a",)}, "must not carry"),
        (
            "bad_entity_type",
            {"scope": "entities", "entity_type": "player\n", "entity_ids": ("a",)},
            "entity_type",
        ),
        ("reversed", {"scope": "date", "end_date": date(2025, 11, 17)}, "before"),
        ("game_date_outside", {"scope": "date", "game_date": date(2025, 11, 20)}, "outside"),
    ],
    ids=lambda v: v if isinstance(v, str) and " " not in v else None,
)
def test_inconsistent_scope_cannot_be_constructed(
    name: str, fields: dict[str, Any], needle: str
) -> None:
    """Building a Scope directly enforces the same invariants as parse_trigger."""
    base: dict[str, Any] = {"start_date": date(2025, 11, 18), "end_date": date(2025, 11, 19)}
    with pytest.raises(ValidationError, match=needle):
        Scope(**{**base, **fields})


@pytest.mark.parametrize(
    "fields",
    [
        {"scope": "date"},
        {"scope": "date", "game_date": date(2025, 11, 19)},
        {"scope": "entities", "entity_type": "player", "entity_ids": ("a", "b")},
    ],
)
def test_consistent_scope_can_be_constructed(fields: dict[str, Any]) -> None:
    """A directly built, consistent Scope round-trips through its trigger dict."""
    scope = Scope(start_date=date(2025, 11, 18), end_date=date(2025, 11, 19), **fields)
    again = parse_trigger(scope.to_trigger_dict())
    assert (again.scope, again.entity_ids, again.dates) == (
        scope.scope,
        scope.entity_ids,
        scope.dates,
    )

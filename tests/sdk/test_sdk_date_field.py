"""A registry's ``date_field`` (e.g. ``business_date``) travels from the trigger through the
SDK into the completion event: the Scope keeps it, every function given a scope keys the
date by it, and an explicit date_field that contradicts the scope raises."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
from sdk_fakes import FakeClient

from scoperouter.messages.normalize import parse_event_bytes
from scoperouter.processor_registry.compiled import compile_registry
from scoperouter.processor_registry.models import RoutesSpec
from scoperouter.sdk import ChangeDetector, CompletionPublisher, Scope, parse_trigger
from scoperouter.sdk.events import build_completion_event, encode_event

SOURCE = "mart.member_profile"
DAY = date(2026, 3, 4)
REGISTRY = compile_registry(
    RoutesSpec.model_validate(
        {
            "version": 1,
            "date_field": "business_date",
            "entities": {"person": {"plural": "people"}},
            "processors": {
                "member_profile": {
                    "phase": 1,
                    "granularity": "person",
                    "inputs": [{"source": "crm.members"}],
                    "publishes": SOURCE,
                },
                "offers": {
                    "phase": 2,
                    "granularity": "person",
                    "inputs": [{"source": SOURCE}],
                    "publishes": "mart.offers",
                },
            },
        }
    )
)
TRIGGER = {
    "trigger_id": "t-1",
    "processor": "member_profile",
    "business_date": "2026-03-04",
    "date_field": "business_date",
    "start_date": "2026-03-04",
    "end_date": "2026-03-04",
    "scope": "entities",
    "entity_type": "person",
    "entity_ids": ["m-002"],
}


def _scope() -> Scope:
    return parse_trigger(TRIGGER)


def _detector(**kwargs: Any) -> ChangeDetector:
    det = ChangeDetector(SOURCE, "person", entity_plural="people", **kwargs)
    det.observe(DAY, before={"m-002": {"tier": "silver"}}, after={"m-002": {"tier": "gold"}})
    return det


def _built(scope: Scope) -> list[dict[str, Any]]:
    return [
        build_completion_event(
            source=SOURCE, game_date=DAY, affected_entities={"people": ["m-002"]}, scope=scope
        )
    ]


def _published(scope: Scope) -> list[dict[str, Any]]:
    pub = CompletionPublisher("projects/p/topics/t", source=SOURCE, client=FakeClient())
    res = pub.publish(game_date=DAY, affected_entities={"people": ["m-002"]}, scope=scope)
    assert res.event is not None
    return [res.event]


def _detected(scope: Scope) -> list[dict[str, Any]]:
    pub = CompletionPublisher("projects/p/topics/t", source=SOURCE, client=FakeClient())
    return [r.event for r in pub.publish_detected(_detector(), scope) if r.event is not None]


def _outbox(scope: Scope) -> list[dict[str, Any]]:
    pub = CompletionPublisher("projects/p/topics/t", source=SOURCE, client=FakeClient())
    return pub.detected_events(_detector(), scope)


@pytest.mark.parametrize(
    ("trigger", "date_field"),
    [
        (TRIGGER, "business_date"),
        ({"game_date": "2026-03-04"}, "game_date"),
        ({"start_date": "2026-03-04", "end_date": "2026-03-05"}, "game_date"),
    ],
)
def test_scope_keeps_the_date_key(trigger: dict[str, Any], date_field: str) -> None:
    """parse_trigger keeps the trigger's date_field on the Scope (default game_date)."""
    scope = parse_trigger(trigger)
    assert scope.date_field == date_field
    assert scope.to_trigger_dict().get(date_field) == (
        scope.game_date.isoformat() if scope.game_date else None
    )


@pytest.mark.parametrize("make", [_built, _published, _detected, _outbox])
def test_events_built_with_a_scope_use_its_date_field(
    make: Callable[[Scope], list[dict[str, Any]]],
) -> None:
    """Every SDK path given the scope keys the date by business_date, and the router accepts it."""
    [event] = make(_scope())
    assert event["business_date"] == "2026-03-04" and "game_date" not in event
    assert parse_event_bytes(encode_event(event), REGISTRY).game_date == DAY


@pytest.mark.parametrize(
    "call",
    [
        lambda s: build_completion_event(
            source=SOURCE, game_date=DAY, affected_entities=None, scope=s, date_field="game_date"
        ),
        lambda s: CompletionPublisher(
            "projects/p/topics/t", source=SOURCE, client=FakeClient()
        ).publish_detected(_detector(date_field="game_date"), s),
        lambda s: CompletionPublisher(
            "projects/p/topics/t", source=SOURCE, client=FakeClient()
        ).detected_events(_detector(date_field="game_date"), s),
    ],
)
def test_a_date_field_contradicting_the_scope_raises(call: Callable[[Scope], object]) -> None:
    """An explicit date_field other than the scope's is a mistake the router would reject: ValueError."""
    with pytest.raises(ValueError, match="date_field"):
        call(_scope())

"""A trigger naming entity ids without their entity_type (a target ``mapping`` that sends
the date and the ids, not the processor's fixed granularity) parses as the full date, the
safe reading, and the Scope says why (``widened``) instead of the trigger being refused
(a 400, a nack, a dead letter)."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest

from scoperouter.sdk import parse_trigger

ATTRS = {"processor": "p", "game_date": "2025-11-19", "scope": "entities", "trigger_id": "t-1"}


def _message(data: dict[str, Any], attrs: dict[str, str]) -> SimpleNamespace:
    return SimpleNamespace(data=json.dumps(data).encode(), attributes=attrs, message_id="m-1")


@pytest.mark.parametrize(
    "raw",
    [
        _message({"game_date": "2025-11-19", "entity_ids": ["lebronjames"]}, ATTRS),
        {"game_date": "2025-11-19", "scope": "entities", "entity_ids": ["a", "b"]},
        {"game_date": "2025-11-19", "entity_ids": ["a"], "entity_type": None},
    ],
)
def test_ids_without_entity_type_widen_to_the_full_date(raw: Any) -> None:
    """Entity ids without entity_type: the whole date, with Scope.widened saying why."""
    scope = parse_trigger(raw)
    assert scope.is_full_date and scope.entity_ids == () and scope.entity_type is None
    assert scope.widened is not None and "entity_type" in scope.widened


@pytest.mark.parametrize(
    "raw",
    [
        {"game_date": "2025-11-19", "entity_type": "player", "entity_ids": ["a"]},
        {"game_date": "2025-11-19"},
        _message({"game_date": "2025-11-19", "entity_ids": None}, {**ATTRS, "scope": "date"}),
    ],
)
def test_other_triggers_are_not_widened(raw: Any) -> None:
    """A typed entity trigger or a date trigger parses as before, widened None."""
    assert parse_trigger(raw).widened is None

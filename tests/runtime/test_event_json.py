"""shared_ingest.event_json: the log's copy of an event is exactly
``model_dump_json(exclude_defaults=True)``, and fails where it fails."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from pydantic_core import PydanticSerializationError

from scoperouter.messages.models import Event
from scoperouter.runtime.shared_ingest import event_json

DAY = date(2025, 11, 19)
EVENTS: list[dict[str, Any]] = [
    {"event_id": "e-1", "source": "s.t", "game_date": DAY},
    {
        "event_id": "e-2",
        "source": "s.t",
        "game_date": DAY,
        "affected_entities": {"players": ("a", "b")},
        "changed_fields": ("minutes",),
        "priority": "critical",
        "correlation_id": "c-1",
        "produced_at": datetime(2025, 11, 19, 18, 0, tzinfo=UTC),
        "record_count": 3,
    },
    {"event_id": "é-ü-3", "source": "s.t", "start_date": DAY, "end_date": date(2025, 11, 21)},
    {"event_id": "e-4", "source": "s.t", "game_date": DAY, "status": "no_data", "shape": "x"},
    {"event_id": "e-5", "source": "s.t", "game_date": DAY, "skip_downstream": True},
]


@pytest.mark.parametrize("fields", EVENTS, ids=lambda f: f["event_id"])
def test_event_json_equals_model_dump_json(fields: dict[str, Any]) -> None:
    """Same text as pydantic's model_dump_json(exclude_defaults=True)."""
    ev = Event.model_validate(fields)
    assert event_json(ev) == ev.model_dump_json(exclude_defaults=True)


def test_event_json_fails_like_model_dump_json() -> None:
    """A lone surrogate (not UTF-8) raises as model_dump_json does (a dead letter)."""
    ev = Event.model_validate(
        {"event_id": "e-6", "source": "s.t", "game_date": DAY, "correlation_id": "c-\ud800"}
    )
    with pytest.raises(PydanticSerializationError):
        ev.model_dump_json(exclude_defaults=True)
    with pytest.raises(PydanticSerializationError):
        event_json(ev)

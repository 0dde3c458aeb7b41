"""Issue 18: work per event is bounded -- more than MAX_EVENT_ENTITIES ids make a full-date
event, a backfill longer than MAX_BACKFILL_DAYS is rejected (400 / dead letter)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from scoperouter.errors import EventError
from scoperouter.messages.normalize import MAX_BACKFILL_DAYS, MAX_EVENT_ENTITIES, normalize_event
from scoperouter.processor_registry.compiled import compile_registry
from scoperouter.processor_registry.models import RoutesSpec

REG = compile_registry(
    RoutesSpec.model_validate(
        {
            "version": 1,
            "entities": {"player": {}, "team": {}},
            "sources": {"raw.teams": {"entity": "team"}},
            "processors": {
                "p": {"phase": 3, "granularity": "player", "inputs": [{"source": "raw.a"}]},
                "t": {"phase": 3, "granularity": "team", "inputs": [{"source": "raw.teams"}]},
            },
        }
    )
)
DAY = date(2025, 11, 19)


def ids(n: int, prefix: str = "p") -> list[str]:
    return [f"{prefix}{i}" for i in range(n)]


@pytest.mark.parametrize(
    ("entities", "extra", "kept"),
    [
        ({"players": ids(MAX_EVENT_ENTITIES)}, {}, True),
        ({"players": ids(MAX_EVENT_ENTITIES + 1)}, {}, False),
        (
            {"players": ids(MAX_EVENT_ENTITIES // 2), "teams": ids(MAX_EVENT_ENTITIES // 2, "t")},
            {},
            True,
        ),
        (
            {
                "players": ids(MAX_EVENT_ENTITIES // 2),
                "teams": ids(MAX_EVENT_ENTITIES // 2 + 1, "t"),
            },
            {},
            False,
        ),
        ({"players": ids(MAX_EVENT_ENTITIES)}, {"entities_changed": ["extra"]}, False),
        ({"players": ids(100_000)}, {}, False),
        ({"players": ids(MAX_EVENT_ENTITIES) * 3}, {}, True),  # distinct ids are counted
    ],
)
def test_entity_cap_turns_huge_events_into_full_date(
    entities: dict[str, list[str]], extra: dict[str, Any], kept: bool
) -> None:
    """Up to MAX_EVENT_ENTITIES distinct ids (all types together) are kept; more make a full-date event."""
    raw = {
        "event_id": "e",
        "source": "raw.a",
        "game_date": DAY.isoformat(),
        "affected_entities": entities,
        **extra,
    }
    ev = normalize_event(raw, REG)
    assert (ev.affected_entities is not None) == kept


@pytest.mark.parametrize(
    ("days", "ok"),
    [(1, True), (MAX_BACKFILL_DAYS, True), (MAX_BACKFILL_DAYS + 1, False), (3660, False)],
)
def test_backfill_range_cap(days: int, ok: bool) -> None:
    """A backfill of up to MAX_BACKFILL_DAYS days is accepted; a longer one is rejected with invalid_date_range."""
    raw = {"event_id": "b", "source": "raw.a", "start_date": DAY.isoformat(),
           "end_date": (DAY + timedelta(days=days - 1)).isoformat()}  # fmt: skip
    if ok:
        assert len(normalize_event(raw, REG).dates()) == days
        return
    with pytest.raises(EventError) as info:
        normalize_event(raw, REG)
    assert info.value.reason == "invalid_date_range"
    assert "split it into several events" in info.value.detail

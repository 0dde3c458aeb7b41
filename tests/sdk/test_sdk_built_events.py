"""Every completion event the SDK builds is one the router's normaliser accepts, or the SDK
refuses it at once with a clear error (never a dead-lettered completion)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest

from scoperouter.messages.normalize import normalize_event, parse_event_bytes
from scoperouter.processor_registry.loader import load_config
from scoperouter.sdk import build_completion_event, encode_event

REPO = Path(__file__).resolve().parents[2]
SOURCE = "nba_analytics.player_game_summary"
DAY = date(2025, 11, 19)


@pytest.fixture(scope="module")
def reg() -> Any:
    return load_config(REPO / "routes.yaml", with_relations=False).registry


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param(
            {"game_date": None, "start_date": date(2025, 11, 3), "end_date": date(2025, 11, 1)},
            id="reversed-range",
        ),
        pytest.param(
            {"game_date": None, "start_date": date(2023, 10, 1), "end_date": date(2025, 6, 30)},
            id="two-season-range",
        ),
        pytest.param({"affected_entities": {"players": ["lebronjames", ""]}}, id="empty-id"),
        pytest.param({"changed_fields": ["points", ""]}, id="empty-field"),
        pytest.param({"correlation_id": ""}, id="empty-correlation-id"),
    ],
)
def test_built_event_is_accepted_or_refused_at_once(reg: Any, kwargs: dict[str, Any]) -> None:
    """build_completion_event raises at once or returns an event the router normalises."""
    base: dict[str, Any] = {"source": SOURCE, "game_date": DAY, "affected_entities": None}
    try:
        event = build_completion_event(**{**base, **kwargs})
    except (ValueError, TypeError):
        return
    normalize_event(event, reg)
    parse_event_bytes(encode_event(event), reg)

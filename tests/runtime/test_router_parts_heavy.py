"""The ingest queue's heavy-event rule: an event whose range spans more than HEAVY_DAYS
dates runs in a transaction of its own, a game date beside the range or not (the planner
runs every date of such a range: scoperouter.router.event_range)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from scoperouter.messages.models import Event
from scoperouter.runtime.router_parts import HEAVY_DAYS, is_heavy

D = date(2025, 11, 19)
LONG = {"start_date": D - timedelta(days=HEAVY_DAYS), "end_date": D}  # HEAVY_DAYS + 1 dates
SHORT = {"start_date": D - timedelta(days=HEAVY_DAYS - 1), "end_date": D}


@pytest.mark.parametrize(
    ("fields", "heavy"),
    [
        ({"game_date": D}, False),
        (LONG, True),
        (SHORT, False),
        ({"game_date": D, **LONG}, True),
        ({"game_date": D, **SHORT}, False),
        ({"game_date": D, "start_date": D, "end_date": D}, False),
    ],
    ids=["game_date", "long_range", "short_range", "game_date_long_range",
         "game_date_short_range", "trigger_echo"],
)  # fmt: skip
def test_heavy_events(fields: dict[str, Any], heavy: bool) -> None:
    """Only a range longer than HEAVY_DAYS makes an event heavy."""

    class _Item:
        parsed = Event(event_id="e", source="s", **fields)

    assert is_heavy(_Item()) is heavy  # type: ignore[arg-type]

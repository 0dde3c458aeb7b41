"""A range event is a backfill (SPEC section 2: date scope, no lookback, ids ignored): the SDK
builds one only when asked for a backfill; a change over several dates is one event per date."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sdk_fakes import FakeClient

from scoperouter.messages.normalize import normalize_event
from scoperouter.processor_registry.loader import load_config
from scoperouter.sdk import CompletionPublisher, build_completion_event, parse_trigger
from scoperouter.sdk.events import build_completion_events

REPO = Path(__file__).resolve().parents[2]
SOURCE = "nba_analytics.player_game_summary"
D1, D2 = date(2025, 11, 18), date(2025, 11, 19)
RANGE: dict[str, Any] = {"game_date": None, "start_date": D1, "end_date": D2}
SCOPE = parse_trigger(
    {"trigger_id": "t-1", "processor": "player_game_summary", "game_date": "2025-11-19"}
)


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"affected_entities": {"players": ["lebronjames"]}}, id="entities"),
        pytest.param({"affected_entities": None, "changed_fields": ["points"]}, id="fields"),
        pytest.param(
            {"affected_entities": {"players": ["lebronjames"]}, "changed_fields": ["points"]},
            id="both",
        ),
    ],
)
def test_range_with_a_change_is_refused_unless_a_backfill(change: dict[str, Any]) -> None:
    """start/end with ids or fields raises (the router would run it as a backfill: no lookback,
    ids ignored); with backfill=True it is the range event, as asked."""
    with pytest.raises(ValueError, match="backfill"):
        build_completion_event(source=SOURCE, **RANGE, **change)
    event = build_completion_event(source=SOURCE, **RANGE, **change, backfill=True)
    assert (event["start_date"], event["end_date"]) == ("2025-11-18", "2025-11-19")


def test_date_level_range_is_a_backfill_too() -> None:
    """A date-level range (no ids, no fields) also skips its readers' lookback dates: built only
    with backfill=True; date level over several dates is one event per date."""
    with pytest.raises(ValueError, match="backfill"):
        build_completion_event(source=SOURCE, affected_entities=None, **RANGE)
    event = build_completion_event(source=SOURCE, affected_entities=None, **RANGE, backfill=True)
    assert "game_date" not in event and event["start_date"] == "2025-11-18"
    each = build_completion_events(
        source=SOURCE, affected_entities=None, start_date=D1, end_date=D2
    )
    assert [e["game_date"] for e in each] == ["2025-11-18", "2025-11-19"]


def test_each_date_takes_iterables_once() -> None:
    """Generators of ids, fields and missed ids name the change on every date, not the first
    date only (a generator is used up by the first event)."""
    each = build_completion_events(
        source=SOURCE,
        affected_entities={"players": (p for p in ("lebronjames", "anthonydavis"))},
        changed_fields=(f for f in ("points", "rebounds")),
        missed_entities=(m for m in ("jaysontatum",)),
        start_date=D1,
        end_date=D2,
    )
    assert [(e["affected_entities"], e["changed_fields"], e["missed_entities"]) for e in each] == [
        (
            {"players": ["anthonydavis", "lebronjames"]},
            ["points", "rebounds"],
            ["jaysontatum"],
        )
    ] * 2


def test_backfill_flag_needs_a_range() -> None:
    """backfill=True next to a game_date raises: one date is never routed as a backfill."""
    with pytest.raises(ValueError, match="backfill"):
        build_completion_event(source=SOURCE, game_date=D2, affected_entities=None, backfill=True)


@pytest.mark.parametrize(
    ("kwargs", "ids_distinct"),
    [
        pytest.param({}, True, id="random-ids"),
        pytest.param({"scope": SCOPE}, True, id="scope-derived-ids"),
        pytest.param({"event_id": "e-7"}, True, id="given-id-per-date"),
    ],
)
def test_change_over_dates_is_one_event_per_date(
    kwargs: dict[str, Any], ids_distinct: bool
) -> None:
    """build_completion_events gives each date its own single-date event (entity scope and
    lookback at the router), each with the ids and fields, under distinct ids."""
    reg = load_config(REPO / "routes.yaml", with_relations=False).registry
    events = build_completion_events(
        source=SOURCE,
        start_date=D1,
        end_date=D2,
        affected_entities={"players": ["lebronjames"]},
        changed_fields=["points"],
        **kwargs,
    )
    assert [e["game_date"] for e in events] == ["2025-11-18", "2025-11-19"]
    assert all("start_date" not in e for e in events)
    assert all(e["affected_entities"] == {"players": ["lebronjames"]} for e in events)
    assert (len({e["event_id"] for e in events}) == 2) is ids_distinct
    for e in events:
        assert normalize_event(e, reg).game_date is not None  # not a backfill


def test_publish_refuses_a_range_with_a_change_and_publishes_each_date() -> None:
    """publish() with a range and ids raises before sending anything; publish_each_date
    sends one event per date."""
    client = FakeClient()
    pub = CompletionPublisher("done", source=SOURCE, project="p", client=client)
    change: dict[str, Any] = {"affected_entities": {"players": ["x"]}, "changed_fields": ["points"]}
    with pytest.raises(ValueError, match="backfill"):
        pub.publish(**RANGE, **change)
    assert client.sent == []
    results = pub.publish_each_date(start_date=D1, end_date=D2, **change)
    assert [json.loads(d)["game_date"] for d, _ in client.sent] == ["2025-11-18", "2025-11-19"]
    assert all(r.published for r in results)

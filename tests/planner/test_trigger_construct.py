"""Decisions and triggers are built without a second validation (messages/unchecked.py):
each equals, field for field and byte for byte on the wire, the model pydantic validates
from the same values."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from planner_support import D, event, registry_from, relations_for

from scoperouter.messages.models import Trigger
from scoperouter.router.decisions import Decision
from scoperouter.router.planner import planner_for
from scoperouter.router.window_state import CAUSED_BY_CAP, EventIds, WindowState, to_trigger
from scoperouter.runtime.payloads import trigger_bytes
from scoperouter.state.core import trigger_body

DAY = date(2025, 11, 19)
AT = datetime(2025, 11, 19, 20, 1, 2, 345678, tzinfo=UTC)


def window(
    ids: frozenset[str] | None,
    *,
    reason: str | None = None,
    caused: int = 2,
    corr: str | None = None,
    priority: str = "normal",
    etype: str = "player",
) -> WindowState:
    return WindowState(
        processor="player_game_summary",
        day=DAY,
        opened_at=1.0,
        last_at=2.0,
        entity_ids=ids,
        date_reason=reason,  # type: ignore[arg-type]
        caused_by=EventIds(f"e-{i:05d}" for i in range(caused)),
        correlation_id=corr,
        priority=priority,  # type: ignore[arg-type]
        quiet_s=0.0,
        max_wait_s=0.0,
        max_entities=100,
        entity_type=etype,
    )


@pytest.mark.parametrize(
    ("w", "fired_at", "date_field"),
    [
        (window(frozenset({"b", "a"})), AT, "game_date"),  # entity scope, ids sorted
        (window(None, reason="fallback_threshold"), AT, "game_date"),  # date scope
        (window(frozenset()), None, "game_date"),  # empty ids: date scope, not fired yet
        (window(frozenset({"é", "x"}), corr="c-1", priority="critical"), AT, "game_date"),
        (window(frozenset({"a"}), caused=CAUSED_BY_CAP + 5), AT, "game_date"),  # capped
        (window(frozenset({"a"}), etype=""), AT, "business_date"),  # another date key
    ],
)
def test_window_trigger_equals_the_validated_trigger(
    w: WindowState, fired_at: datetime | None, date_field: str
) -> None:
    """to_trigger's unvalidated construction equals Trigger(...) of the same fields, on the wire too."""
    t = to_trigger(w, date_field, fired_at)
    fields = {name: getattr(t, name) for name in Trigger.model_fields}
    v = Trigger(**fields)
    assert t == v
    assert t.model_fields_set == v.model_fields_set and list(dict(t)) == list(dict(v))
    assert trigger_bytes(t) == trigger_bytes(v)
    assert trigger_body(t) == trigger_body(v)
    assert Trigger.model_validate_json(trigger_body(t)) == v


REG = registry_from(
    {
        "version": 1,
        "entities": {"player": {}, "team": {}},
        "relations": {
            "team_players": {"from": "team", "to": "player"},
            "player_team": {"inverse_of": "team_players"},
        },
        "defaults": {"max_entities": 2},
        "processors": {
            "p": {"phase": 3, "granularity": "player", "inputs": [{"source": "raw.a"}]},
            "t": {"phase": 3, "granularity": "team", "inputs": [{"source": "raw.a"}]},
            "q": {"phase": 3, "granularity": "player", "inputs": [{"source": "raw.b"}]},
            "f": {"phase": 3, "granularity": "player",
                  "inputs": [{"source": "raw.a", "fields": ["points"]}]},
        },
    }
)  # fmt: skip


@pytest.mark.parametrize(
    "fields",
    [
        {"source": "raw.a", "affected_entities": {"player": ["p1"]}},  # entity scope
        {"source": "raw.a", "affected_entities": {"player": ["p1", "p2", "p3"]}},  # fallback
        {"source": "raw.a"},  # no entities: date scope
        {"source": "raw.a", "status": "failed"},  # skips
        {"source": "raw.a", "start_date": "2025-11-17", "end_date": "2025-11-19"},  # backfill
    ],
)
def test_planner_decisions_equal_the_validated_decisions(fields: dict[str, object]) -> None:
    """Every decision the planner builds equals Decision(...) of the same fields."""
    rel = relations_for(REG, {"team_players": [(D, "team1", "p1"), (D, "team1", "p2")]})
    ds = planner_for(REG).plan(rel, event(REG, **fields), D)
    assert ds
    for d in ds:
        v = Decision(**{name: getattr(d, name) for name in Decision.model_fields})
        assert d == v and d.model_fields_set == v.model_fields_set
        assert list(dict(d)) == list(dict(v)) and d.model_dump_json() == v.model_dump_json()

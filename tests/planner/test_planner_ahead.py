"""``ahead: {days: N}`` on an input: the event's rows are dated up to N days after its own
date D (production's injury report: one report dated D lists the games of D+1, each row
with its own game_date, ``nbac_injury_report_processor.py:290, :293``), so a run covers
D..D+N past the as-of cap, each with its lookback dates; ids are mapped strictly on D and
tolerantly on the ahead days; a backfill range gains N days after its end.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from planner_support import D, event, registry_from, relations_for
from pydantic import ValidationError

from scoperouter.router.planner import plan


def d(n: int) -> date:
    return D + timedelta(days=n)


def _proc(gran: str, ahead: int | None, **extra: Any) -> dict[str, Any]:
    inp: dict[str, Any] = {"source": "raw.injuries"}
    if ahead is not None:
        inp["ahead"] = {"days": ahead}
    return {"phase": 3, "granularity": gran, "inputs": [inp], **extra}


REG = registry_from(
    {
        "version": 1,
        "entities": {"player": {}, "team": {}},
        "relations": {
            "player_team": {"from": "player", "to": "team"},
            "team_players": {"inverse_of": "player_team"},
        },
        "processors": {
            "by_report_date": _proc("player", None),
            "by_game_date": _proc("player", 1),
            "two_days": _proc("player", 2),
            "teammates": {
                **_proc("player", 1),
                "inputs": [
                    {
                        "source": "raw.injuries",
                        "ahead": {"days": 1},
                        "also_map": {"player": ["player_team", "team_players"]},
                    }
                ],
            },
            "with_lookback": _proc("player", 1, lookback={"days": 2}),
            "capped": {
                **_proc("player", 1, max_entities=2),
                "inputs": [
                    {
                        "source": "raw.injuries",
                        "ahead": {"days": 1},
                        "also_map": {"player": ["player_team", "team_players"]},
                    }
                ],
            },
            "whole_date": _proc("date", 1),
        },
    }
)

# lebron is on LAL on D; on D+1 a trade brings davis to LAL (rows on D+1 only)
ROWS = {
    "player_team": [
        (D, "lebron", "LAL"),
        (D, "reaves", "LAL"),
        (d(1), "lebron", "LAL"),
        (d(1), "reaves", "LAL"),
        (d(1), "davis", "LAL"),
    ]
}
REL = relations_for(REG, ROWS)

# (name, processor, event fields, as_of, expected (reason, scope, ids, dates))
CASES: list[
    tuple[str, str, dict[str, Any], date, tuple[str, str, tuple[str, ...] | None, tuple[date, ...]]]
] = [
    (
        "no_ahead_reads_the_report_date_only",
        "by_report_date",
        {"affected_entities": {"players": ["lebron"]}},
        D,
        ("entity_scope", "entities", ("lebron",), (D,)),
    ),
    (
        "ahead_one_day_past_the_as_of_cap",
        "by_game_date",
        {"affected_entities": {"players": ["lebron"]}},
        D,
        ("entity_scope", "entities", ("lebron",), (D, d(1))),
    ),
    (
        "ahead_two_days",
        "two_days",
        {"affected_entities": {"players": ["lebron"]}},
        D,
        ("entity_scope", "entities", ("lebron",), (D, d(1), d(2))),
    ),
    (
        "ahead_days_follow_the_ids_on_their_own_date",
        "teammates",
        {"affected_entities": {"players": ["lebron"]}},
        D,
        ("entity_scope", "entities", ("davis", "lebron", "reaves"), (D, d(1))),
    ),
    (
        "an_id_unknown_on_an_ahead_day_hides_nothing",
        "teammates",
        {"affected_entities": {"players": ["lebron", "rookie"]}},
        D,
        # rookie has no team on D: empty_mapping on D (strict), full dates D..D+1
        ("empty_mapping", "date", None, (D, d(1))),
    ),
    (
        "lookback_dates_of_each_day_as_of_capped",
        "with_lookback",
        {"affected_entities": {"players": ["lebron"]}},
        d(2),
        ("entity_scope", "entities", ("lebron",), (D, d(1), d(2))),
    ),
    (
        "lookback_past_as_of_only_through_ahead",
        "with_lookback",
        {"affected_entities": {"players": ["lebron"]}},
        D,
        ("entity_scope", "entities", ("lebron",), (D, d(1))),
    ),
    (
        "ahead_ids_past_max_entities_fall_back_to_date",
        "capped",
        {"affected_entities": {"players": ["lebron"]}},
        D,
        ("fallback_threshold", "date", None, (D, d(1))),
    ),
    (
        "date_granularity",
        "whole_date",
        {"affected_entities": {"players": ["lebron"]}},
        D,
        ("date_granularity", "date", None, (D, d(1))),
    ),
    (
        "no_entities",
        "by_game_date",
        {},
        D,
        ("no_entities_in_event", "date", None, (D, d(1))),
    ),
    (
        "backfill_range_gains_days_after_its_end",
        "two_days",
        {"start_date": d(-3).isoformat(), "end_date": d(-2).isoformat()},
        D,
        ("backfill", "date", None, (d(-3), d(-2), d(-1), D)),
    ),
]


@pytest.mark.parametrize(
    ("name", "proc", "fields", "as_of", "want"), CASES, ids=[c[0] for c in CASES]
)
def test_ahead(
    name: str,
    proc: str,
    fields: dict[str, Any],
    as_of: date,
    want: tuple[str, str, tuple[str, ...] | None, tuple[date, ...]],
) -> None:
    """Each case's decision: reason, scope, ids and dates."""
    ev = event(REG, source="raw.injuries", **fields)
    got = next(x for x in plan(REG, REL, ev, as_of) if x.processor == proc)
    assert (got.reason, got.scope, got.entity_ids, got.dates) == want


def test_skips_stay_skips() -> None:
    """An irrelevant or failed event is still a skip with no dates, ahead or not."""
    ev = event(REG, source="raw.injuries", status="failed")
    got = next(x for x in plan(REG, REL, ev, D) if x.processor == "by_game_date")
    assert (got.action, got.reason, got.dates) == ("skip", "upstream_failed", ())


@pytest.mark.parametrize("days", [0, -1, 367, "1", 1.5])
def test_ahead_days_bounds(days: object) -> None:
    """``ahead.days`` is an integer from 1 to 366: anything else is a registry error."""
    doc = {
        "version": 1,
        "entities": {"player": {}},
        "processors": {"p": _proc("player", None)},
    }
    doc["processors"]["p"]["inputs"][0]["ahead"] = {"days": days}
    with pytest.raises(ValidationError):
        registry_from(doc)

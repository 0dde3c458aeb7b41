"""Property: lowering ``max_entities`` never loses a date. For the same event and relation
rows, a decision that falls back to the full date (``fallback_threshold``) covers at least
the dates the entity-scope decision it replaces covered: the joiners a later roster adds
bring their next games at date scope too (the planner's ``date_scope_ids``)."""

from __future__ import annotations

import copy
from datetime import date, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from planner_support import D, registry_from, relations_for
from test_planner_properties import documents, raw_events, relation_rows

from scoperouter.messages.normalize import normalize_event
from scoperouter.router.planner import plan

pytestmark = pytest.mark.timeout(600)

SETTINGS = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

PLAYERS = ("a0", "a1", "a2", "a3")
DAYS = tuple(D + timedelta(days=k) for k in range(-1, 11))
Rows = dict[str, list[tuple[date | None, str, str]]]


def _dates_by_processor(doc: dict[str, Any], rows: Rows, raw: dict[str, Any], as_of: date) -> Any:
    """processor -> the set of dates its decision covers."""
    reg = registry_from(doc)
    ev = normalize_event(raw, reg)
    return {d.processor: set(d.dates) for d in plan(reg, relations_for(reg, rows), ev, as_of)}


def _with_limit(doc: dict[str, Any], limit: int) -> dict[str, Any]:
    """``doc`` with every processor's ``max_entities`` set to ``limit``."""
    out = copy.deepcopy(doc)
    for proc in out["processors"].values():
        proc["max_entities"] = limit
    return out


def _assert_never_shrinks(
    doc: dict[str, Any], rows: Rows, raw: dict[str, Any], as_of: date, lo: int, hi: int
) -> None:
    """Every processor's dates under ``lo`` include its dates under ``hi`` (lo < hi)."""
    high = _dates_by_processor(_with_limit(doc, hi), rows, raw, as_of)
    low = _dates_by_processor(_with_limit(doc, lo), rows, raw, as_of)
    for name, dates in high.items():
        assert dates <= low[name], (name, sorted(dates - low[name]))


@st.composite
def team_cases(draw: st.DrawFn) -> tuple[dict[str, Any], Rows, dict[str, Any], date]:
    """A team (``b0``) whose roster players join on later dates, each playing once or
    twice after joining; a player- or date-granular reader with a games lookback via the
    schedule (sometimes ``ahead`` a day); an event naming the team (sometimes a ghost team
    too: ``empty_mapping``)."""
    on = draw(st.sampled_from(DAYS[:4]))
    joins = [
        draw(st.sampled_from([x for x in DAYS if x <= on])),
        *draw(st.lists(st.sampled_from(DAYS[:9]), min_size=3, max_size=3)),
    ]
    games = [
        draw(st.sets(st.sampled_from([x for x in DAYS if x >= j]), min_size=1, max_size=2))
        for j in joins
    ]
    rows: Rows = {
        "b_members": [
            (d, "b0", x) for x, j in zip(PLAYERS, joins, strict=True) for d in DAYS if d >= j
        ],
        "a_games": [(d, x, "c0") for x, ds in zip(PLAYERS, games, strict=True) for d in ds]
        + ([] if draw(st.booleans()) else [(d, "a9", "c0") for d in DAYS]),
    }
    inp: dict[str, Any] = {"source": "s.one"}
    if draw(st.booleans()):
        inp["ahead"] = {"days": 1}
    doc = {
        "version": 1,
        "entities": {"a": {}, "b": {}, "c": {}},
        "relations": {"a_games": {"from": "a", "to": "c"}, "b_members": {"from": "b", "to": "a"}},
        "processors": {
            "p0": {
                "phase": 4,
                "granularity": draw(st.sampled_from(("a", "a", "date"))),
                "inputs": [inp],
                "lookback": {"games": draw(st.integers(1, 2)), "via": "a_games"},
            }
        },
    }
    teams = ["b0", "b9"] if draw(st.integers(0, 4)) == 0 else ["b0"]
    raw = {
        "event_id": "e",
        "source": "s.one",
        "game_date": on.isoformat(),
        "affected_entities": {"bs": teams},
    }
    return doc, rows, raw, draw(st.sampled_from(DAYS[4:]))


@SETTINGS
@given(team_cases(), st.integers(1, 4))
def test_lowering_max_entities_keeps_the_joiners_dates(
    case: tuple[dict[str, Any], Rows, dict[str, Any], date], lo: int
) -> None:
    """A team event's dates never shrink when max_entities drops below its roster's union."""
    doc, rows, raw, as_of = case
    _assert_never_shrinks(doc, rows, raw, as_of, lo, 8)


@SETTINGS
@given(st.data())
def test_lowering_max_entities_never_loses_a_date(data: st.DataObject) -> None:
    """For any registry, rows and event, each processor's dates never shrink with its limit."""
    doc = data.draw(documents())
    rows = data.draw(relation_rows(doc))
    raw = data.draw(raw_events(doc))
    lo, hi = sorted(data.draw(st.lists(st.integers(1, 8), min_size=2, max_size=2, unique=True)))
    _assert_never_shrinks(doc, rows, raw, data.draw(st.sampled_from(DAYS)), lo, hi)

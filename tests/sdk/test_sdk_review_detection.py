"""Change detection never loses an update: typed diffs (nested too), event ids per run,
an entity that changed is announced even when none of its fields may be named."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sdk_fakes import FakeClient

from scoperouter.sdk import ChangeDetector, CompletionPublisher, EntityChanges, diff_rows

DAY = date(2025, 11, 19)
SOURCE = "nba_raw.nbac_injury_report"


@pytest.fixture(scope="module")
def nba_registry(routes_path: Any) -> Any:
    """The repository's NBA registry, loaded once (a frozen model; each Hypothesis example
    loading it again took most of the property's time)."""
    from scoperouter.processor_registry import load_config

    return load_config(routes_path, with_relations=False).registry


def _same(a: object, b: object) -> bool:
    """The oracle: equal with the same type (and a float's sign) at every depth; NaN equals NaN."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list | tuple):
        assert isinstance(b, list | tuple)
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        assert isinstance(b, dict)
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, float) and isinstance(b, float):
        if math.isnan(a) and math.isnan(b):
            return True
        return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)
    return a == b


def _brute_force(
    before: Mapping[str, Mapping[str, object]],
    after: Mapping[str, Mapping[str, object]],
    ignored: frozenset[str],
) -> EntityChanges:
    """Every entity and field that differs, found the slow way."""
    entities: set[str] = set()
    fields: set[str] = set()
    unknown = False  # a row with no field to name appeared or disappeared
    for eid in set(before) | set(after):
        if (eid in before) != (eid in after):
            entities.add(eid)
            present = before[eid] if eid in before else after[eid]
            named = {f for f in present if f not in ignored}
            fields.update(named)
            unknown = unknown or not named
            continue
        old, new = before[eid], after[eid]
        diff = {
            f for f in set(old) | set(new) if f not in ignored and not _same(old.get(f), new.get(f))
        }
        if diff:
            entities.add(eid)
            fields.update(diff)
    return EntityChanges(
        entities=tuple(sorted(entities)),
        fields=tuple(sorted(fields)),
        added=tuple(sorted(set(after) - set(before))),
        removed=tuple(sorted(set(before) - set(after))),
        fields_unknown=unknown,
    )


_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-2, 2),
    st.sampled_from([0.0, -0.0, 1.0, 2.5, math.nan, math.inf]),
    st.sampled_from(["", "a", "1"]),
)
_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["k", "v"]), inner, max_size=2)
    ),
    max_leaves=6,
)
_rows = st.dictionaries(st.sampled_from(["points", "status", "stats", "processed_at"]), _values)
_snapshots = st.dictionaries(st.sampled_from(["a", "b", "c", "d"]), _rows, max_size=4)


def _twin(value: object, data: st.DataObject) -> object:
    """``value``, or an equal value of another type or sign at some depth (drawn)."""
    if isinstance(value, list):
        return [_twin(v, data) for v in value]
    if isinstance(value, dict):
        return {k: _twin(v, data) for k, v in value.items()}
    twins: list[object] = [value]
    if isinstance(value, bool | int) and value in (0, 1):
        twins += [bool(value), int(value), float(value)]
    elif isinstance(value, float) and value == 0.0:
        twins += [0.0, -0.0, 0]
    return data.draw(st.sampled_from(twins))


@settings(max_examples=400, deadline=None)
@given(before=_snapshots, after=_snapshots, data=st.data())
def test_diff_rows_matches_brute_force(
    before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]], data: st.DataObject
) -> None:
    """diff_rows names exactly the entities and fields a typed, nested comparison finds."""
    # mostly, after is before with a few values swapped for equal ones of another type or
    # sign (1 / 1.0 / True, 0.0 / -0.0), at any depth: the cases a plain == misses
    if data.draw(st.booleans()):
        after = {
            **{eid: {f: _twin(v, data) for f, v in row.items()} for eid, row in before.items()},
            **data.draw(st.dictionaries(st.sampled_from(["c", "d"]), _rows, max_size=1)),
        }
    ignored = frozenset(data.draw(st.sets(st.sampled_from(["processed_at", "status"]))))
    assert diff_rows(before, after, ignore_fields=ignored) == _brute_force(before, after, ignored)


T0 = datetime(2025, 11, 19, 18, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("old", "new", "changed"),
    [
        (1, 1.0, True),  # int -> float: a type change is reported
        (1.0, 1.0, False),
        (math.nan, math.nan, False),  # NaN is not a change by itself
        (math.nan, 1.0, True),
        # equal numbers written otherwise: a change, as their (persisted, unchanged) digests
        # say -- a spurious run at worst, never a missed one
        (0.0, -0.0, True),
        (None, 0, True),  # NULL -> 0
        (Decimal("1.0"), Decimal("1.00"), True),  # NUMERIC: the same number, another text
        (Decimal("1.0"), Decimal("1.1"), True),
        (T0, T0.astimezone(timezone(timedelta(hours=-5))), False),  # the same instant
        (T0, T0 + timedelta(microseconds=1), True),
        (T0, T0.replace(tzinfo=None), True),  # aware -> naive
        ([1, 2], [1, 2.0], True),  # nested int -> float, as at the top level
        ([1], [True], True),  # nested int -> bool (a JSON column)
        ({"k": 1}, {"k": True}, True),
        ({"k": [0]}, {"k": [False]}, True),
        ([1, 2], [2, 1], True),  # order of a repeated field
        ({"k": 1, "v": 2}, {"v": 2, "k": 1}, False),  # key order of a struct
    ],
)
def test_value_changes(old: object, new: object, changed: bool) -> None:
    """A field changes exactly when its value or its type changes, at any depth."""
    got = diff_rows({"a": {"f": old, "g": 1}}, {"a": {"g": 1, "f": new}})
    assert got.entities == (("a",) if changed else ())
    assert got.fields == (("f",) if changed else ())


@pytest.mark.parametrize(
    ("before", "after", "entities", "fields"),
    [
        ({"a": {"f": None}}, {"a": {}}, (), ()),  # NULL and a missing column read alike
        ({"a": {"f": 1}}, {}, ("a",), ("f",)),  # a deleted row
        ({"a": {"team": "LAL"}}, {"b": {"team": "LAL"}}, ("a", "b"), ("team",)),  # key moved
        ({"a": {"f": 1, "g": 2}}, {"a": {"g": 2, "f": 1}}, (), ()),  # column order
    ],
)
def test_row_shapes(
    before: dict[str, dict[str, object]],
    after: dict[str, dict[str, object]],
    entities: tuple[str, ...],
    fields: tuple[str, ...],
) -> None:
    """Deleted rows and rows moving entity are changes of both ids; column order is not."""
    got = diff_rows(before, after)
    assert (got.entities, got.fields) == (entities, fields)


def _run(before: str, after: str) -> list[dict[str, Any]]:
    """One scheduled (trigger-less) run of a raw processor: its published events."""
    det = ChangeDetector(SOURCE, "player")
    det.observe(
        DAY, {"lebronjames": {"injury_status": before}}, {"lebronjames": {"injury_status": after}}
    )
    client = FakeClient()
    CompletionPublisher("done", source=SOURCE, project="p", client=client).publish_detected(det)
    return [json.loads(data) for data, _ in client.sent]


def test_runs_without_trigger_have_distinct_event_ids() -> None:
    """Two runs changing the same field of the same player (Q->O, then O->Q) publish two events
    with distinct ids: the router drops a repeated id as a redelivery (dedup horizon)."""
    [first] = _run("questionable", "out")
    [second] = _run("out", "questionable")
    assert first["event_id"] != second["event_id"]


def test_retry_of_one_run_repeats_its_event_ids() -> None:
    """The same detector published again (a retry after a publish failure) repeats its ids."""
    det = ChangeDetector(SOURCE, "player")
    det.observe(DAY, {"a": {"f": 1}}, {"a": {"f": 2}})
    assert [e["event_id"] for e in det.events()] == [e["event_id"] for e in det.events()]


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ({}, {"lebronjames": {"processed_at": 1}}),  # a row appeared: only ignored columns
        ({"lebronjames": {"processed_at": 1}}, {}),  # a row disappeared
        ({}, {"lebronjames": {}}),  # a row of key columns only appeared
    ],
)
def test_changed_entity_without_nameable_fields_is_published(
    before: dict[str, dict[str, object]], after: dict[str, dict[str, object]]
) -> None:
    """An entity that changed with no field to name is still announced (fields unknown)."""
    det = ChangeDetector(SOURCE, "player", ignore_fields=["processed_at"])
    det.observe(DAY, before, after)
    [event] = det.events(run_id="r")
    assert event["affected_entities"] == {"player": ["lebronjames"]}
    client = FakeClient()
    CompletionPublisher("done", source=SOURCE, project="p", client=client).publish_detected(det)
    [(data, _)] = client.sent
    assert json.loads(data)["affected_entities"] == {"player": ["lebronjames"]}


@pytest.mark.parametrize(
    ("before", "after", "ids"),
    [
        ({1610612747: {"pts": 1}}, {1610612747: {"pts": 2}}, ("1610612747",)),  # NBA team id
        ({22500225: {"pts": 1}}, {"LAL": {"pts": 1}}, ("22500225", "LAL")),  # int and str keys
    ],
)
def test_non_string_entity_keys_reach_the_router(
    nba_registry: Any, before: dict[Any, Any], after: dict[Any, Any], ids: tuple[str, ...]
) -> None:
    """Rows keyed by an INT64 id column: the event names the ids as strings (SPEC: ids are
    strings), which the router accepts, instead of a rejected (dead-lettered) event."""
    from scoperouter.messages.normalize import normalize_event

    reg = nba_registry
    det = ChangeDetector("nba_analytics.player_game_summary", "player")
    det.observe(DAY, before, after)
    [raw] = det.events(run_id="r")
    assert normalize_event(raw, reg).affected_entities == {"player": ids}


@settings(max_examples=150, deadline=None)
@given(
    days=st.lists(st.tuples(_snapshots, _snapshots), min_size=1, max_size=3),
    max_entities=st.integers(1, 4),
    data=st.data(),
)
def test_every_change_reaches_the_router(
    nba_registry: Any,
    days: list[tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]],
    max_entities: int,
    data: st.DataObject,
) -> None:
    """detector -> publish_detected -> the router's normalize: every date with a change has one
    event naming each changed entity (or date level) and each changed field (or none: unknown)."""
    from scoperouter.messages.normalize import normalize_event
    from scoperouter.sdk import PublishLimits

    reg = nba_registry
    source = "nba_analytics.player_game_summary"
    det = ChangeDetector(source, "player", ignore_fields=["processed_at"])
    expected: dict[date, EntityChanges] = {}
    for i, (before, after) in enumerate(days):
        if data.draw(st.booleans()):
            after = {**before, **after}
        day = DAY + timedelta(days=i)
        det.observe(day, before, after)
        truth = _brute_force(before, after, frozenset(["processed_at"]))
        if truth:
            expected[day] = truth
    client = FakeClient()
    pub = CompletionPublisher(
        "done", source=source, project="p", client=client, limits=PublishLimits(max_entities)
    )
    pub.publish_detected(det)
    got = {}
    for raw, _ in client.sent:
        ev = normalize_event(json.loads(raw), reg)
        assert ev.game_date is not None and ev.game_date not in got
        got[ev.game_date] = ev
    assert set(got) == set(expected)
    for day, truth in expected.items():
        ev = got[day]
        if ev.affected_entities is not None:  # else date level: covers every entity
            assert ev.affected_entities == {"player": truth.entities}
        if ev.changed_fields:  # else unknown: relevant to every reader
            assert set(truth.fields) <= set(ev.changed_fields)
        if truth.fields_unknown:  # an entity with no field to name: never narrowed
            assert not ev.changed_fields, (truth, ev.changed_fields)

"""Change detection reads the rows and days processors really hand it: every row is read as
a mapping of column -> value (a BigQuery ``Row`` included, whose iteration yields values),
and anything that is not one is refused with a clear error, never silently diffed wrong."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from google.cloud.bigquery.table import Row

from scoperouter.sdk import ChangeDetector, diff_rows
from scoperouter.sdk.change_detection import field_digests, row_digest, value_digest

REPO = Path(__file__).resolve().parents[2]
DAY = date(2025, 11, 19)
SOURCE = "nba_analytics.player_game_summary"
F2I = {"player_lookup": 0, "points": 1, "injury_status": 2}


def bq(*values: object) -> Row:
    """A ``google.cloud.bigquery`` result row of (player_lookup, points, injury_status)."""
    return Row(values, F2I)


@pytest.mark.parametrize(
    ("before", "after", "entities", "fields"),
    [
        pytest.param(
            {"l": bq("l", 25, "available")},
            {"l": bq("l", 27, "available")},
            ("l",),
            ("points",),
            id="value-changed",
        ),
        pytest.param(
            {"l": bq("l", 25, "available")}, {"l": bq("l", 25, "available")}, (), (), id="same"
        ),
        pytest.param(
            {},
            {"v": bq("v", 0, "out")},
            ("v",),
            ("injury_status", "player_lookup", "points"),
            id="appeared-names-columns",
        ),
        pytest.param(
            {"v": bq("v", 0, "out")},
            {},
            ("v",),
            ("injury_status", "player_lookup", "points"),
            id="removed-names-columns",
        ),
        pytest.param(
            {"l": {"player_lookup": "l", "points": 25, "injury_status": "available"}},
            {"l": bq("l", 25, "available")},
            (),
            (),
            id="dict-vs-row-same",
        ),
        pytest.param(
            {"l": bq("l", 25, "available")},
            {"l": {"player_lookup": "l", "points": 25, "injury_status": "out"}},
            ("l",),
            ("injury_status",),
            id="row-vs-dict-changed",
        ),
    ],
)
def test_bigquery_rows_are_diffed_by_column(
    before: dict[str, Any],
    after: dict[str, Any],
    entities: tuple[str, ...],
    fields: tuple[str, ...],
) -> None:
    """BigQuery Rows are diffed column by column, like dicts (their iteration yields values)."""
    got = diff_rows(before, after)
    assert (got.entities, got.fields) == (entities, fields)


def test_detector_announces_a_change_seen_in_bigquery_rows() -> None:
    """ChangeDetector fed BigQuery Rows publishes the changed player and field."""
    det = ChangeDetector(SOURCE, "player")
    det.observe(DAY, {"l": bq("l", 25, "available")}, {"l": bq("l", 27, "available")})
    [event] = det.events(run_id="r")
    assert (list(event["affected_entities"].values()), event["changed_fields"]) == (
        [["l"]],
        ["points"],
    )


def test_digests_of_a_bigquery_row_are_those_of_its_dict() -> None:
    """row_digest and field_digests read a Row by column, as diff_rows does."""
    row = bq("l", 25, "available")
    as_dict = dict(row.items())
    assert row_digest(row) == row_digest(as_dict)
    assert field_digests(row) == field_digests(as_dict)


@pytest.mark.parametrize(
    "row",
    [
        pytest.param(("l", 25), id="tuple"),
        pytest.param(["l", 25], id="list"),
        pytest.param("l", id="string"),
        pytest.param(25, id="int"),
    ],
)
def test_a_row_without_columns_is_refused(row: object) -> None:
    """A row that is not a mapping of column -> value raises TypeError naming the entity."""
    with pytest.raises(TypeError, match=r"row of entity 'l' .*column"):
        diff_rows({"l": {"points": 1}}, {"l": row})
    with pytest.raises(TypeError, match=r"row of entity 'l' .*column"):
        ChangeDetector(SOURCE, "player").observe(DAY, {}, {"l": row})


@pytest.fixture(scope="module")
def reg() -> Any:
    from scoperouter.processor_registry import load_config

    return load_config(REPO / "routes.yaml", with_relations=False).registry


UNNAMED = [
    pytest.param(None, id="null"),
    pytest.param("", id="empty"),
    pytest.param("  ", id="blank"),
    pytest.param("a\u200b", id="zero-width"),
    pytest.param("lebronjames ", id="trailing-space"),
    pytest.param(" lebronjames", id="leading-space"),
]


@pytest.mark.parametrize("key", UNNAMED)
@pytest.mark.parametrize("others", [{}, {"l": ({"points": 1}, {"points": 2})}])
def test_a_changed_row_whose_id_names_nobody_makes_a_date_level_event(
    reg: Any, key: object, others: dict[str, tuple[dict[str, int], dict[str, int]]]
) -> None:
    """A changed row keyed by None or a blank id is never sent as an id ("None"): the event
    names no entities (full date), as the router reads such an id, with its fields."""
    from scoperouter.messages.normalize import normalize_event

    before = {key: {"points": 10}, **{k: b for k, (b, _) in others.items()}}
    after = {key: {"points": 31}, **{k: a for k, (_, a) in others.items()}}
    changes = diff_rows(before, after)
    assert changes and changes.unnamed == 1 and changes.entities == tuple(others)
    det = ChangeDetector(SOURCE, "player")
    det.observe(DAY, before, after)
    [event] = det.events(run_id="r")
    assert "affected_entities" not in event and event["changed_fields"] == ["points"]
    assert normalize_event(event, reg).affected_entities is None


@pytest.mark.parametrize("key", UNNAMED)
def test_built_event_with_an_id_naming_nobody_is_date_level(reg: Any, key: object) -> None:
    """build_completion_event given such an id leaves affected_entities out (full date) and
    keeps the change: an empty changed_fields is left out too (unknown)."""
    from scoperouter.messages.normalize import normalize_event
    from scoperouter.sdk import build_completion_event

    for fields in (["points"], []):
        event = build_completion_event(
            source=SOURCE,
            game_date=DAY,
            affected_entities={"players": ["lebronjames", key]},
            changed_fields=fields,
        )
        assert "affected_entities" not in event
        assert event.get("changed_fields", []) == fields
        assert normalize_event(event, reg).affected_entities is None


def test_unchanged_row_whose_id_names_nobody_is_no_change() -> None:
    """A row keyed by None that did not change is not a change."""
    changes = diff_rows({None: {"points": 1}}, {None: {"points": 1}})
    assert not changes and changes.unnamed == 0


def test_a_missed_id_naming_nobody_is_refused() -> None:
    """missed_entities with a null id raises (it would be sent as the id 'None')."""
    from scoperouter.sdk import build_completion_event

    with pytest.raises(ValueError, match="missed_entities"):
        build_completion_event(
            source=SOURCE, game_date=DAY, affected_entities=None, missed_entities=[None]
        )


class Stamp(datetime):
    """A datetime subclass, as ``pandas.Timestamp`` is."""


DAYS = [
    pytest.param(DAY, id="date"),
    pytest.param(datetime(2025, 11, 19), id="datetime-midnight"),
    pytest.param(datetime(2025, 11, 19, 19, 30, tzinfo=UTC), id="aware-datetime"),
    pytest.param(Stamp(2025, 11, 19), id="timestamp-subclass"),
]


@pytest.mark.parametrize("day", DAYS)
def test_a_datetime_day_is_its_date(reg: Any, day: date) -> None:
    """A datetime day (a TIMESTAMP column, a pandas Timestamp) is read as its date: the event
    says game_date YYYY-MM-DD, which the router accepts, and merges with the date's others."""
    from scoperouter.messages.normalize import normalize_event
    from scoperouter.sdk import build_completion_event, completion_event

    det = ChangeDetector(SOURCE, "player")
    det.observe(day, {"l": {"points": 1}}, {"l": {"points": 2}})
    det.observe(DAY, {"a": {"points": 1}}, {"a": {"points": 2}})
    assert list(det.changes) == [DAY] and type(next(iter(det.changes))) is date
    [event] = det.events(run_id="r")
    built = build_completion_event(source=SOURCE, game_date=day, affected_entities=None)
    ranged = build_completion_event(
        source=SOURCE,
        game_date=None,
        start_date=day,
        end_date=day,
        affected_entities=None,
        backfill=True,
    )
    single = completion_event(
        source=SOURCE, game_date=day, entity_type="player", changes=diff_rows({}, {"l": {}})
    )
    assert single is not None
    for ev in (event, built, single):
        assert ev["game_date"] == "2025-11-19"
        assert normalize_event(ev, reg).game_date == DAY
    assert (ranged["start_date"], ranged["end_date"]) == ("2025-11-19", "2025-11-19")


@pytest.mark.parametrize("day", ["2025-11-19", 20251119, None])
def test_a_day_that_is_not_a_date_is_refused(day: object) -> None:
    """A day that is not a date (an ISO string, a number) raises TypeError, not a bad event."""
    from scoperouter.sdk import build_completion_event, completion_event

    with pytest.raises(TypeError, match="date"):
        ChangeDetector(SOURCE, "player").observe(day, {}, {"l": {"points": 1}})
    with pytest.raises(TypeError, match="date"):
        completion_event(
            source=SOURCE, game_date=day, entity_type="player", changes=diff_rows({}, {"l": {}})
        )
    if day is not None:  # None is build_completion_event's "a range instead"
        with pytest.raises(TypeError, match="date"):
            build_completion_event(source=SOURCE, game_date=day, affected_entities=None)


IRREGULAR = """version: 1
entities:
  person: {plural: people}
  player: {}
processors:
  p:
    phase: 3
    granularity: person
    inputs: [{source: crm.contacts}]
"""


@pytest.mark.parametrize(
    ("entity_type", "plural", "etype"),
    [
        ("person", "people", "person"),  # an irregular plural: the caller names it
        ("player", None, "player"),  # else the registry's default plural, players
    ],
)
def test_event_key_names_the_entity_type_in_the_registry(
    tmp_path: Path, entity_type: str, plural: str | None, etype: str
) -> None:
    """The detector's affected_entities key is one the registry resolves to the entity type:
    the declared plural when given, else the default plural (SPEC's ``players``)."""
    from scoperouter.processor_registry import load_config

    (tmp_path / "routes.yaml").write_text(IRREGULAR)
    registry = load_config(tmp_path / "routes.yaml", with_relations=False).registry
    det = ChangeDetector("crm.contacts", entity_type, entity_plural=plural)
    det.observe(DAY, {"p1": {"s": 1}}, {"p1": {"s": 2}})
    [event] = det.events(run_id="r")
    [key] = event["affected_entities"]
    assert registry.entity_type_of_key(key) == etype


ET = ZoneInfo("America/New_York")
FOLD0 = datetime(2025, 11, 2, 1, 30, tzinfo=ET)  # 05:30 UTC (EDT)
T0 = datetime(2025, 11, 19, 18, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("old", "new", "changed"),
    [
        pytest.param(FOLD0, FOLD0.replace(fold=1), True, id="dst-fold-an-hour-apart"),
        pytest.param(FOLD0, FOLD0.astimezone(UTC), False, id="same-instant-other-zone"),
        pytest.param(
            FOLD0.replace(fold=1),
            datetime(2025, 11, 2, 6, 30, tzinfo=UTC),
            False,
            id="fold1-is-0630-utc",
        ),
        pytest.param(T0, T0.astimezone(timezone(timedelta(hours=-5))), False, id="utc-vs-offset"),
        pytest.param(T0, T0 + timedelta(microseconds=1), True, id="a-microsecond"),
        pytest.param(T0, T0.replace(tzinfo=None), True, id="aware-vs-naive"),
        pytest.param(T0.replace(tzinfo=None), T0.replace(tzinfo=None), False, id="naive-same"),
    ],
)
def test_aware_datetimes_compare_as_instants(old: datetime, new: datetime, changed: bool) -> None:
    """Aware datetimes are compared by their UTC instants (the DST fold's two 01:30 differ),
    nested too, and their digests agree with the comparison."""
    got = diff_rows({"g": {"t": old, "n": [old]}}, {"g": {"t": new, "n": [new]}})
    assert got.fields == (("n", "t") if changed else ())
    assert (value_digest(old) != value_digest(new)) is changed
    assert (row_digest({"t": old}) != row_digest({"t": new})) is changed

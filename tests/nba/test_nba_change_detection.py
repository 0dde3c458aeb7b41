"""Sender-side change detection (scoperouter.sdk.change_detection)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from scoperouter.sdk.change_detection import (
    ChangeDetector,
    EntityChanges,
    completion_event,
    diff_rows,
    entity_key,
    field_digests,
    row_digest,
    value_digest,
)

D = date(2025, 11, 19)


@pytest.mark.parametrize(
    ("before", "after", "entities", "fields"),
    [
        ({"a": {"x": 1}}, {"a": {"x": 1}}, (), ()),
        ({"a": {"x": 1, "y": 2}}, {"a": {"x": 1, "y": 3}}, ("a",), ("y",)),
        ({"a": {"x": 1}, "b": {"x": 1}}, {"a": {"x": 2}, "b": {"x": 1}}, ("a",), ("x",)),
        ({}, {"a": {"x": 1, "y": None}}, ("a",), ("x", "y")),
        ({"a": {"x": 1}}, {}, ("a",), ("x",)),
        ({"a": {"x": 1}}, {"a": {"x": 1.0}}, ("a",), ("x",)),
        ({"a": {"x": None}}, {"a": {"x": 0}}, ("a",), ("x",)),
        ({"a": {"x": float("nan")}}, {"a": {"x": float("nan")}}, (), ()),
        ({"b": {"x": 1}, "a": {"y": 1}}, {"b": {"x": 2}, "a": {"y": 2}}, ("a", "b"), ("x", "y")),
    ],
)
def test_diff_rows_names_only_what_changed(
    before: dict[str, dict[str, object]],
    after: dict[str, dict[str, object]],
    entities: tuple[str, ...],
    fields: tuple[str, ...],
) -> None:
    """diff_rows lists exactly the entities and fields whose values differ (type-strict)."""
    ch = diff_rows(before, after)
    assert (ch.entities, ch.fields) == (entities, fields)
    assert bool(ch) == bool(entities)


def test_diff_rows_added_removed_and_ignored() -> None:
    """Rows appearing/disappearing are reported; ignored fields never count as a change."""
    ch = diff_rows(
        {"gone": {"v": 1}, "same": {"v": 1, "ts": 1}},
        {"new": {"v": 2}, "same": {"v": 1, "ts": 2}},
        ignore_fields=["ts"],
    )
    assert ch == EntityChanges(("gone", "new"), ("v",), added=("new",), removed=("gone",))


@pytest.mark.parametrize(
    ("a", "b", "equal"),
    [
        ({"x": 1, "y": "s"}, {"y": "s", "x": 1}, True),
        ({"x": 1}, {"x": 1.0}, False),
        ({"x": None}, {}, False),
        ({"x": [1, 2]}, {"x": [2, 1]}, False),
    ],
)
def test_row_digest_is_stable_and_order_free(
    a: dict[str, object], b: dict[str, object], equal: bool
) -> None:
    """Row digests ignore key order and distinguish values, types and missing keys."""
    assert (row_digest(a) == row_digest(b)) is equal


def test_digest_helpers_agree_with_diff() -> None:
    """field_digests / value_digest flag the same fields diff_rows does."""
    old, new = {"x": 1, "y": 2.5, "z": None}, {"x": 1, "y": 2.75, "z": None}
    fd_old, fd_new = field_digests(old), field_digests(new)
    assert [k for k in old if fd_old[k] != fd_new[k]] == list(
        diff_rows({"e": old}, {"e": new}).fields
    )
    assert value_digest({"b": 1, "a": 2}) == value_digest({"a": 2, "b": 1})
    assert row_digest({"x": 1, "y": 2}, fields=["x"]) == row_digest({"x": 1, "y": 3}, fields=["x"])


@pytest.mark.parametrize(
    ("etype", "plural", "key"),
    [
        ("player", None, "player"),
        ("team", None, "team"),
        ("player", "players", "players"),  # the NBA registry's key (name + s)
        ("players", None, "players"),
        ("person", "people", "people"),
    ],
)
def test_entity_key_is_the_declared_plural_else_the_singular(
    etype: str, plural: str | None, key: str
) -> None:
    """Events name an entity type by the plural given (irregular ones included), else by its
    singular name, which every registry accepts (a guessed name + 's' may not be its key)."""
    assert entity_key(etype, plural) == key


def test_completion_event_is_canonical_and_none_when_unchanged() -> None:
    """A change yields the SPEC section 3 event; no change yields None."""
    ch = EntityChanges(("lebronjames",), ("injury_status",))
    ts = datetime(2025, 11, 19, 18, 5, tzinfo=UTC)
    ev = completion_event(
        source="nba_analytics.player_game_summary",
        game_date=D,
        entity_type="player",
        changes=ch,
        run_id="t-1",
        priority="critical",
        correlation_id="c-9",
        produced_at=ts,
        entity_plural="players",
    )
    assert ev is not None
    assert ev == {
        "event_id": ev["event_id"],
        "source": "nba_analytics.player_game_summary",
        "game_date": "2025-11-19",
        "status": "success",
        "affected_entities": {"players": ["lebronjames"]},
        "changed_fields": ["injury_status"],
        "priority": "critical",
        "correlation_id": "c-9",
        "produced_at": "2025-11-19T18:05:00Z",
    }
    again = completion_event(
        source="nba_analytics.player_game_summary",
        game_date=D,
        entity_type="player",
        changes=ch,
        run_id="t-1",
    )
    other = completion_event(
        source="nba_analytics.player_game_summary",
        game_date=D,
        entity_type="player",
        changes=ch,
        run_id="t-2",
    )
    assert again is not None and other is not None
    assert again["event_id"] == ev["event_id"] != other["event_id"]
    assert (
        completion_event(
            source="s", game_date=D, entity_type="player", changes=EntityChanges((), ())
        )
        is None
    )


def test_detector_one_event_per_changed_date() -> None:
    """ChangeDetector merges observations per date and emits events only for dates that changed."""
    det = ChangeDetector(
        "nba_precompute.player_shot_zone_analysis", "player", entity_plural="players"
    )
    d1, d2, d3 = date(2025, 11, 17), date(2025, 11, 18), date(2025, 11, 19)
    det.observe(d2, {"a": {"v": 1}}, {"a": {"v": 2}})
    det.observe(d1, {"a": {"v": 1}}, {"a": {"v": 1}})
    det.observe(d3, {"b": {"w": 1}}, {"b": {"w": 1}, "c": {"w": 0}})
    det.observe(d2, {"b": {"w": 1}}, {"b": {"w": 5}})
    events = det.events(run_id="r")
    assert [e["game_date"] for e in events] == ["2025-11-18", "2025-11-19"]
    assert events[0]["affected_entities"] == {"players": ["a", "b"]}
    assert events[0]["changed_fields"] == ["v", "w"]
    assert events[1]["affected_entities"] == {"players": ["c"]}
    assert det.changed


def test_detector_silent_when_nothing_changed() -> None:
    """A run that rewrote identical rows publishes nothing."""
    det = ChangeDetector("s", "team")
    det.observe(D, {"LAL": {"x": 1}}, {"LAL": {"x": 1}})
    assert det.events() == [] and not det.changed

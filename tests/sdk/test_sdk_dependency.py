"""Dependency-column interop: skip when nothing upstream changed, else list what did."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from scoperouter.sdk import (
    SourceState,
    compare_sources,
    entities_with_upstream_change,
    source_states,
)
from scoperouter.sdk.dependency import column_name, dependency_columns

PREV: dict[str, Any] = {
    "player_lookup": "lebronjames",
    "points": 30,
    "source_nbac_gamebook_last_updated": "2025-11-19T18:00:00Z",
    "source_nbac_gamebook_rows_found": 450,
    "source_nbac_gamebook_completeness_pct": 100.0,
    "source_odds_last_updated": datetime(2025, 11, 19, 17, 0, tzinfo=UTC),
    "source_odds_rows_found": 120,
    "source_odds_completeness_pct": 95.5,
}


@pytest.mark.parametrize(
    ("change", "tolerance", "sources", "fields"),
    [
        ({}, 0.0, (), ()),
        ({"points": 31}, 0.0, (), ()),
        ({"source_nbac_gamebook_last_updated": datetime(2025, 11, 19, 18, 0)}, 0.0, (), ()),
        ({"source_nbac_gamebook_last_updated": "2025-11-19T13:00:00-05:00"}, 0.0, (), ()),
        (
            {"source_nbac_gamebook_last_updated": "2025-11-19T18:05:00Z"},
            0.0,
            ("nbac_gamebook",),
            ("source_nbac_gamebook_last_updated",),
        ),
        ({"source_odds_rows_found": 121}, 0.0, ("odds",), ("source_odds_rows_found",)),
        ({"source_odds_rows_found": "120"}, 0.0, (), ()),
        ({"source_odds_completeness_pct": 95.6}, 0.0, ("odds",), ("source_odds_completeness_pct",)),
        ({"source_odds_completeness_pct": 95.6}, 0.5, (), ()),
        ({"source_odds_completeness_pct": None}, 0.0, ("odds",), ("source_odds_completeness_pct",)),
        (
            {"source_injury_last_updated": "2025-11-19T18:00:00Z"},
            0.0,
            ("injury",),
            tuple(f"source_injury_{s}" for s in ("last_updated", "rows_found", "completeness_pct")),
        ),
    ],
)
def test_compare_sources(
    change: dict[str, Any], tolerance: float, sources: tuple[str, ...], fields: tuple[str, ...]
) -> None:
    """Only real moves of the tracking columns count; equal instants in other zones do not."""
    diff = compare_sources(PREV, {**PREV, **change}, completeness_tolerance=tolerance)
    assert diff.changed_sources == sources
    assert diff.changed_columns == fields
    assert diff.skip is (not sources)


def test_removed_source_counts_as_change() -> None:
    """A source present before but gone now is a change."""
    cur = {k: v for k, v in PREV.items() if not k.startswith("source_odds_")}
    assert compare_sources(PREV, cur).changed_sources == ("odds",)


def test_first_run_is_never_skipped() -> None:
    """previous=None: not skippable, every current column listed."""
    diff = compare_sources(None, PREV)
    assert diff.first_run and not diff.skip
    assert diff.changed_sources == ("nbac_gamebook", "odds")
    assert len(diff.changed_columns) == 6
    assert diff.reason == "no previous run"


def test_sources_filter() -> None:
    """sources= restricts the comparison to the named prefixes."""
    cur = {**PREV, "source_odds_rows_found": 1, "source_nbac_gamebook_rows_found": 1}
    assert compare_sources(PREV, cur, sources=["odds"]).changed_sources == ("odds",)


def test_source_states_parses_prefixes_with_underscores() -> None:
    """Prefixes may contain underscores; values are typed."""
    states = source_states(PREV)
    assert set(states) == {"nbac_gamebook", "odds"}
    assert states["nbac_gamebook"] == SourceState(
        last_updated=datetime(2025, 11, 19, 18, 0, tzinfo=UTC),
        rows_found=450,
        completeness_pct=100.0,
    )


@pytest.mark.parametrize(
    "bad",
    [
        {"source_x_rows_found": 1.5},
        {"source_x_rows_found": True},
        {"source_x_last_updated": "yesterday"},
        {"source_x_completeness_pct": "lots"},
        {"source_x_last_updated": 5},
    ],
)
def test_bad_values_raise(bad: dict[str, Any]) -> None:
    """Unparseable tracking values raise ValueError naming the column."""
    with pytest.raises(ValueError, match="source_x_"):
        source_states(bad)


def test_columns_round_trip() -> None:
    """dependency_columns writes what source_states reads back."""
    state = SourceState(datetime(2025, 1, 1, tzinfo=UTC), 3, 50.0)
    assert source_states(dependency_columns("odds_api", state)) == {"odds_api": state}
    with pytest.raises(ValueError):
        column_name("odds", "rows")


def test_entities_with_upstream_change() -> None:
    """Only entities whose tracking columns moved (or are new) are returned."""
    prev = {"a": PREV, "b": PREV}
    cur = {"a": PREV, "b": {**PREV, "source_odds_rows_found": 7}, "c": PREV}
    assert entities_with_upstream_change(prev, cur) == ("b", "c")


@pytest.mark.parametrize(
    "key", ["source_odds_rows_found\n", "source_odds_rows_found ", "xsource_odds_rows_found"]
)
def test_source_states_ignores_near_miss_column_names(key: str) -> None:
    """A key that only resembles source_{prefix}_{suffix} (e.g. trailing newline) is ignored."""
    assert source_states({key: 5}) == {}
    assert source_states({key.strip().removeprefix("x"): 5})["odds"].rows_found == 5


HASHED: dict[str, Any] = {
    **PREV,
    "source_nbac_gamebook_hash": "a3f5c2",
    "source_odds_hash": "b7e2d9",
}


@pytest.mark.parametrize(
    ("change", "sources", "fields"),
    [
        # a rewrite with the same content: last_updated moved, hash equal -> no change
        ({"source_nbac_gamebook_last_updated": "2025-11-19T18:05:00Z"}, (), ()),
        ({"source_odds_rows_found": 121}, (), ()),
        # same counts, new content: only the hash tells
        ({"source_odds_hash": "ffffff"}, ("odds",), ("source_odds_hash",)),
        ({"source_odds_hash": "ffffff", "source_odds_rows_found": 121}, ("odds",),
         ("source_odds_rows_found", "source_odds_hash")),
        # a hash that disappears (upstream without data_hash) is a change
        ({"source_odds_hash": None}, ("odds",), ("source_odds_hash",)),
        # a new source brings its four columns
        ({"source_injury_last_updated": "2025-11-19T18:00:00Z", "source_injury_hash": "c1"}, ("injury",),
         tuple(f"source_injury_{s}" for s in ("last_updated", "rows_found", "completeness_pct", "hash"))),
    ],
)  # fmt: skip
def test_hash_column_decides_when_both_runs_have_it(
    change: dict[str, Any], sources: tuple[str, ...], fields: tuple[str, ...]
) -> None:
    """The fourth column, source_{prefix}_hash, decides as production's should_skip_processing."""
    diff = compare_sources(HASHED, {**HASHED, **change})
    assert (diff.changed_sources, diff.changed_columns) == (sources, fields)


def test_hash_round_trip_and_first_run() -> None:
    """dependency_columns writes the hash; a first run lists all four columns per source."""
    state = SourceState(datetime(2025, 1, 1, tzinfo=UTC), 3, 50.0, "abc")
    assert source_states(dependency_columns("odds_api", state)) == {"odds_api": state}
    assert len(compare_sources(None, HASHED).changed_columns) == 8
    with pytest.raises(ValueError, match="source_x_hash"):
        source_states({"source_x_hash": 5})


EMPTY_HASHES: dict[str, Any] = {**HASHED, "source_nbac_gamebook_hash": "", "source_odds_hash": ""}


@pytest.mark.parametrize(
    ("change", "sources"),
    [
        # upstream rewritten, no hash either time: the base columns decide, as without a hash
        ({"source_odds_last_updated": "2025-11-19T18:05:00Z"}, ("odds",)),
        ({"source_odds_rows_found": 121}, ("odds",)),
        ({}, ()),
    ],
)
def test_empty_hash_is_no_hash(change: dict[str, Any], sources: tuple[str, ...]) -> None:
    """An empty hash is none (metadata_mixin.py:246 keeps only truthy hashes): two empty
    hashes never make a moved upstream look unchanged."""
    diff = compare_sources(EMPTY_HASHES, {**EMPTY_HASHES, **change})
    assert diff.changed_sources == sources


def test_entity_whose_upstream_disappeared_is_returned() -> None:
    """An entity tracked by the previous run with no upstream rows now must be reprocessed
    (its output row is stale): it is returned like a new one."""
    prev = {"a": PREV, "gone": PREV}
    cur = {"a": PREV}
    assert entities_with_upstream_change(prev, cur) == ("gone",)


@pytest.mark.parametrize("name", ["odds", "source_odds"])
def test_sources_filter_takes_production_field_prefix(name: str) -> None:
    """sources= accepts get_dependencies()'s field_prefix (``source_odds``,
    player_game_summary_processor.py:306) as well as the bare prefix: a moved source is seen."""
    cur = {**PREV, "source_odds_rows_found": 1}
    diff = compare_sources(PREV, cur, sources=[name])
    assert (diff.changed_sources, diff.skip) == (("odds",), False)


@pytest.mark.parametrize("previous", [PREV, None])
def test_sources_filter_refuses_an_unknown_source(previous: dict[str, Any] | None) -> None:
    """A source named in sources= that neither row records is an error, never 'unchanged'."""
    with pytest.raises(ValueError, match="source_nbac"):
        compare_sources(previous, PREV, sources=["source_nbac"])


CORRECTED = {**HASHED, "source_nbac_gamebook_hash": "changed"}


@pytest.mark.parametrize(
    ("previous", "columns"),
    [
        (HASHED, ("source_nbac_gamebook_hash",)),
        (None, tuple(sorted(k for k in HASHED if k.startswith("source_")))),
    ],
)
def test_upstream_diff_names_columns_not_event_fields(
    previous: dict[str, Any] | None, columns: tuple[str, ...]
) -> None:
    """An UpstreamDiff names the tracking columns that moved as changed_columns; it offers no
    changed_fields (a consumer's fields: would skip an event naming these columns)."""
    diff = compare_sources(previous, CORRECTED)
    assert sorted(diff.changed_columns) == sorted(columns)
    with pytest.raises(AttributeError, match="changed_columns"):
        diff.changed_fields  # noqa: B018


@pytest.mark.parametrize(
    "doc",
    ["README.md", "docs/migration.md", "src/scoperouter/sdk/dependency.py"],
)
def test_docs_never_publish_tracking_columns_as_changed_fields(doc: str) -> None:
    """No doc tells a reader to publish compare_sources' columns as an event's changed_fields."""
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / doc).read_text()
    assert "changed_fields=diff." not in text
    assert "`.changed_fields` otherwise" not in text
    assert "to fill\n`changed_fields`" not in text


ODDS = {
    "source_odds_last_updated": "2025-11-19T18:00:00Z",
    "source_odds_rows_found": 10,
    "source_odds_completeness_pct": 100.0,
}
BOX = {
    "source_box_last_updated": "2025-11-19T18:00:00Z",
    "source_box_rows_found": 1,
    "source_box_completeness_pct": 100.0,
}


@pytest.mark.parametrize(
    ("previous", "current", "sources", "changed"),
    [
        # one entity without the source filtered on (a rookie with no odds) is no error
        (
            {"a": ODDS, "rookie": BOX},
            {"a": {**ODDS, "source_odds_rows_found": 11}, "rookie": BOX},
            ["odds"],
            ("a",),
        ),
        ({"a": ODDS, "rookie": BOX}, {"a": ODDS, "rookie": BOX}, ["source_odds"], ()),
        # the rookie's odds appear: a change of that source
        ({"a": ODDS, "rookie": BOX}, {"a": ODDS, "rookie": {**BOX, **ODDS}}, ["odds"], ("rookie",)),
    ],
)
def test_sources_filter_is_checked_against_every_entity(
    previous: dict[str, Any], current: dict[str, Any], sources: list[str], changed: tuple[str, ...]
) -> None:
    """entities_with_upstream_change checks sources= against all rows, not each entity's."""
    assert entities_with_upstream_change(previous, current, sources=sources) == changed


def test_sources_filter_unknown_to_every_entity_raises() -> None:
    """A source no entity records is still an error, never 'nothing changed'."""
    with pytest.raises(ValueError, match="nbac"):
        entities_with_upstream_change({"a": ODDS}, {"a": ODDS}, sources=["nbac"])


@pytest.mark.parametrize(
    ("previous", "current", "skip"),
    [
        ({"source_odds_rows_found": float("nan")}, {"source_odds_rows_found": 3}, False),
        ({"source_odds_rows_found": float("nan")}, {"source_odds_rows_found": None}, True),
        ({"source_odds_rows_found": 3}, {"source_odds_rows_found": float("nan")}, False),
    ],
)
def test_nan_rows_found_is_not_recorded(
    previous: dict[str, Any], current: dict[str, Any], skip: bool
) -> None:
    """A NaN row count (a NULL INT64 read through pandas) reads as not recorded (None)."""
    assert compare_sources(previous, current).skip is skip

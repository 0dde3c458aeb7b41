"""The package ``scoperouter.sdk`` re-exports the SDK's public API, change detection included."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from types import ModuleType

import pytest

import scoperouter.sdk as sdk
from scoperouter.sdk import bigquery, change_detection, dependency, publisher, scope

DAY = date(2025, 11, 19)


@pytest.mark.parametrize(
    ("name", "module"),
    [
        ("ChangeDetector", change_detection),
        ("EntityChanges", change_detection),
        ("completion_event", change_detection),
        ("diff_rows", change_detection),
        ("CompletionPublisher", publisher),
        ("build_completion_event", publisher),
        ("parse_trigger", scope),
        ("entity_filter", bigquery),
        ("compare_sources", dependency),
    ],
)
def test_name_is_reexported_from_its_module(name: str, module: ModuleType) -> None:
    """``scoperouter.sdk.<name>`` is listed in ``__all__`` and is the defining module's object."""
    assert name in sdk.__all__
    assert getattr(sdk, name) is getattr(module, name)


def test_all_names_resolve() -> None:
    """Every name in ``scoperouter.sdk.__all__`` exists (``from scoperouter.sdk import *`` works)."""
    missing = [n for n in sdk.__all__ if not hasattr(sdk, n)]
    assert missing == []
    assert len(set(sdk.__all__)) == len(sdk.__all__)


@pytest.mark.parametrize(
    ("before", "after", "entities"),
    [
        ({"a": {"pts": 1}, "b": {"pts": 2}}, {"a": {"pts": 1}, "b": {"pts": 3}}, ["b"]),
        ({"a": {"pts": 1}}, {"a": {"pts": 1}}, None),
        ({}, {"c": {"pts": 0}}, ["c"]),
    ],
)
def test_change_detection_from_package_root(
    before: dict[str, dict[str, object]],
    after: dict[str, dict[str, object]],
    entities: list[str] | None,
) -> None:
    """ChangeDetector and completion_event imported from ``scoperouter.sdk`` name only changed entities."""
    det = sdk.ChangeDetector("nba_analytics.player_game_summary", "player")
    changes = det.observe(DAY, before, after)
    ev = sdk.completion_event(
        source=det.source, game_date=DAY, entity_type="player", changes=changes, run_id="t-1"
    )
    if entities is None:
        assert ev is None
        assert det.events() == []
    else:
        assert ev is not None
        assert ev["affected_entities"] == {"player": entities}  # the singular: no plural given
        # the detector's event also says how many entities the run processed on the date
        assert det.events(run_id="t-1") == [{**ev, "record_count": len(set(before) | set(after))}]


def test_detector_events_become_completion_rows(routes_path: Path) -> None:
    """A ChangeDetector event carries record_count, so the router logs processed vs changed."""
    from scoperouter.execution_log.completions import completion_from_event
    from scoperouter.messages.normalize import normalize_event
    from scoperouter.processor_registry import load_config

    reg = load_config(routes_path, with_relations=False).registry
    det = sdk.ChangeDetector("nba_analytics.player_game_summary", "player")
    det.observe(
        DAY, {"a": {"pts": 1}, "b": {"pts": 2}}, {"a": {"pts": 1}, "b": {"pts": 3}, "c": {"pts": 0}}
    )
    [raw] = det.events(run_id="t-1")
    report = completion_from_event(reg, normalize_event(raw, reg))
    assert report is not None
    assert (report.processor, report.records_processed, report.entities_changed) == (
        "player_game_summary",
        3,
        2,
    )

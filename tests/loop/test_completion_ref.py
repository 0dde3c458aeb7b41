"""Reading which trigger a completion message closes: the SDK's trigger_id, production's
unified fields (shared/publishers/unified_pubsub_publisher.py:84-94,192-212), legacy
shapes, and messages that are no completion at all."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from scoperouter.router.completion_ref import completion_ref, is_report_only

D = "2025-11-19"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"trigger_id": "t-1", "status": "success"}, ("success", "t-1", None, None, None)),
        (
            {"metadata": {"trigger_id": "t-1"}, "status": "failed", "error_message": "boom"},
            ("failed", "t-1", None, None, "boom"),
        ),
        (
            {
                "processor_name": "PlayerGameSummaryProcessor",
                "phase": "phase_3_analytics",
                "execution_id": "run-7",
                "game_date": D,
                "status": "partial",
                "trigger_message_id": "m-3",
                "parent_processor": "NbacGamebookProcessor",
                "output_table": "player_game_summary",
            },
            ("partial", None, "m-3", "PlayerGameSummaryProcessor", None),
        ),
        ({"processor": "p", "game_date": D, "success": False}, ("failed", None, None, "p", None)),
        ({"trigger_id": "t-1", "status": "weird"}, None),  # an unknown status: not a report
        ({"event_id": "e1", "source": "raw.a", "game_date": D}, None),  # a plain event
        ("not a mapping", None),
    ],
)
def test_completion_ref(raw: Any, expected: tuple[Any, ...] | None) -> None:
    """Outcome, trigger id, message id, processor and error, or None."""
    ref = completion_ref(raw)
    got = (
        None
        if ref is None
        else (ref.outcome, ref.trigger_id, ref.message_id, ref.processor, ref.error)
    )
    assert got == expected


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        ("SUCCESS", "success"),
        ("Success", "success"),
        (" success ", "success"),
        ("PARTIAL", "partial"),
        ("No_Data", "no_data"),
        ("FAILED", "failed"),
    ],
)
def test_status_is_read_in_any_case(status: str, outcome: str) -> None:
    """A status is read as the normaliser reads it (stripped, any case): SUCCESS closes."""
    ref = completion_ref({"trigger_id": "t-1", "processor": "p", "status": status})
    assert ref is not None and ref.outcome == outcome


def test_unified_fields_are_kept() -> None:
    """execution_id, parent_processor, the date and missed ids are read."""
    ref = completion_ref(
        {
            "processor": "p",
            "game_date": D,
            "status": "partial",
            "execution_id": "x",
            "parent_processor": "u",
            "missed_entities": ["b", "a", "b"],
        }
    )
    assert ref is not None
    assert (ref.day, ref.execution_id, ref.parent_processor, ref.missed) == (
        date(2025, 11, 19),
        "x",
        "u",
        ("a", "b"),
    )


@pytest.mark.parametrize(
    ("raw", "report"),
    [
        ({"trigger_id": "t"}, True),
        ({"trigger_id": "t", "source": "a.b"}, False),
        ({"trigger_id": "t", "output_table": "x"}, False),
        ({"trigger_id": "t", "source": None}, True),
        ({"trigger_id": "t", "output_table": None, "output_dataset": None}, True),
        ({"trigger_id": "t", "output_dataset": "nba_analytics"}, True),
        ({"trigger_id": "t", "source": None, "source_table": "a.b"}, False),
    ],
)
def test_report_only(raw: dict[str, Any], report: bool) -> None:
    """A message without a source (absent or null, SPEC 3) is a bare report (routes nothing)."""
    assert is_report_only(raw) is report


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("trigger_id", "t-1"),
        ("trigger_message_id", "m-1"),
        ("processor", "player_game_summary"),
        ("execution_id", "run-7"),
        ("parent_processor", "up"),
        ("event_id", "e-1"),
        ("missed_entities", ["lebronjames"]),
    ],
)
def test_top_level_null_never_hides_metadata(key: str, value: Any) -> None:
    """A top-level null (SPEC 3: dropped) reads the metadata value, as if absent."""
    base: dict[str, Any] = {"status": "partial", "game_date": D, "metadata": {key: value}}
    if key not in ("trigger_id", "trigger_message_id", "processor"):
        base["trigger_id"] = "t-0"
    assert completion_ref({**base, key: None}) == completion_ref(base)


REGISTRY = ("player_game_summary", "ml_feature_store", "league_rankings")


@pytest.mark.parametrize(
    ("name", "processor"),
    [
        # production's processor_name is the class name (najicham/nba-stats-scraper
        # data_processors/analytics/analytics_base.py:1640, processor_name=self.__class__.__name__)
        ("PlayerGameSummaryProcessor", "player_game_summary"),
        # data_processors/precompute/ml_feature_store/ml_feature_store_processor.py:439
        ("MLFeatureStoreProcessor", "ml_feature_store"),
        ("player_game_summary", "player_game_summary"),
        ("TeamDefenseGameSummaryProcessor", "TeamDefenseGameSummaryProcessor"),  # not in it
        ("PlayerGameSummary", "PlayerGameSummary"),  # no Processor suffix: not a class name
        ("LeagueRankingsProcessor", "league_rankings"),
    ],
)
def test_class_name_reads_as_its_registry_processor(name: str, processor: str) -> None:
    """A class name (CamelCase + Processor) is its snake_case processor, only if registered."""
    raw = {"processor_name": name, "game_date": D, "status": "failed"}
    ref = completion_ref(raw, processors=REGISTRY)
    assert ref is not None and ref.processor == processor
    assert completion_ref(raw) == completion_ref(raw, processors=None)  # no registry: as sent

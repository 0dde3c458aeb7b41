"""Normalisation of every event shape (SPEC section 3) and precise rejection reasons."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from planner_support import D, registry_from

from scoperouter.errors import EventError
from scoperouter.messages.event_fields import body_digest, execution_key
from scoperouter.messages.normalize import normalize_event, parse_event_bytes
from scoperouter.processor_registry.compiled import CompiledRegistry
from scoperouter.processor_registry.loader import load_config

ROUTES = Path(__file__).resolve().parents[2] / "routes.yaml"


@pytest.fixture(scope="module")
def nba() -> CompiledRegistry:
    return load_config(ROUTES, with_relations=False).registry


AMBIGUOUS = registry_from(
    {
        "version": 1,
        "processors": {
            "p": {"phase": 3, "granularity": "date", "inputs": [{"source": "raw.games"}]},
            "q": {"phase": 3, "granularity": "date", "inputs": [{"source": "backup.games"}]},
        },
    }
)

PHASE2 = {
    "event_type": "raw_data_loaded",
    "source_table": "nbac_injury_report",
    "game_date": "2025-11-19",
    "record_count": 450,
    "execution_id": "exec-1",
    "correlation_id": "corr-1",
    "timestamp": "2025-11-19T18:05:00Z",
    "phase": 2,
    "success": True,
    "error_message": None,
}
PHASE3 = {
    "event_type": "analytics_complete",
    "analytics_table": "player_game_summary",
    "game_date": "2025-11-19",
    "record_count": 12,
    "execution_id": "exec-2",
    "correlation_id": "corr-2",
    "timestamp": "2025-11-19T18:06:00Z",
    "phase": 3,
    "success": True,
    "error_message": None,
}
UNIFIED = {
    "processor_name": "PlayerGameSummaryProcessor",
    "phase": 3,
    "execution_id": "exec-3",
    "correlation_id": "corr-3",
    "game_date": "2025-11-19",
    "output_table": "player_game_summary",
    "output_dataset": "nba_analytics",
    "status": "partial",
    "record_count": 3,
    "timestamp": "2025-11-19T18:07:00+00:00",
    "metadata": {"changed_fields": ["points", "minutes", "points"]},
    "entities_changed": {"players": ["stephencurry", "lebronjames", "lebronjames"]},
}
CANONICAL = {
    "event_id": "e-123",
    "source": "nba_raw.nbac_injury_report",
    "game_date": "2025-11-19",
    "status": "success",
    "affected_entities": {"players": ["lebronjames"]},
    "changed_fields": ["injury_status"],
    "priority": "critical",
    "correlation_id": "c-9",
    "produced_at": "2025-11-19T18:05:00Z",
}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            PHASE2,
            {
                "shape": "raw_data_loaded",
                "event_id": execution_key("exec-1", PHASE2),
                "source": "nba_raw.nbac_injury_report",
                "status": "success",
                "correlation_id": "corr-1",
                "record_count": 450,
                "affected_entities": None,
                "changed_fields": None,
                "produced_at": datetime(2025, 11, 19, 18, 5, tzinfo=UTC),
            },
        ),
        (
            PHASE3,
            {
                "shape": "analytics_complete",
                "event_id": execution_key("exec-2", PHASE3),
                "source": "nba_analytics.player_game_summary",
                "status": "success",
            },
        ),
        (
            UNIFIED,
            {
                "shape": "unified",
                "event_id": execution_key("exec-3", UNIFIED),
                "source": "nba_analytics.player_game_summary",
                "status": "partial",
                "changed_fields": ("minutes", "points"),
                "affected_entities": {"players": ("lebronjames", "stephencurry")},
            },
        ),
        (
            CANONICAL,
            {
                "shape": "canonical",
                "event_id": "e-123",
                "priority": "critical",
                "affected_entities": {"players": ("lebronjames",)},
                "changed_fields": ("injury_status",),
            },
        ),
        (
            {**PHASE2, "source_table": "nba_raw.nbac_injury_report"},
            {"source": "nba_raw.nbac_injury_report"},
        ),
        (
            # a production raw table routes.yaml does not name
            # (data_processors/raw/nbacom/nbac_referee_processor.py:45): left bare
            {"source": "nbac_referee_game_assignments", "game_date": "2025-11-19"},
            {"source": "nbac_referee_game_assignments", "status": "success"},
        ),
        (
            {"source": "kalshi_player_props", "game_date": "2025-11-19"},
            {"source": "nba_raw.kalshi_player_props", "status": "success"},
        ),
        (
            {"output_table": "player_game_summary", "game_date": "2025-11-19"},
            {"shape": "unified", "source": "nba_analytics.player_game_summary"},
        ),
        (
            {
                "source": "x.y",
                "start_date": "2025-11-01",
                "end_date": "2025-11-03",
                "skip_downstream": True,
            },
            {
                "game_date": None,
                "start_date": date(2025, 11, 1),
                "end_date": date(2025, 11, 3),
                "skip_downstream": True,
            },
        ),
        (
            {
                "source": "x.y",
                "game_date": "2025-11-19",
                "metadata": {"start_date": "2025-11-01", "end_date": "2025-11-02"},
            },
            {"game_date": D, "start_date": date(2025, 11, 1)},
        ),
        (
            {
                "source": "x.y",
                "game_date": "2025-11-19",
                "affected_entities": {"player": ["b", "a"]},
                "entities_changed": {"players": ["c"]},
            },
            {"affected_entities": {"player": ("a", "b"), "players": ("c",)}},
        ),
        (
            {"source": "x.y", "game_date": "2025-11-19", "produced_at": 1763575500},
            {"produced_at": datetime(2025, 11, 19, 18, 5, tzinfo=UTC)},
        ),
        (
            {"source": "x.y", "game_date": "2025-11-19", "produced_at": "2025-11-19T18:05:00"},
            {"produced_at": datetime(2025, 11, 19, 18, 5, tzinfo=UTC)},
        ),
        (
            {"source": "x.y", "game_date": "2025-11-19", "changed_fields": []},
            {"changed_fields": ()},
        ),
    ],
    ids=[
        "phase2",
        "phase3",
        "unified",
        "canonical",
        "full-source-table",
        "unknown-bare",
        "known-bare",
        "output-table-only",
        "backfill",
        "metadata-range",
        "entity-union",
        "epoch",
        "naive-time",
        "empty-fields",
    ],
)
def test_shapes_normalise(
    nba: CompiledRegistry, raw: dict[str, Any], expected: dict[str, Any]
) -> None:
    """Every accepted shape normalises to the canonical fields the planner reads."""
    ev = normalize_event(raw, nba)
    for key, value in expected.items():
        assert getattr(ev, key) == value, key


@pytest.mark.parametrize(
    ("raw", "message_id", "expected"),
    [
        ({"event_id": "a", "execution_id": "b"}, "m", "a"),
        ({"execution_id": "b"}, "m", "b@"),
        ({}, "m", "m"),
        ({"event_id": "", "execution_id": "b"}, "m", "b@"),
        ({"event_id": " ", "execution_id": ""}, "m", "m"),
        ({"event_id": 12}, "m", "12"),
    ],
)
def test_event_id_fallbacks(
    nba: CompiledRegistry, raw: dict[str, Any], message_id: str, expected: str
) -> None:
    """event_id falls back (when missing or empty) to execution_id (+ a body digest), then to
    the Pub/Sub message id."""
    body = {"source": "x.y", "game_date": "2025-11-19", **raw}
    ev = normalize_event(body, nba, message_id=message_id)
    if expected.endswith("@"):  # production's execution id names a run, not a message
        expected += body_digest({k: v for k, v in body.items() if v is not None}, 16)
    assert ev.event_id == expected


def test_event_id_hash_is_deterministic(nba: CompiledRegistry) -> None:
    """Without any id the event id is a hash of the content: equal content, equal id."""
    a = normalize_event({"source": "x.y", "game_date": "2025-11-19", "k": 1}, nba)
    b = normalize_event({"k": 1, "game_date": "2025-11-19", "source": "x.y"}, nba)
    c = normalize_event({"source": "x.y", "game_date": "2025-11-20", "k": 1}, nba)
    assert a.event_id == b.event_id
    assert a.event_id != c.event_id
    assert a.event_id.startswith("h-")


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"success": True}, "success"),
        ({"success": True, "record_count": 0}, "success"),
        ({"success": False}, "failed"),
        ({}, "success"),
        ({"status": "partial"}, "partial"),
        ({"status": "no_data"}, "no_data"),
        ({"status": "failed"}, "failed"),
        ({"status": "SUCCESS"}, "success"),
    ],
)
def test_status_rules(nba: CompiledRegistry, fields: dict[str, Any], expected: str) -> None:
    """Legacy success flags and explicit statuses map onto the four statuses."""
    ev = normalize_event({"source": "x.y", "game_date": "2025-11-19", **fields}, nba)
    assert ev.status == expected


@pytest.mark.parametrize(
    ("raw", "reason", "mentions"),
    [
        ([1, 2], "not_an_object", "list"),
        ("text", "not_an_object", "str"),
        ({"game_date": "2025-11-19"}, "missing_source", "source"),
        ({"output_dataset": "d", "game_date": "2025-11-19"}, "missing_source", "output_table"),
        ({"source": 7, "game_date": "2025-11-19"}, "invalid_field", "source"),
        ({"source": "x.y"}, "missing_date", "game_date"),
        ({"source": "x.y", "start_date": "2025-11-01"}, "missing_date", "end_date"),
        ({"source": "x.y", "game_date": "2025-02-30"}, "invalid_date", "real date"),
        ({"source": "x.y", "game_date": "19/11/2025"}, "invalid_date", "YYYY-MM-DD"),
        ({"source": "x.y", "game_date": 20251119}, "invalid_date", "game_date"),
        (
            {"source": "x.y", "start_date": "2025-11-05", "end_date": "2025-11-01"},
            "invalid_date_range",
            "before",
        ),
        (
            {"source": "x.y", "start_date": "1900-01-01", "end_date": "2025-11-01"},
            "invalid_date_range",
            "spans",
        ),
        ({"source": "x.y", "game_date": "2025-11-19", "status": "done"}, "invalid_status", "done"),
        (
            {"source": "x.y", "game_date": "2025-11-19", "success": "yes"},
            "invalid_status",
            "success",
        ),
        (
            {"source": "x.y", "game_date": "2025-11-19", "affected_entities": ["a"]},
            "invalid_field",
            "affected_entities",
        ),
        (
            {"source": "x.y", "game_date": "2025-11-19", "affected_entities": {"players": "a"}},
            "invalid_field",
            "players",
        ),
        (
            {"source": "x.y", "game_date": "2025-11-19", "affected_entities": {"players": [1]}},
            "invalid_field",
            "players",
        ),
        (
            {"source": "x.y", "game_date": "2025-11-19", "entities_changed": {"teams": [True]}},
            "invalid_field",
            "teams",
        ),
        (
            {"source": "x.y", "game_date": "2025-11-19", "changed_fields": "points"},
            "invalid_field",
            "changed_fields",
        ),
        (
            {"source": "x.y", "game_date": "2025-11-19", "metadata": {"changed_fields": [3]}},
            "invalid_field",
            "metadata.changed_fields",
        ),
        (
            {"source": "x.y", "game_date": "2025-11-19", "metadata": "m"},
            "invalid_field",
            "metadata",
        ),
        (
            {"source": "x.y", "game_date": "2025-11-19", "priority": "urgent"},
            "invalid_field",
            "priority",
        ),
        (
            {"source": "x.y", "game_date": "2025-11-19", "skip_downstream": "yes"},
            "invalid_field",
            "skip_downstream",
        ),
        (
            {"source": "x.y", "game_date": "\uff12\uff10\uff12\uff15-11-19"},
            "invalid_date",
            "game_date",
        ),
        (
            {"source": "x.y", "game_date": "2025-11-19", "event_id": ["e"]},
            "invalid_field",
            "event_id",
        ),
    ],
)
def test_rejections(nba: CompiledRegistry, raw: Any, reason: str, mentions: str) -> None:
    """What cannot be understood is rejected with a precise reason naming the field."""
    with pytest.raises(EventError) as info:
        normalize_event(raw, nba)
    assert info.value.reason == reason
    assert mentions in info.value.detail
    assert "\n" not in str(info.value)


def test_ambiguous_bare_name() -> None:
    """A bare table name that two registry sources share is rejected, not guessed."""
    with pytest.raises(EventError) as info:
        normalize_event({"source_table": "games", "game_date": "2025-11-19"}, AMBIGUOUS)
    assert info.value.reason == "ambiguous_source"
    assert "raw.games" in info.value.detail and "backup.games" in info.value.detail


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"{", "not_json"),
        (b"\xff\xfe", "not_json"),
        (b"[1]", "not_an_object"),
        (b"[" * 100000, "not_json"),
    ],
)
def test_parse_bytes_rejections(nba: CompiledRegistry, data: bytes, reason: str) -> None:
    """Undecodable bytes are rejected as not_json / not_an_object."""
    with pytest.raises(EventError) as info:
        parse_event_bytes(data, nba)
    assert info.value.reason == reason


def test_parse_bytes_size_limit(nba: CompiledRegistry) -> None:
    """An event larger than max_bytes is rejected before decoding."""
    data = json.dumps({"source": "x.y", "game_date": "2025-11-19", "pad": "x" * 100}).encode()
    with pytest.raises(EventError) as info:
        parse_event_bytes(data, nba, max_bytes=50)
    assert info.value.reason == "too_large"
    assert parse_event_bytes(data, nba, max_bytes=len(data)).source == "x.y"


@pytest.mark.parametrize(
    ("count", "kept"),
    [
        (-1, None),
        ("450", 450),
        (12.0, 12),
        (1.5, None),
        ("many", None),
        (None, None),
        (True, None),
        (0, 0),
    ],
)
def test_record_count_never_rejects(nba: CompiledRegistry, count: Any, kept: int | None) -> None:
    """A legacy success:true routes whatever its record_count; a usable count is kept."""
    raw = {
        "event_type": "raw_data_loaded",
        "source_table": "nbac_injury_report",
        "game_date": "2025-11-19",
        "execution_id": "x-1",
        "success": True,
        "record_count": count,
    }
    ev = normalize_event(raw, nba)
    assert ev.status == "success"
    assert ev.record_count == kept


@pytest.mark.parametrize(
    ("fields", "mentions"),
    [
        ({"affected_entities": {"players": ["s\udc00"]}}, "affected_entities.players"),
        ({"affected_entities": {"pl\ud800yers": ["a"]}}, "affected_entities"),
        ({"entities_changed": {"teams": ["\udfff"]}}, "entities_changed.teams"),
        ({"changed_fields": ["po\udc80ints"]}, "changed_fields"),
        ({"event_id": "e\udc00"}, "event_id"),
        ({"correlation_id": "c\ud83d"}, "correlation_id"),
        ({"source": "x.\udc00"}, "source"),
    ],
)
def test_lone_surrogates_are_invalid_field(
    nba: CompiledRegistry, fields: dict[str, Any], mentions: str
) -> None:
    """A JSON string escaping a lone surrogate (not encodable as UTF-8) is rejected as invalid_field."""
    raw = {"source": "nba_raw.nbac_gamebook_player_stats", "game_date": "2025-11-19", **fields}
    data = json.dumps(raw).encode()  # ensure_ascii: the surrogate travels as a \\uXXXX escape
    with pytest.raises(EventError) as info:
        parse_event_bytes(data, nba)
    assert info.value.reason == "invalid_field"
    assert mentions in info.value.detail
    str(info.value).encode("utf-8")  # the error itself is printable


def test_surrogate_in_unused_field_still_gets_an_id(nba: CompiledRegistry) -> None:
    """A lone surrogate in a field the router ignores does not break the hash-derived event id."""
    data = json.dumps({"source": "x.y", "game_date": "2025-11-19", "note": "\udc00"}).encode()
    assert parse_event_bytes(data, nba).event_id.startswith("h-")


BASE_EVENT = {"source": "nba_raw.nbac_injury_report", "game_date": "2025-11-19"}


@pytest.mark.parametrize(
    ("event_id", "outcome"),
    [
        (" e-1", " e-1"),  # kept as sent: distinct from "e-1", never a collision
        ("e-1 ", "e-1 "),
        ("e-\u00e9t\u00e9", "e-\u00e9t\u00e9"),
        ("e\x00-1", "invalid_field"),
        ("e-\x1b[31m", "invalid_field"),
        ("e" * 512, "e" * 512),
        ("e" * 513, "invalid_field"),
        ("e" * 500_000, "invalid_field"),
    ],
)
def test_event_ids_are_exact_bounded_and_printable(
    nba: CompiledRegistry, event_id: str, outcome: str
) -> None:
    """Event ids are used exactly as sent, at most 512 characters, without control characters."""
    raw = {**BASE_EVENT, "event_id": event_id}
    if outcome == "invalid_field":
        with pytest.raises(EventError) as err:
            normalize_event(raw, nba)
        assert err.value.reason == "invalid_field"
    else:
        assert normalize_event(raw, nba).event_id == outcome

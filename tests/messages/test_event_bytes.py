"""How an event's bytes become JSON, the same for every path (``parse_event_bytes``: push,
pull, ``explain``, ``replay``; the HTTP ingress for a plain body): UTF-8 with an optional
byte order mark, nothing else; and a numeric id that is not a finite number is refused
instead of naming every such event alike, one longer than a string id may be as that one."""

from __future__ import annotations

import json
from typing import Any

import pytest

from scoperouter.errors import EventError
from scoperouter.messages.event_fields import MAX_ID_CHARS
from scoperouter.messages.normalize import normalize_event, parse_event_bytes
from scoperouter.processor_registry.compiled import compile_registry
from scoperouter.processor_registry.models import RoutesSpec

REG = compile_registry(
    RoutesSpec.model_validate(
        {
            "version": 1,
            "entities": {"player": {}},
            "processors": {
                "p": {"phase": 3, "granularity": "player", "inputs": [{"source": "raw.a"}]}
            },
        }
    )
)
EVENT: dict[str, Any] = {
    "event_id": "e-1",
    "source": "raw.a",
    "game_date": "2025-11-19",
    "affected_entities": {"players": ["lebronjames"]},
}
PLAIN = json.dumps(EVENT).encode()


@pytest.mark.parametrize(
    "body",
    [
        b"\xef\xbb\xbf" + PLAIN,  # common from Windows tools; RFC 8259 8.1: MAY be ignored
        b"\xef\xbb\xbf" + json.dumps({**EVENT, "x": 1}).encode(),  # (the full path too)
    ],
    ids=["bom-fast-shape", "bom-full-path"],
)
def test_a_utf8_byte_order_mark_is_ignored(body: bytes) -> None:
    """A UTF-8 event behind a byte order mark is the event without it (not a not_json reject)."""
    want = normalize_event(json.loads(body.decode("utf-8-sig")), REG)
    assert parse_event_bytes(body, REG) == want


@pytest.mark.parametrize(
    "body",
    [PLAIN.decode().encode("utf-16-le"), PLAIN.decode().encode("utf-16"), b'{"event_id": "\xff"}'],
    ids=["utf-16-le", "utf-16-bom", "latin-1"],
)
def test_other_encodings_are_not_json(body: bytes) -> None:
    """A body that is not UTF-8 is rejected not_json."""
    with pytest.raises(EventError) as err:
        parse_event_bytes(body, REG)
    assert err.value.reason == "not_json"


@pytest.mark.parametrize(
    ("key", "text"),
    [
        ("event_id", "NaN"),
        ("event_id", "Infinity"),
        ("event_id", "-Infinity"),
        ("event_id", "1e400"),  # a JSON number beyond a double: Python reads inf
        ("execution_id", "1e400"),
    ],
)
def test_non_finite_numeric_id_is_refused(key: str, text: str) -> None:
    """An id that reads as NaN or infinity is invalid_field: as text ("nan", "inf") every
    such event would share one id and all but the first be answered as duplicates."""
    others = {k: v for k, v in EVENT.items() if k != "event_id"}
    body = f'{{"{key}": {text}, '.encode() + json.dumps(others).encode()[1:]
    with pytest.raises(EventError) as err:
        parse_event_bytes(body, REG)
    assert err.value.reason == "invalid_field"
    assert key in err.value.detail


@pytest.mark.parametrize("key", ["event_id", "execution_id"])
@pytest.mark.parametrize(("digits", "refused"), [(MAX_ID_CHARS, False), (MAX_ID_CHARS + 1, True)])
def test_numeric_id_is_bounded_as_a_string_id(key: str, digits: int, refused: bool) -> None:
    """A numeric id past MAX_ID_CHARS digits is invalid_field, as a string id (PostgreSQL's key)."""
    others = {k: v for k, v in EVENT.items() if k != "event_id"}
    body = f'{{"{key}": {"9" * digits}, '.encode() + json.dumps(others).encode()[1:]
    if not refused:
        assert parse_event_bytes(body, REG).event_id.startswith("9" * digits)
        return
    with pytest.raises(EventError) as err:
        parse_event_bytes(body, REG)
    assert err.value.reason == "invalid_field"
    assert err.value.detail == f"{key} is longer than {MAX_ID_CHARS} characters"


@pytest.mark.parametrize(
    ("value", "want"), [(7, "7"), (7.5, "7.5"), (12345678901234567890, "12345678901234567890")]
)
def test_finite_numeric_ids_are_their_text(value: float, want: str) -> None:
    """A finite numeric id is still used as its text."""
    assert normalize_event({**EVENT, "event_id": value}, REG).event_id == want


@pytest.mark.parametrize(
    "tables",
    [
        ["raw.a", "raw.x\ud800"],
        ["raw.a", {"projectId": "p", "datasetId": "d\ud800", "tableId": "t"}],
    ],
    ids=["name", "bigquery-reference"],
)
def test_a_referenced_table_utf8_cannot_encode_is_skipped(tables: list[Any]) -> None:
    """referenced_tables is informational: a name with a lone surrogate is skipped like a
    name that names no table, so the event stays serialisable (journal, log) and routes
    instead of being dead-lettered ``unserialisable``."""
    ev = normalize_event({**EVENT, "referenced_tables": tables}, REG)
    assert ev.referenced_tables == ("raw.a",)
    ev.model_dump_json()  # what ingest does first: it raised

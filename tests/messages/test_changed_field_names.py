"""An event's changed-field names are column names (case-insensitive, like BigQuery's): the
normaliser keeps each stripped and lower-cased, on the full path and the fast path alike,
and a name blank after stripping or not printable makes the event's changed fields unknown
(relevant)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from scoperouter.errors import EventError
from scoperouter.messages.fast_event import fast_event
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
BASE = {"event_id": "e", "source": "raw.a", "game_date": "2025-11-19"}

# (changed_fields as sent, Event.changed_fields)
TOP: list[tuple[list[str], tuple[str, ...]]] = [
    (["injury_status"], ("injury_status",)),
    (["injury_status "], ("injury_status",)),
    ([" injury_status"], ("injury_status",)),
    (["\tinjury_status\n"], ("injury_status",)),
    (["INJURY_STATUS"], ("injury_status",)),
    (["Injury_Status "], ("injury_status",)),
    (["Points", "points", " POINTS "], ("points",)),
    (["rebounds", "Assists"], ("assists", "rebounds")),
    (["three pt made"], ("three pt made",)),  # inner spaces are kept
    # blank after stripping: the event's changed fields are unknown (relevant), never a skip
    (["   "], ()),
    ([""], ()),
    (["points", " "], ()),
    (["\u2028"], ()),
    # not printable (a zero-width space, a control): unknown too, as an invisible entity id
    (["\u200bpoints"], ()),
    (["points", "a\u0000b"], ()),
    ([], ()),
]


@pytest.mark.parametrize(("sent", "expected"), TOP, ids=[repr(t[0]) for t in TOP])
def test_changed_field_names_are_stripped_and_lower_cased(
    sent: list[str], expected: tuple[str, ...]
) -> None:
    """changed_fields is normalised the same on the full path, the bytes path and the fast path."""
    raw = {**BASE, "changed_fields": sent}
    body = json.dumps(raw).encode()
    assert normalize_event(raw, REG).changed_fields == expected
    assert parse_event_bytes(body, REG).changed_fields == expected
    fast = fast_event(body, REG)
    assert fast is not None, "a canonical event's field names never need the full path"
    assert fast == normalize_event(raw, REG)


# (the event's other keys, Event.changed_fields): metadata.changed_fields is merged the same way
MERGED: list[tuple[dict[str, Any], tuple[str, ...]]] = [
    ({"metadata": {"changed_fields": ["Spread "]}}, ("spread",)),
    ({"changed_fields": ["SPREAD"], "metadata": {"changed_fields": [" spread"]}}, ("spread",)),
    ({"changed_fields": ["Spread"], "metadata": {"changed_fields": ["Moneyline"]}},
     ("moneyline", "spread")),
    ({"changed_fields": ["spread"], "metadata": {"changed_fields": ["  "]}}, ()),
    ({"changed_fields": [" "], "metadata": {"changed_fields": ["spread"]}}, ()),
]  # fmt: skip


@pytest.mark.parametrize(("extra", "expected"), MERGED, ids=[repr(m[0]) for m in MERGED])
def test_metadata_changed_fields_are_normalised_alike(
    extra: dict[str, Any], expected: tuple[str, ...]
) -> None:
    """metadata.changed_fields names are stripped and lower-cased before the two lists merge."""
    raw = {**BASE, **extra}
    assert normalize_event(raw, REG).changed_fields == expected
    assert parse_event_bytes(json.dumps(raw).encode(), REG).changed_fields == expected


@pytest.mark.parametrize(
    ("sent", "detail"),
    [([3], "changed_fields"), (["a", None], "changed_fields"), ("points", "changed_fields")],
)
def test_a_changed_field_that_is_not_a_string_is_still_rejected(sent: Any, detail: str) -> None:
    """Only blank names became 'unknown': another JSON type is still an invalid_field."""
    with pytest.raises(EventError) as exc:
        normalize_event({**BASE, "changed_fields": sent}, REG)
    assert exc.value.reason == "invalid_field" and detail in str(exc.value)

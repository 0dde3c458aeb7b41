"""Fields the router only records (``correlation_id``) never keep an otherwise routable event
from routing: each path (the fast one and the checked one) reads them alike."""

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
                "p": {"phase": 3, "granularity": "player", "inputs": [{"source": "raw.a"}]},
            },
        }
    )
)
CANONICAL = {"event_id": "e-1", "source": "raw.a", "game_date": "2025-11-19"}
UNIFIED = {
    "processor_name": "AProcessor",
    "execution_id": "0000002a",
    "game_date": "2025-11-19",
    "output_table": "raw.a",
    "status": "success",
}


@pytest.mark.parametrize("body", [CANONICAL, UNIFIED], ids=["canonical", "unified"])
@pytest.mark.parametrize(
    ("given", "read"),
    [
        ("c-9", "c-9"),
        (" c-9 ", "c-9"),  # stripped
        ("", None),  # blank: absent
        ("   ", None),
        ("\u00a0", None),  # a no-break space is blank too
        ("\t\n", None),
        (None, None),
        (42, "42"),  # a number: its text, as a numeric event_id
        (1.5, "1.5"),
        (10**30, str(10**30)),
    ],
)
def test_correlation_id_never_rejects_a_routable_event(
    body: dict[str, Any], given: object, read: str | None
) -> None:
    """A blank correlation_id is absent and a number is its text, on both paths."""
    data = json.dumps({**body, "correlation_id": given}).encode()
    assert parse_event_bytes(data, REG).correlation_id == read
    assert normalize_event(json.loads(data), REG).correlation_id == read
    fast = fast_event(data, REG)  # the fast path reads it alike, or leaves it to the full path
    assert fast is None or fast == normalize_event(json.loads(data), REG)


@pytest.mark.parametrize("given", ["c\x00", "c\x01", "\x7f", [1], {"a": 1}, True, "c\udc00"])
def test_correlation_id_still_rejected_when_unstorable(given: object) -> None:
    """A correlation_id no store could keep (control characters, a lone surrogate) or of
    another JSON type than text or number is still rejected, naming the field."""
    with pytest.raises(EventError) as info:
        normalize_event({**CANONICAL, "correlation_id": given}, REG)
    assert info.value.reason == "invalid_field"
    assert "correlation_id" in info.value.detail


def test_correlation_id_not_finite_is_absent() -> None:
    """A NaN or infinite correlation_id (json reads NaN, Infinity and 1e400) is absent."""
    for text in ("NaN", "Infinity", "-Infinity", "1e400"):
        data = b'{"event_id": "e-1", "source": "raw.a", "game_date": "2025-11-19", '
        data += b'"correlation_id": ' + text.encode() + b"}"
        assert parse_event_bytes(data, REG).correlation_id is None

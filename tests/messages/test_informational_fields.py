"""Fields the router only records (``correlation_id``, the production time ``produced_at`` /
``timestamp``) never keep an otherwise routable event from routing: each path (the fast one,
the checked one, the ledger's reading of a completion) reads them alike, and a time it
cannot read is routed as absent, never in silence."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

import pytest

from scoperouter.errors import EventError
from scoperouter.messages.fast_event import fast_event
from scoperouter.messages.normalize import normalize_event, parse_event_bytes
from scoperouter.processor_registry.compiled import compile_registry
from scoperouter.processor_registry.models import RoutesSpec
from scoperouter.router.completion_ref import completion_ref

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


_Z = datetime(2025, 11, 19, 18, 5, tzinfo=UTC)


@pytest.mark.parametrize("body", [CANONICAL, UNIFIED], ids=["canonical", "unified"])
@pytest.mark.parametrize(
    ("fields", "read"),
    [
        ({"produced_at": "2025-11-19T18:05:00Z"}, _Z),
        ({"produced_at": "2025-11-19T18:05:00z"}, _Z),  # RFC 3339: z and t in any case
        ({"produced_at": "2025-11-19t18:05:00z"}, _Z),
        ({"timestamp": "2025-11-19T19:05:00+01:00"}, _Z),
        ({"timestamp": "2025-11-19T18:05:00.000000z"}, _Z),
        ({"timestamp": _Z.timestamp()}, _Z),  # epoch seconds
        # unreadable: the event routes as if the time were absent (a WARNING, a counter)
        ({"timestamp": 1763575500000}, None),  # epoch milliseconds: past datetime's range
        ({"timestamp": "2025-11-19 18:05:00 UTC"}, None),
        ({"produced_at": "soon"}, None),
        ({"produced_at": True}, None),
        ({"produced_at": ["2025-11-19"]}, None),
        ({"produced_at": "2025-11-19T23:59:60Z"}, None),  # a leap second Python cannot hold
        ({"produced_at": "yesterday", "timestamp": "2025-11-19T18:05:00Z"}, _Z),  # then timestamp
    ],
)
def test_production_time_never_rejects_a_routable_event(
    body: dict[str, Any], fields: dict[str, Any], read: datetime | None
) -> None:
    """produced_at / timestamp: RFC 3339 in any case is read; an unreadable one is absent."""
    raw = {**body, **fields}
    assert normalize_event(raw, REG).produced_at == read
    assert parse_event_bytes(json.dumps(raw).encode(), REG).produced_at == read
    ref = completion_ref({**raw, "trigger_id": "t-1"})  # the ledger reads it alike
    assert ref is not None
    assert ref.produced_at == (None if read is None else read.timestamp())


def test_unread_time_is_a_warning_naming_the_event(caplog: pytest.LogCaptureFixture) -> None:
    """An ignored time is never silent: a WARNING with the event id, the field and its value."""
    with caplog.at_level(logging.WARNING, logger="scoperouter.messages"):
        ev = normalize_event({**CANONICAL, "timestamp": 1763575500000}, REG)
    assert ev.produced_at is None
    [record] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "e-1" in record.getMessage()
    assert "timestamp 1763575500000" in record.getMessage()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="scoperouter.messages"):
        normalize_event({**CANONICAL, "produced_at": "2025-11-19T18:05:00z"}, REG)
        with pytest.raises(EventError):  # a rejected event: its rejection says it all
            normalize_event({**CANONICAL, "timestamp": "x", "priority": "urgent"}, REG)
    assert not caplog.records


def test_unread_times_are_noted_for_the_caller() -> None:
    """normalize_event / parse_event_bytes append each ignored field's name to ``unread``."""
    unread: list[str] = []
    raw = {**UNIFIED, "produced_at": "soon", "timestamp": 1763575500000}
    assert parse_event_bytes(json.dumps(raw).encode(), REG, unread=unread).produced_at is None
    assert unread == ["produced_at", "timestamp"]
    unread.clear()
    normalize_event({**CANONICAL, "produced_at": "2025-11-19T18:05:00Z"}, REG, unread=unread)
    assert unread == []

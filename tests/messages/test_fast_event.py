"""The normaliser's fast path (:mod:`scoperouter.messages.fast_event`) against the full path:
on any bytes it returns the full path's event exactly, or None (it never rejects); on the
common canonical event it does return one."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from scoperouter.errors import EventError
from scoperouter.messages.fast_event import KEYS, fast_event
from scoperouter.messages.models import Event
from scoperouter.messages.normalize import normalize_event, parse_event_bytes
from scoperouter.processor_registry.compiled import CompiledRegistry, compile_registry
from scoperouter.processor_registry.models import RoutesSpec


def _registry(**extra: Any) -> CompiledRegistry:
    return compile_registry(
        RoutesSpec.model_validate(
            {
                "version": 1,
                "entities": {"player": {}, "team": {}},
                # "a" is the table of two sources: a bare "a" is ambiguous
                "sources": {"raw.a": {"entity": "player"}, "mart.a": {}, "raw.b": {}},
                "processors": {
                    "p": {"phase": 3, "granularity": "player", "inputs": [{"source": "raw.a"}]},
                    "q": {"phase": 3, "granularity": "date", "inputs": [{"source": "raw.b"}]},
                },
                **extra,
            }
        )
    )


REG = _registry()

# each key's common values (the fast path takes them) and odd ones the full path treats
# otherwise (blank, padded, wrong type, null, control characters, surrogates, caps)
NAME = st.text(st.characters(categories=["L", "N", "P", "S", "Zs"]), min_size=1, max_size=10)
TEXT = st.one_of(
    st.sampled_from(["", "  ", "\u2028", "a\x00b", "x" * 513, "\ud800", "\x7f", "\u200bx"]),
    st.text(max_size=12),
)
ODD = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 3), st.floats(allow_nan=False), st.just([]),
    st.just({}),
)  # fmt: skip
IDS = st.lists(NAME, max_size=4)
# changed-field names as producers send them: padded, re-cased, blank (field_names)
FIELD = st.one_of(
    NAME, st.sampled_from(["Points", " points", "points\t", "POINTS ", "", "  ", "\u2028"])
)
GOOD: dict[str, st.SearchStrategy[Any]] = {
    "event_id": NAME,
    "source": st.sampled_from(["raw.a", "b", " raw.b ", "raw.unknown", "mart.a"]),
    "game_date": st.sampled_from(["2025-11-19", " 2024-02-29\t"]),
    "affected_entities": st.dictionaries(
        st.sampled_from(["players", "team", "é"]), IDS, max_size=3
    ),
    "changed_fields": st.lists(FIELD, max_size=4),
    "status": st.sampled_from(["success", " Partial ", "no_data", "FAILED"]),
    "priority": st.sampled_from(["normal", "Critical "]),
    "correlation_id": NAME,
}
ODDS: dict[str, st.SearchStrategy[Any]] = {
    "event_id": st.one_of(TEXT, ODD),
    "source": st.one_of(st.sampled_from(["a", ""]), TEXT, ODD),
    "game_date": st.one_of(st.sampled_from(["2025-02-30", "2025-1-9", "20251119"]), TEXT, ODD),
    "affected_entities": st.one_of(
        st.dictionaries(
            st.sampled_from(["players", ""]), st.lists(st.one_of(TEXT, ODD)), max_size=2
        ),
        st.just({"players": [f"p{i}" for i in range(2001)]}),
        ODD,
    ),
    "changed_fields": st.one_of(st.lists(st.one_of(TEXT, ODD), max_size=3), ODD),
    "status": st.one_of(st.sampled_from(["ok", ""]), ODD),
    "priority": st.one_of(st.sampled_from(["urgent", ""]), ODD),
    "correlation_id": st.one_of(TEXT, ODD),
}
# keys outside the fast path's schema
OTHER: dict[str, st.SearchStrategy[Any]] = {
    "metadata": st.one_of(st.just({"changed_fields": ["x"]}), ODD),
    "start_date": st.just("2025-11-18"),
    "triggered_by": st.sampled_from(["auto_retry", "phase3"]),
    "event_type": st.just("raw_data_loaded"),
    "message": st.just({"data": "e30="}),
    "record_count": st.integers(0, 5),
}


@st.composite
def raw_events(draw: st.DrawFn) -> dict[str, Any]:
    """Mostly common events: each key present or not, its value odd one time in eight, a
    key outside the schema one event in four."""
    raw: dict[str, Any] = {}
    for key in sorted(KEYS):
        if key in ("event_id", "source", "game_date") or draw(st.booleans()):
            odd = draw(st.integers(0, 7)) == 0
            raw[key] = draw(ODDS[key] if odd else GOOD[key])
    if draw(st.integers(0, 3)) == 0:
        key = draw(st.sampled_from(sorted(OTHER)))
        raw[key] = draw(OTHER[key])
    if draw(st.integers(0, 9)) == 0:
        del raw[draw(st.sampled_from(sorted(raw)))]
    return raw


def _full(data: bytes, registry: CompiledRegistry) -> Event | EventError:
    try:
        return normalize_event(json.loads(data), registry)
    except EventError as exc:
        return exc


def _same(fast: Event, full: Event | EventError) -> None:
    assert isinstance(full, Event), full
    assert fast == full
    assert fast.model_fields_set == full.model_fields_set
    assert fast.model_dump_json() == full.model_dump_json()
    assert fast.model_dump() == full.model_dump()


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow])
@given(raw=raw_events(), ascii_only=st.booleans())
@example(raw={"event_id": "e", "source": "a", "game_date": "2025-11-19"}, ascii_only=True)
@example(raw={"event_id": "\ud800", "source": "raw.a", "game_date": "2025-11-19"}, ascii_only=True)
@example(
    raw={"event_id": "e", "source": "raw.a", "game_date": "2025-11-19",
         "affected_entities": {"players": ["a", "b\x00"]}},
    ascii_only=True,
)  # fmt: skip
@example(
    raw={"event_id": "e", "source": "raw.a", "game_date": "2025-11-19",
         "affected_entities": {"players": ["\u200ba"], "team": [" "]}},
    ascii_only=False,
)  # fmt: skip
@example(
    raw={"event_id": "e", "source": "raw.a", "game_date": "2025-11-19",
         "affected_entities": {"players": ["lebronjames "], "team": [" LAL"]}},
    ascii_only=True,
)  # fmt: skip
@example(
    raw={"event_id": "e", "source": "raw.a", "game_date": "2025-11-19",
         "changed_fields": ["INJURY_STATUS", " injury_status ", "Points"]},
    ascii_only=True,
)  # fmt: skip
@example(
    raw={"event_id": "e", "source": "raw.a", "game_date": "2025-11-19",
         "changed_fields": ["points", "  "]},
    ascii_only=True,
)  # fmt: skip
def test_fast_path_equals_full_path(raw: dict[str, Any], ascii_only: bool) -> None:
    """Whatever the message, the fast path gives the full path's event or defers (None)."""
    data = json.dumps(raw, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")
    fast = fast_event(data, REG)
    if fast is not None:
        _same(fast, _full(data, REG))


@settings(max_examples=300)
@given(
    eid=st.text(st.characters(categories=["L", "N", "P", "S"]), min_size=1, max_size=20),
    source=st.sampled_from(["raw.a", "raw.b", "b", "other.table"]),
    players=st.lists(
        st.text(st.characters(categories=["L", "N", "P", "S"]), min_size=1, max_size=8),
        max_size=6,
    ),
    fields=st.lists(st.text(max_size=8), max_size=4),
)
def test_common_events_take_the_fast_path(
    eid: str, source: str, players: list[str], fields: list[str]
) -> None:
    """A well-formed canonical event is normalised by the fast path, equal to the full path."""
    raw = {
        "event_id": eid,
        "source": source,
        "game_date": "2025-11-19",
        "affected_entities": {"players": players},
        "changed_fields": fields,
    }
    data = json.dumps(raw).encode()
    fast = fast_event(data, REG)
    assert fast is not None
    _same(fast, _full(data, REG))


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b'{"event_id":"e","source":"a","game_date":"2025-11-19"}', "ambiguous source"),
        (b'{"event_id":"e","source":"raw.a","game_date":"2025-02-30"}', "no such date"),
        (b'{"event_id":"e","source":"raw.a","game_date":"2025-11-19","x":1}', "another key"),
        (b'{"event_id":7,"source":"raw.a","game_date":"2025-11-19"}', "a number as id"),
        (b'{"event_id":"e\\udc00","source":"raw.a","game_date":"2025-11-19"}', "surrogate"),
        (b'{"event_id":"e","source":"raw.a","game_date":"2025-11-19"', "not JSON"),
        (b'\xef\xbb\xbf{"event_id":"e","source":"raw.a","game_date":"2025-11-19"}', "a BOM"),
        (b'{"source":"raw.a","game_date":"2025-11-19"}', "no event_id (hashed)"),
        (
            b'{"event_id":"e","source":"raw.a","game_date":"2025-11-19",'
            b'"affected_entities":{"players":["a","b "]}}',
            "a padded id (names nobody)",
        ),
    ],
)
def test_rare_messages_take_the_full_path(body: bytes, why: str) -> None:
    """What is not the common case is left to the full path (the fast path answers None)."""
    assert fast_event(body, REG) is None, why


def test_other_date_field_takes_the_full_path() -> None:
    """A registry whose date is not keyed game_date normalises through the full path."""
    reg = _registry(date_field="business_date")
    body = b'{"event_id":"e","source":"raw.a","business_date":"2025-11-19"}'
    assert fast_event(body, reg) is None
    assert parse_event_bytes(body, reg).game_date.isoformat() == "2025-11-19"  # type: ignore[union-attr]


def test_parse_event_bytes_uses_the_fast_path() -> None:
    """parse_event_bytes returns the fast path's event for the common case."""
    body = (
        b'{"event_id":"e","source":"raw.a","game_date":"2025-11-19","changed_fields":["b","a","b"]}'
    )
    ev = parse_event_bytes(body, REG)
    assert ev == fast_event(body, REG)
    assert ev.changed_fields == ("a", "b")


@pytest.mark.parametrize("padded", ["lebronjames ", " lebronjames", " lebronjames ", "a  "])
def test_a_padded_id_routes_the_full_date_on_both_paths(padded: str) -> None:
    """An id with spaces around it names nobody: both paths drop the event's entities."""
    body = json.dumps(
        {
            "event_id": "e",
            "source": "raw.a",
            "game_date": "2025-11-19",
            "affected_entities": {"players": ["stephencurry", padded]},
        }
    ).encode()
    full = _full(body, REG)
    assert isinstance(full, Event) and full.affected_entities is None
    assert parse_event_bytes(body, REG) == full

"""A built event is one the router accepts (sdk/events.py's promise): an argument the router's
own field checks would reject raises ValueError when the event is built, never a dead
letter after it is published."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
from sdk_fakes import REGISTRY

from scoperouter.messages.normalize import parse_event_bytes
from scoperouter.sdk import EntityChanges, build_completion_event, completion_event
from scoperouter.sdk.events import encode_event

DAY = date(2025, 11, 19)
BASE: dict[str, Any] = {
    "source": "raw.a",
    "game_date": DAY,
    "affected_entities": {"players": ["lebronjames"]},
    "changed_fields": ["points"],
}


def _built(**kw: Any) -> dict[str, Any]:
    return build_completion_event(**{**BASE, **kw})


def _detected(**kw: Any) -> dict[str, Any] | None:
    return completion_event(
        source=kw.pop("source", "raw.a"),
        game_date=DAY,
        entity_type=kw.pop("entity_type", "player"),
        changes=EntityChanges(("lebronjames",), ("points",)),
        **kw,
    )


@pytest.mark.parametrize(
    ("build", "kwargs", "field"),
    [
        (_built, {"correlation_id": "run\t42"}, "correlation_id"),
        (_built, {"correlation_id": "c-\udc00"}, "correlation_id"),
        (_built, {"event_id": "e-1\n2"}, "event_id"),
        (_built, {"event_id": "e-\x00"}, "event_id"),
        (_built, {"event_id": "e-\udc00"}, "event_id"),
        (_built, {"source": "raw.\udc00"}, "source"),
        (_built, {"changed_fields": ["po\udc00ints"]}, "changed_fields"),
        (_built, {"affected_entities": {"play\udc00ers": ["a"]}}, "affected_entities"),
        (_detected, {"correlation_id": "run\r42"}, "correlation_id"),
        (_detected, {"event_id": "ce-\x7f"}, "event_id"),
        (_detected, {"entity_type": "play\udc00er"}, "affected_entities"),
    ],
)
def test_an_argument_the_router_rejects_raises(
    build: Callable[..., object], kwargs: dict[str, Any], field: str
) -> None:
    """Control characters and lone surrogates in ids, names or keys raise ValueError naming the field."""
    with pytest.raises(ValueError, match=field):
        build(**kwargs)


@pytest.mark.parametrize(
    ("build", "kwargs"),
    [
        (_built, {"correlation_id": "run 42", "event_id": "e-\u00e9t\u00e9"}),
        (_built, {"correlation_id": "   "}),  # blank: the trigger's (none here), never sent
        (_detected, {"correlation_id": "c-9", "event_id": "ce-1"}),
    ],
)
def test_accepted_arguments_build_an_event_the_router_accepts(
    build: Callable[..., dict[str, Any] | None], kwargs: dict[str, Any]
) -> None:
    """Printable text, accents included, builds as before and parses at the router."""
    event = build(**kwargs)
    assert event is not None
    assert parse_event_bytes(encode_event(event), REGISTRY).source == "raw.a"

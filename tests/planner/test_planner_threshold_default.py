"""SPEC section 2: ``max_entities`` counts ids after mapping, is inclusive, and defaults to
100 when neither the processor nor ``defaults`` sets it."""

from __future__ import annotations

from typing import Any

import pytest
from planner_support import D, event, registry_from, relations_for

from scoperouter.router.planner import plan


@pytest.mark.parametrize(
    ("processor_limit", "defaults_limit", "ids", "expected"),
    [
        (None, None, 100, ("entities", "entity_scope")),  # the built-in default: 100
        (None, None, 101, ("date", "fallback_threshold")),
        (None, 5, 5, ("entities", "entity_scope")),  # defaults.max_entities
        (None, 5, 6, ("date", "fallback_threshold")),
        (7, 5, 7, ("entities", "entity_scope")),  # the processor's wins
        (7, 5, 8, ("date", "fallback_threshold")),
        (7, None, 8, ("date", "fallback_threshold")),
    ],
)
def test_threshold_default_and_precedence(
    processor_limit: int | None, defaults_limit: int | None, ids: int, expected: tuple[str, str]
) -> None:
    """The processor's max_entities, else defaults', else 100; exactly the limit stays."""
    proc: dict[str, Any] = {"phase": 3, "granularity": "player", "inputs": [{"source": "raw.a"}]}
    if processor_limit is not None:
        proc["max_entities"] = processor_limit
    doc: dict[str, Any] = {"version": 1, "entities": {"player": {}}, "processors": {"p": proc}}
    if defaults_limit is not None:
        doc["defaults"] = {"max_entities": defaults_limit}
    reg = registry_from(doc)
    ev = event(reg, source="raw.a", affected_entities={"players": [f"p{i}" for i in range(ids)]})
    [got] = plan(reg, relations_for(reg, {}), ev, D)
    assert (got.scope, got.reason) == expected

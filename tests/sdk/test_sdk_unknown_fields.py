"""An entity whose row appeared or disappeared with no field to name (key or ignored columns
only) keeps its event's changed_fields "unknown" (left out: relevant to every reader, SPEC
section 2): the fields other entities changed on that date never narrow it, or a reader of
other fields would skip the entity and never process its new row."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest
from sdk_fakes import one_processor_registry

from scoperouter.messages.normalize import parse_event_bytes
from scoperouter.processor_registry.relations import InMemoryRelations
from scoperouter.router.planner import plan
from scoperouter.sdk import ChangeDetector

DAY = date(2025, 11, 19)
SOURCE = "an.roster"
POINTS_READER = one_processor_registry("points_reader", {"source": SOURCE, "fields": ["points"]})
A_BEFORE = {"points": 10, "jersey": 5, "processed_at": 1}
A_AFTER = {"points": 10, "jersey": 6, "processed_at": 2}  # jersey changed


@pytest.mark.parametrize(
    ("before", "after", "fields", "runs"),
    [
        # B appeared with no nameable field, A's jersey changed: unknown, B run
        ({"A": A_BEFORE}, {"A": A_AFTER, "B": {"processed_at": 2}}, None, ("A", "B")),
        # B disappeared the same way
        ({"A": A_BEFORE, "B": {"processed_at": 1}}, {"A": A_AFTER}, None, ("A", "B")),
        # B alone: unknown, as before
        ({}, {"B": {"processed_at": 2}}, None, ("B",)),
        # only A's jersey: named, and irrelevant to a points reader
        ({"A": A_BEFORE}, {"A": A_AFTER}, ["jersey"], None),
        # B appeared with a field: named, and relevant
        ({"A": A_BEFORE}, {"A": A_AFTER, "B": {"points": 3}}, ["jersey", "points"], ("A", "B")),
    ],
)
def test_an_entity_with_no_field_to_name_keeps_the_event_relevant(
    before: dict[str, Any],
    after: dict[str, Any],
    fields: list[str] | None,
    runs: tuple[str, ...] | None,
) -> None:
    """The detector's event, normalised and planned: which fields it names, whom the points reader runs."""
    det = ChangeDetector(SOURCE, "player", ignore_fields=["processed_at"])
    det.observe(DAY, before, after)
    (event,) = det.events(run_id="r1")
    assert event.get("changed_fields") == fields
    ev = parse_event_bytes(json.dumps(event).encode(), POINTS_READER)
    (d,) = plan(POINTS_READER, InMemoryRelations({}), ev, DAY)
    if runs is None:
        assert (d.action, d.reason) == ("skip", "irrelevant_fields")
    else:
        assert (d.action, d.entity_ids) == ("run", runs)

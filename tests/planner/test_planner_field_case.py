"""``fields`` / ``ignore_fields`` match an event's changed fields ignoring case and surrounding
whitespace (column names, case-insensitive as BigQuery's): a padded or re-cased name is never
an irrelevant_fields skip, and the report's skip re-derivation agrees with the planner."""

from __future__ import annotations

from typing import Any

import pytest
from planner_support import NBA_RELATIONS, NBA_ROWS, D, event, registry_from, relations_for

from scoperouter.execution_log.rollout_coverage import skip_reason
from scoperouter.messages.models import Event
from scoperouter.router.planner import plan

REG = registry_from(
    {
        "version": 1,
        **NBA_RELATIONS,
        "processors": {
            "lower_fields": {
                "phase": 3,
                "granularity": "player",
                "inputs": [{"source": "raw.a", "fields": ["injury_status", "minutes"]}],
            },
            "upper_fields": {
                "phase": 3,
                "granularity": "player",
                "inputs": [{"source": "raw.a", "fields": ["Injury_Status"]}],
            },
            "lower_ignore": {
                "phase": 3,
                "granularity": "player",
                "inputs": [{"source": "raw.a", "ignore_fields": ["arena", "broadcast"]}],
            },
            "upper_ignore": {
                "phase": 3,
                "granularity": "player",
                "inputs": [{"source": "raw.a", "ignore_fields": ["Arena", "BROADCAST"]}],
            },
        },
    }
)
RELS = relations_for(REG, NBA_ROWS)
PROCS = ("lower_fields", "upper_fields", "lower_ignore", "upper_ignore")

# (changed_fields as sent, the processors that skip it as irrelevant_fields)
CASES: list[tuple[list[str], set[str]]] = [
    (["injury_status"], set()),
    (["injury_status "], set()),
    (["INJURY_STATUS"], set()),
    ([" Injury_Status\t"], set()),
    (["Minutes"], {"upper_fields"}),
    (["points"], {"lower_fields", "upper_fields"}),
    (["POINTS "], {"lower_fields", "upper_fields"}),
    (["arena"], {"lower_fields", "upper_fields", "lower_ignore", "upper_ignore"}),
    (["ARENA", " Broadcast "], {"lower_fields", "upper_fields", "lower_ignore", "upper_ignore"}),
    (["arena", "Injury_status"], set()),
    # blank after stripping: unknown, relevant to every reader
    (["arena", "  "], set()),
    ([" "], set()),
    ([""], set()),
]


@pytest.mark.parametrize(("changed", "skipped"), CASES, ids=[repr(c[0]) for c in CASES])
def test_fields_match_ignoring_case_and_padding(changed: list[str], skipped: set[str]) -> None:
    """Each processor runs or skips irrelevant_fields as if every name were lower-case and bare."""
    ev = event(REG, source="raw.a", changed_fields=changed, affected_entities={"players": ["p1"]})
    decisions = {d.processor: d for d in plan(REG, RELS, ev, D)}
    got = {p for p in PROCS if decisions[p].reason == "irrelevant_fields"}
    assert got == skipped
    for p in set(PROCS) - skipped:
        assert decisions[p].action == "run", decisions[p]
    for ci in REG.by_source["raw.a"]:
        expected = "irrelevant_fields" if ci.processor in skipped else None
        assert skip_reason(ci, ev) == expected, ci.processor


def test_the_compiled_registry_holds_lower_case_field_names() -> None:
    """compile_registry folds fields / ignore_fields once, so the planner compares sets as is."""
    got: dict[str, Any] = {
        ci.processor: ci.fields if ci.fields is not None else ci.ignore_fields
        for ci in REG.by_source["raw.a"]
    }
    assert got == {
        "lower_fields": frozenset({"injury_status", "minutes"}),
        "upper_fields": frozenset({"injury_status"}),
        "lower_ignore": frozenset({"arena", "broadcast"}),
        "upper_ignore": frozenset({"arena", "broadcast"}),
    }


@pytest.mark.parametrize(
    ("changed", "expected"),
    [
        (["INJURY_STATUS "], ("injury_status",)),
        (["b", "A", "a"], ("a", "b")),
        (["points", " "], ()),
        (None, None),
    ],
)
def test_an_event_read_back_holds_normalised_names(
    changed: list[str] | None, expected: tuple[str, ...] | None
) -> None:
    """An Event read from a journal or an older execution log folds its names too."""
    ev = Event.model_validate(
        {"event_id": "e", "source": "raw.a", "game_date": "2025-11-19", "changed_fields": changed}
    )
    assert ev.changed_fields == expected
    assert Event.model_validate_json(ev.model_dump_json()) == ev

"""The normalisation rules behind production's shapes, on a small generic registry: the
source candidates, flat ``entities_changed`` lists typed by the registry, and triggers that
are not completions."""

from __future__ import annotations

import json
from typing import Any

import pytest

from scoperouter.errors import EventError
from scoperouter.messages.normalize import UNTYPED, normalize_event, parse_event_bytes
from scoperouter.messages.triggers import trigger_problem
from scoperouter.processor_registry.compiled import compile_registry
from scoperouter.processor_registry.models import RoutesSpec

REG = compile_registry(
    RoutesSpec.model_validate(
        {
            "version": 1,
            "entities": {"player": {}, "team": {}},
            "sources": {"raw.teams": {"entity": "team"}, "raw.quiet": {}},
            "processors": {
                "p": {
                    "phase": 3,
                    "granularity": "player",
                    "inputs": [{"source": "raw.a"}],
                    "publishes": "mart.p",
                },
                "d": {
                    "phase": 4,
                    "granularity": "date",
                    "inputs": [{"source": "mart.p"}],
                    "publishes": "mart.d",
                },
                "t": {"phase": 3, "granularity": "team", "inputs": [{"source": "raw.teams"}]},
            },
        }
    )
)
DAY = {"game_date": "2026-01-15", "execution_id": "x-1"}


@pytest.mark.parametrize(
    ("fields", "source"),
    [
        ({"output_table": "raw.a", "output_dataset": "raw"}, "raw.a"),  # never prefixed twice
        ({"output_table": "a", "output_dataset": "raw"}, "raw.a"),
        ({"output_table": "a"}, "raw.a"),  # a bare name resolves
        ({"source": "sender_name", "output_table": "raw.a"}, "raw.a"),  # first known wins
        ({"source_table": "nobody", "output_table": "raw.zzz"}, "nobody"),  # none known: first
        ({"output_table": "raw.zzz", "output_dataset": "other"}, "raw.zzz"),
        ({"source_table": "quiet"}, "raw.quiet"),  # declared under sources:
    ],
)
def test_source_candidates(fields: dict[str, Any], source: str) -> None:
    """The first source candidate the registry names, a qualified table as written."""
    assert normalize_event({**DAY, **fields}, REG).source == source


@pytest.mark.parametrize(
    ("fields", "entities"),
    [
        (
            {"source": "mart.p", "metadata": {"entities_changed": ["b", "a", "a"]}},
            {"player": ("a", "b")},
        ),
        ({"source": "raw.teams", "entities_changed": ["LAL"]}, {"team": ("LAL",)}),
        ({"source": "mart.d", "metadata": {"entities_changed": ["a"]}}, {UNTYPED: ("a",)}),
        ({"source": "raw.a", "metadata": {"entities_changed": ["a"]}}, {UNTYPED: ("a",)}),
        ({"source": "mart.p", "metadata": {"entities_changed": []}}, None),
        (
            {
                "source": "mart.p",
                "entities_changed": {"teams": ["X"]},
                "metadata": {"entities_changed": ["a"]},
            },
            {"player": ("a",), "teams": ("X",)},
        ),
        (
            {
                "source": "mart.p",
                "entities_changed": {"teams": []},
                "metadata": {"entities_changed": []},
            },
            {"teams": ()},
        ),
    ],
    ids=[
        "publisher-granularity",
        "declared-entity",
        "date-publisher",
        "no-type",
        "empty-list",
        "union-with-mapping",
        "empty-mapping-kept",
    ],
)
def test_flat_entities_changed(
    fields: dict[str, Any], entities: dict[str, tuple[str, ...]] | None
) -> None:
    """A flat list takes the registry's type for the source; unknown -> (untyped); [] -> none."""
    assert normalize_event({**DAY, **fields}, REG).affected_entities == entities


def test_untyped_ids_route_the_full_date() -> None:
    """Ids of unknown type never reject the event: entity consumers run the full date."""
    from scoperouter.processor_registry.relations import InMemoryRelations
    from scoperouter.router.planner import plan

    ev = normalize_event({**DAY, "source": "raw.a", "metadata": {"entities_changed": ["a"]}}, REG)
    [d] = [x for x in plan(REG, InMemoryRelations({}), ev, ev.dates()[0]) if x.processor == "p"]
    assert (d.action, d.scope, d.reason) == ("run", "date", "unmapped_entity_type")


@pytest.mark.parametrize(
    "fields",
    [
        {"source": "mart.p", "metadata": {"entities_changed": [1]}},
        {"source": "mart.p", "entities_changed": ["a", True]},
        {"source": "mart.p", "affected_entities": {"players": ["a", None, 7]}},
        {"source": "mart.p", "affected_entities": ["a"]},
    ],
)
def test_bad_flat_lists_are_invalid_field(fields: dict[str, Any]) -> None:
    """Ids of another JSON type than string are rejected; affected_entities stays a mapping."""
    with pytest.raises(EventError) as info:
        normalize_event({**DAY, **fields}, REG)
    assert info.value.reason == "invalid_field"


RELAYED = {"source_table": "mart.p", "trigger_source": "orchestrator", "success": True}


@pytest.mark.parametrize(
    "fields",
    [
        {"entities_changed": [1628983]},  # numeric player ids
        {"entities_changed": {"players": [1628983, "a"], "teams": [True]}},
        {"metadata": {"entities_changed": [1, None]}},
        {"affected_entities": ["a"]},  # not even a mapping
        {"affected_entities": {"players": "a"}, "processor_name": None},  # null: no processor
        {"entities_changed": {"players": ["a"] * 3000}},  # past the cap
        {"entities_changed": ["a", "b"], "triggered_by": "phase3_to_phase4_orchestrator"},
    ],
)
def test_orchestrator_own_trigger_ignores_its_entities_unread(fields: dict[str, Any]) -> None:
    """An orchestrator's own trigger names no entities, so its entity lists are never read:
    ids of any JSON type route the full date instead of rejecting the event."""
    raw = {**DAY, **RELAYED, **fields}
    assert normalize_event(raw, REG).affected_entities is None
    assert parse_event_bytes(json.dumps(raw).encode(), REG).affected_entities is None


def test_processors_own_message_still_checks_its_entities() -> None:
    """With a processor_name the message is a processor's own: its ids are read and checked."""
    raw = {**DAY, **RELAYED, "processor_name": "P", "entities_changed": [1628983]}
    with pytest.raises(EventError) as info:
        normalize_event(raw, REG)
    assert info.value.reason == "invalid_field"
    assert "entities_changed" in info.value.detail


@pytest.mark.parametrize(
    ("body", "mentions"),
    [
        ({"game_date": "2026-01-15", "triggered_by": "some_orchestrator"}, "triggered_by"),
        ({"game_date": "2026-01-15", "action": "predict"}, "action"),
        ({"start_date": "2026-01-01", "end_date": "2026-01-02", "processors": ["X"]}, "processors"),
        ({"analysis_date": "2026-01-15", "backfill_mode": True}, "analysis_date"),
        ({"target_date": "2026-01-15", "export_types": ["tonight"]}, "export_types"),
        (
            {"game_date": "2026-01-15", "source_table": "raw.a", "triggered_by": "auto_retry"},
            "auto-retry",
        ),
    ],
)
def test_triggers_are_not_completions(body: dict[str, Any], mentions: str) -> None:
    """A request to run is rejected as not_a_completion, naming what gave it away."""
    with pytest.raises(EventError) as info:
        normalize_event(body, REG)
    assert info.value.reason == "not_a_completion" and mentions in info.value.detail


@pytest.mark.parametrize(
    "body",
    [
        {"game_date": "2026-01-15"},  # no source, no marker: missing_source, not a trigger
        {"source_table": "raw.a", "triggered_by": "phase3_to_phase4_orchestrator"},
        {"output_table": "raw.a", "action": "x"},
    ],
)
def test_messages_with_a_source_are_not_triggers(body: dict[str, Any]) -> None:
    """A message that names a completed source (or nothing at all) is not called a trigger."""
    assert trigger_problem(body) is None


# production's change detector returns SELECT DISTINCT player_lookup over a nullable column
# (shared/change_detection/change_detector.py:110,247-258; schemas/bigquery/raw/
# nbac_gamebook_tables.sql:17): a NULL row is an entity nobody can name, published as null
# in metadata.entities_changed (data_processors/analytics/analytics_base.py:1665)
# an id with spaces around it names nobody either: relation data is read stripped, while an
# identity-mapped processor would get it verbatim (`player_lookup IN ('lebronjames ')`)
UNNAMED = [
    *(None, "", "  ", "\t", "lebron\x00james", "\u200blebronjames", "LAL\u00a0", "a\u2028"),
    *("lebronjames ", " lebronjames", " LAL "),
]


@pytest.mark.parametrize("bad", UNNAMED)
@pytest.mark.parametrize(
    "where",
    ["metadata.entities_changed", "entities_changed", "affected_entities", "entities_changed map"],
)
def test_an_id_nobody_can_name_routes_the_full_date(bad: object, where: str) -> None:
    """A null, blank, padded or invisible-character id hides a changed entity: the event routes
    the full date (no entity information), neither rejected nor narrowed to the ids it can read."""
    ids = ["stephencurry", bad]
    fields: dict[str, Any] = {
        "metadata.entities_changed": {"metadata": {"entities_changed": ids}},
        "entities_changed": {"entities_changed": ids},
        "affected_entities": {"affected_entities": {"players": ids, "teams": ["GSW"]}},
        "entities_changed map": {"entities_changed": {"players": ids}},
    }[where]
    ev = normalize_event({**DAY, "source": "mart.p", **fields}, REG)
    assert ev.affected_entities is None


def test_an_unnamed_id_still_makes_a_date_scope_decision() -> None:
    """The planner runs every consumer of the event at date scope."""
    from scoperouter.processor_registry.relations import InMemoryRelations
    from scoperouter.router.planner import plan

    ev = normalize_event({**DAY, "source": "raw.a", "entities_changed": ["a", None]}, REG)
    [d] = [x for x in plan(REG, InMemoryRelations({}), ev, ev.dates()[0]) if x.processor == "p"]
    assert (d.action, d.scope, d.reason) == ("run", "date", "no_entities_in_event")


@pytest.mark.parametrize(
    ("fields", "changed"),
    [
        ({"changed_fields": [], "metadata": {"changed_fields": ["moneyline"]}}, ()),
        ({"changed_fields": ["spread"], "metadata": {"changed_fields": []}}, ()),
        ({"changed_fields": ["b"], "metadata": {"changed_fields": ["a", "b"]}}, ("a", "b")),
        ({"metadata": {"changed_fields": ["moneyline"]}}, ("moneyline",)),
        ({"metadata": {"changed_fields": []}}, ()),
        ({}, None),
    ],
    ids=["empty-top", "empty-meta", "united", "meta-only", "meta-empty", "none"],
)
def test_an_empty_changed_fields_stays_unknown(
    fields: dict[str, Any], changed: tuple[str, ...] | None
) -> None:
    """An empty changed_fields (either place) means unknown, whatever the other one lists."""
    assert normalize_event({**DAY, "source": "raw.a", **fields}, REG).changed_fields == changed


def test_unknown_changed_fields_are_never_skipped_as_irrelevant() -> None:
    """changed_fields [] beside metadata.changed_fields [moneyline] still runs the reader
    that ignores moneyline: one of the two says every field may have changed."""
    from scoperouter.processor_registry.relations import InMemoryRelations
    from scoperouter.router.planner import plan

    reg = compile_registry(
        RoutesSpec.model_validate(
            {
                "version": 1,
                "entities": {"player": {}},
                "processors": {
                    "p": {
                        "phase": 3,
                        "granularity": "date",
                        "inputs": [{"source": "raw.lines", "ignore_fields": ["moneyline"]}],
                    }
                },
            }
        )
    )
    body = {
        **DAY,
        "source": "raw.lines",
        "changed_fields": [],
        "metadata": {"changed_fields": ["moneyline"]},
    }
    ev = normalize_event(body, reg)
    [d] = plan(reg, InMemoryRelations({}), ev, ev.dates()[0])
    assert (d.action, d.reason) == ("run", "date_granularity")


_META_BACKFILL = {"start_date": "2025-11-01", "end_date": "2025-11-03"}


@pytest.mark.parametrize(
    ("nulls", "metadata"),
    [
        (("start_date",), _META_BACKFILL),
        (("end_date",), _META_BACKFILL),
        (("start_date", "end_date"), _META_BACKFILL),
        (("skip_downstream",), {"skip_downstream": True}),
        (("referenced_tables",), {"referenced_tables": ["raw.a"]}),
        (("entities_changed",), {"entities_changed": ["lebronjames"]}),
        (("changed_fields",), {"changed_fields": ["points"]}),
    ],
)
def test_top_level_nulls_are_dropped_before_metadata_is_read(
    nulls: tuple[str, ...], metadata: dict[str, Any]
) -> None:
    """A top-level null (SPEC 3: dropped) never hides the value its metadata carries."""
    base: dict[str, Any] = {"event_id": "e-1", "output_table": "raw.a", "metadata": metadata}
    if "start_date" not in metadata:
        base["game_date"] = "2025-11-19"
    with_nulls = {**base, **dict.fromkeys(nulls)}
    assert normalize_event(with_nulls, REG) == normalize_event(base, REG)


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        (450, 450),
        (0, 0),
        (12.0, 12),
        ("12", 12),
        (" 7 ", 7),
        ("\u0661\u0662", 12),  # Arabic-Indic digits: int() reads them
        (2**63 - 1, 2**63 - 1),  # the largest a signed 64-bit column stores
        (-1, None),
        (True, None),
        (1.5, None),
        ("1.5", None),
        ("-3", None),
        ("\u00b2", None),  # superscript two: isdigit() but not a decimal int() reads
        ("\u2460", None),  # circled one: likewise
        ("9" * 5000, None),  # past int()'s digit limit
        (2**63, None),  # no SQLite INTEGER / BigQuery INT64 holds it
        (2**64 - 1, None),
        (10**20, None),
        (str(2**63), None),
        (1e300, None),
        (float("inf"), None),
        (float("nan"), None),
        ([3], None),
    ],
    ids=lambda v: repr(v) if len(repr(v)) <= 24 else f"{len(repr(v))}-char {type(v).__name__}",
)
def test_record_count_is_kept_only_when_usable(sent: object, kept: int | None) -> None:
    """record_count never rejects: a count a 64-bit column cannot hold (or no count) is None."""
    event = normalize_event({**DAY, "source": "raw.a", "record_count": sent}, REG)
    assert event.record_count == kept

"""Generic names in the registry: lookback occurrences (games as an alias), explicit
plurals, and a date_field other than game_date carried by events and triggers."""

from __future__ import annotations

import copy
import json
from datetime import date, timedelta
from typing import Any

import pytest
from planner_support import D, registry_from, relations_for

from scoperouter.errors import EventError
from scoperouter.messages.models import Trigger
from scoperouter.messages.normalize import normalize_event
from scoperouter.processor_registry.loader import check_config_bytes
from scoperouter.router.planner import plan
from scoperouter.router.windows import WindowBook
from scoperouter.runtime.sinks import trigger_attributes, trigger_bytes, trigger_json

AS_OF = D + timedelta(days=30)

DOC: dict[str, Any] = {
    "version": 1,
    "entities": {"person": {"plural": "people"}, "store": {}},
    "relations": {
        "store_people": {"from": "store", "to": "person"},
        "person_visits": {"inverse_of": "store_people"},
    },
    "processors": {
        "profile": {
            "phase": 1,
            "granularity": "person",
            "inputs": [{"source": "pos.sales"}],
            "lookback": {"occurrences": 2, "via": "person_visits"},
        },
    },
}
ROWS = {
    "store_people": [
        (D, "S1", "m1"), (D, "S1", "m2"), (D + timedelta(days=2), "S1", "m1"),
        (D + timedelta(days=5), "S2", "m1"), (D + timedelta(days=9), "S2", "m1"),
        (D + timedelta(days=3), "S2", "m2"),
        # someone shops every day: no date is "unknown" (a date without via rows is covered)
        *[(D + timedelta(days=i), "S9", "m9") for i in range(31)],
    ],
}  # fmt: skip


def _with(**changes: Any) -> dict[str, Any]:
    doc = copy.deepcopy(DOC)
    for path, value in changes.items():
        *parents, last = path.split("__")
        node = doc
        for p in parents:
            node = node[p]
        node[last] = value
    return doc


@pytest.mark.parametrize(
    "entities",
    [{"people": ["m1"]}, {"stores": ["S1"]}, {"person": ["m1", "m2"]}, None],
    ids=["person", "store", "singular", "no-entities"],
)
def test_games_is_an_alias_of_occurrences(entities: dict[str, list[str]] | None) -> None:
    """lookback {games: N} decides exactly as {occurrences: N} (same dates, ids, reasons)."""
    by_games = _with(processors__profile__lookback={"games": 2, "via": "person_visits"})
    out = []
    for doc in (DOC, by_games):
        reg = registry_from(doc)
        raw: dict[str, Any] = {"source": "pos.sales", "game_date": D.isoformat()}
        if entities is not None:
            raw["affected_entities"] = entities
        out.append(plan(reg, relations_for(reg, ROWS), normalize_event(raw, reg), AS_OF))
    assert out[0] == out[1]
    assert out[0][0].dates[0] == D and len(out[0][0].dates) > 1


def test_occurrences_follow_each_entitys_next_via_dates() -> None:
    """m1's next 2 visits after D are D+2 and D+5; m2's next is D+3 (its only one)."""
    reg = registry_from(DOC)
    ev = normalize_event(
        {
            "source": "pos.sales",
            "game_date": D.isoformat(),
            "affected_entities": {"people": ["m1", "m2"]},
        },
        reg,
    )
    (dec,) = plan(reg, relations_for(reg, ROWS), ev, AS_OF)
    assert dec.entity_ids == ("m1", "m2")
    assert dec.dates == (D, D + timedelta(days=2), D + timedelta(days=3), D + timedelta(days=5))


@pytest.mark.parametrize(
    ("lookback", "message"),
    [
        ({"games": 2, "occurrences": 2, "via": "person_visits"}, "exactly one of 'days' or 'occurrences'"),
        ({"occurrences": 2}, "needs 'via'"),
        ({"games": 2}, "needs 'via'"),
        ({"days": 2, "via": "person_visits"}, "'via' only applies to lookback by 'occurrences'"),
        ({}, "exactly one of 'days' or 'occurrences'"),
    ],
)  # fmt: skip
def test_lookback_forms_are_checked(lookback: dict[str, Any], message: str) -> None:
    """A lookback names one of days/occurrences/games, and via exactly when counting."""
    r = check_config_bytes(json.dumps(_with(processors__profile__lookback=lookback)))
    assert [i.code for i in r.errors] == ["schema"]
    assert message in r.errors[0].message


@pytest.mark.parametrize(
    ("key", "maps"),
    [("people", True), ("person", True), ("persons", False), ("stores", True), ("store", True)],
)
def test_explicit_plural_replaces_name_plus_s(key: str, maps: bool) -> None:
    """With plural: people, 'people' and 'person' name persons and 'persons' names nothing;
    a type without plural keeps name+s."""
    reg = registry_from(DOC)
    ids = ["m1"] if key.startswith("person") or key == "people" else ["S1"]
    ev = normalize_event(
        {"source": "pos.sales", "game_date": D.isoformat(), "affected_entities": {key: ids}}, reg
    )
    (dec,) = plan(reg, relations_for(reg, ROWS), ev, AS_OF)
    assert (dec.reason == "entity_scope") is maps
    assert reg.plurals == {"person": "people", "store": "stores"}


@pytest.mark.parametrize(
    ("entities", "collides"),
    [
        ({"person": {"plural": "people"}, "people": {}}, True),
        ({"person": {"plural": "folk"}, "human": {"plural": "folk"}}, True),
        ({"item": {}, "box": {"plural": "items"}}, True),
        ({"item": {}, "items": {}}, False),  # 'items' names the declared type items
        ({"person": {"plural": "people"}, "store": {}}, False),
    ],
)
def test_plural_collisions_are_errors(entities: dict[str, Any], collides: bool) -> None:
    """An event key may name only one entity type."""
    doc = {"version": 1, "entities": entities,
           "processors": {"p": {"phase": 1, "granularity": "date", "inputs": [{"source": "a.b"}]}}}  # fmt: skip
    r = check_config_bytes(json.dumps(doc), with_relations=False)
    assert ("plural_collision" in {i.code for i in r.errors}) is collides


def test_date_field_is_read_from_events_and_written_on_triggers() -> None:
    """With date_field: business_date the normaliser reads business_date (not game_date),
    and a fired trigger carries business_date, start_date and end_date on the wire, in
    Pub/Sub attributes, and reads back from its own bytes."""
    reg = registry_from(_with(date_field="business_date"))
    raw = {"event_id": "e-1", "source": "pos.sales", "business_date": D.isoformat(),
           "affected_entities": {"people": ["m1"]}, "priority": "critical"}  # fmt: skip
    ev = normalize_event(raw, reg)
    assert ev.dates() == (D,)
    with pytest.raises(EventError, match="no business_date"):
        normalize_event({"source": "pos.sales", "game_date": D.isoformat()}, reg)
    book = WindowBook(reg)
    (decision,) = plan(reg, relations_for(reg, ROWS), ev, AS_OF)
    fired = book.add(ev, decision, 0.0)
    assert fired, "a critical event fires at once"
    t = fired[0]
    wire = trigger_json(t)
    assert "game_date" not in wire and wire["date_field"] == "business_date"
    assert (
        wire["business_date"] == wire["start_date"] == wire["end_date"] == t.game_date.isoformat()
    )
    assert trigger_attributes(t)["business_date"] == t.game_date.isoformat()
    back = Trigger.model_validate_json(trigger_bytes(t))
    assert back == t


def test_default_date_field_keeps_the_spec_trigger_shape() -> None:
    """Without date_field the trigger is SPEC section 3's: game_date and no date_field key."""
    t = Trigger(trigger_id="t-1", processor="p", game_date=date(2025, 11, 19),
                start_date=date(2025, 11, 19), end_date=date(2025, 11, 19), scope="date",
                reason="no_entities_in_event")  # fmt: skip
    wire = trigger_json(t)
    assert wire["game_date"] == "2025-11-19" and "date_field" not in wire
    assert Trigger.model_validate(wire) == t


@pytest.mark.parametrize(
    ("field", "ok"),
    [("game_date", True), ("business_date", True), ("start_date", False), ("source", False),
     ("status", False), ("date_field", False)],
)  # fmt: skip
def test_date_field_may_not_take_over_another_event_key(field: str, ok: bool) -> None:
    """date_field names a key of its own: start_date, source, status... are refused."""
    r = check_config_bytes(json.dumps(_with(date_field=field)), with_relations=False)
    assert ("reserved_name" in {i.code for i in r.errors}) is not ok


def _wire_keys() -> list[str]:
    from scoperouter.schemas import CanonicalEvent

    keys = set(Trigger.model_fields) | {
        f.alias or name for name, f in CanonicalEvent.model_fields.items()
    }
    return sorted(keys - {"game_date"})


@pytest.mark.parametrize("field", _wire_keys())
def test_date_field_may_take_over_no_key_of_an_event_or_a_trigger(field: str) -> None:
    """Every key a trigger or a canonical event carries (from the models, so a field added
    later is covered: caused_by_more, trigger_message_id... were not) is refused as date_field."""
    r = check_config_bytes(json.dumps(_with(date_field=field)), with_relations=False)
    assert "reserved_name" in {i.code for i in r.errors}

"""An entity id the SDK sends is a string or an int (stringified); any other key (a tuple, a
float, a bool) raises TypeError naming it instead of becoming an invented id."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from scoperouter.sdk import ChangeDetector, build_completion_event, diff_rows
from scoperouter.sdk.events import missed_ids

DAY = date(2025, 11, 19)
BAD = [
    pytest.param(("lebronjames", "draftkings"), id="tuple"),
    pytest.param(2544.0, id="float"),
    pytest.param(True, id="bool"),
    pytest.param(b"lebronjames", id="bytes"),
]
GOOD = [
    pytest.param("lebronjames", "lebronjames", id="str"),
    pytest.param(2544, "2544", id="int"),
]


@pytest.mark.parametrize("key", BAD)
def test_diff_rows_refuses_a_key_that_is_no_id(key: Any) -> None:
    """diff_rows (and so ChangeDetector) raises TypeError naming a changed row's bad key."""
    with pytest.raises(TypeError, match="entity id"):
        diff_rows({key: {"points": 1}}, {key: {"points": 2}})
    with pytest.raises(TypeError, match="entity id"):
        ChangeDetector("s", "player").observe(DAY, {key: {"points": 1}}, {key: {"points": 2}})


@pytest.mark.parametrize("key", BAD)
def test_published_ids_refuse_a_key_that_is_no_id(key: Any) -> None:
    """affected_entities and missed_entities raise TypeError on an id that is no str or int."""
    with pytest.raises(TypeError, match="entity id"):
        build_completion_event(source="s", game_date=DAY, affected_entities={"players": [key]})
    with pytest.raises(TypeError, match="entity id"):
        missed_ids([key])


@pytest.mark.parametrize(("key", "sent"), GOOD)
def test_str_and_int_ids_are_sent_as_strings(key: Any, sent: str) -> None:
    """A str id is sent as is, an int (an INT64 key column) as its decimal string."""
    assert diff_rows({key: {"p": 1}}, {key: {"p": 2}}).entities == (sent,)
    event = build_completion_event(source="s", game_date=DAY, affected_entities={"players": [key]})
    assert event["affected_entities"] == {"players": [sent]}
    assert missed_ids([key]) == [sent]


@pytest.mark.parametrize(
    ("before", "after", "entities", "added", "removed"),
    [
        # an INT64 key read back beside a recomputed string id: the same entity, unchanged
        ({1628983: {"pts": 27}}, {"1628983": {"pts": 27}}, (), (), ()),
        ({"1628983": {"pts": 27}}, {1628983: {"pts": 28}}, ("1628983",), (), ()),
        # it was added and removed at once, every field changed
        ({1628983: {"pts": 27}}, {"201939": {"pts": 27}}, ("1628983", "201939"), ("201939",),
         ("1628983",)),
    ],
)  # fmt: skip
def test_an_int_key_and_its_digits_are_one_entity(
    before: dict[Any, Any],
    after: dict[Any, Any],
    entities: tuple[str, ...],
    added: tuple[str, ...],
    removed: tuple[str, ...],
) -> None:
    """Rows pair by the id their key names (an int key is its digits), not by the key itself."""
    got = diff_rows(before, after)
    assert (got.entities, got.added, got.removed) == (entities, added, removed)


def test_one_entity_keyed_twice_in_one_snapshot_is_refused() -> None:
    """1628983 and "1628983" in one snapshot name one entity twice: ValueError, never a row lost."""
    with pytest.raises(ValueError, match="two rows of entity '1628983'"):
        diff_rows({1628983: {"pts": 1}, "1628983": {"pts": 2}}, {})

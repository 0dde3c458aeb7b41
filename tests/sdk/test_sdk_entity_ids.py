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

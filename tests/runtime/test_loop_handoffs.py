"""The event loop's cheap hand-offs equal what they replace: an HTTP or pulled message's
``Inbound`` built without the dataclass constructor, and a delivery's dispatch outcomes
handed to the execution log in one go."""

from __future__ import annotations

from typing import Any

import pytest
from runtime_support import date_trigger

from scoperouter.messages.models import Event
from scoperouter.runtime.http import _HTTP_INBOUND
from scoperouter.runtime.log_bridge import LogBridge
from scoperouter.runtime.outcomes import Inbound, Outcome, accepted, fast_inbound
from scoperouter.runtime.pubsub import _PULLED

EVENT = Event.model_validate({"event_id": "e1", "source": "s", "game_date": "2025-11-19"})


@pytest.mark.parametrize(("body", "event"), [(b"{}", EVENT), (b"", EVENT), (b'{"a": 1}', None)])
def test_http_inbound_equals_the_constructor(body: bytes, event: Event | None) -> None:
    """fast_inbound on HTTP's defaults gives the Inbound the constructor gives, field for field."""
    got = fast_inbound(_HTTP_INBOUND, data=body, event=event)
    want = Inbound("http", data=body, event=event)
    assert got == want and vars(got) == vars(want)
    with pytest.raises(AttributeError):  # still frozen
        got.data = b"x"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("data", "message_id", "trigger_id"),
    [(b"{}", "m1", None), (b"x", "m2", "t-9"), (b"", None, None)],
)
def test_pulled_inbound_equals_the_constructor(
    data: bytes, message_id: str | None, trigger_id: str | None
) -> None:
    """fast_inbound on a pulled message's defaults gives the constructor's Inbound."""
    got = fast_inbound(_PULLED, data=data, message_id=message_id, trigger_id=trigger_id)
    want = Inbound(
        "pubsub",
        data=data,
        message_id=message_id,
        dead_letter_on_reject=True,
        trigger_id=trigger_id,
    )
    assert got == want and vars(got) == vars(want)


@pytest.mark.parametrize(("event_id", "triggers"), [("e1", 0), ("e-2", 3)])
def test_accepted_outcome_equals_the_constructor(event_id: str, triggers: int) -> None:
    """accepted() gives the Outcome the constructor gives: fields, equality, hash, ack."""
    got = accepted(event_id, triggers)
    want = Outcome("accepted", event_id, None, None, triggers)
    assert got == want and vars(got) == vars(want) and hash(got) == hash(want)
    assert got.ack and repr(got) == repr(want)
    with pytest.raises(AttributeError):  # still frozen
        got.triggers = 9  # type: ignore[misc]


class RecordingLog:
    """An execution log that keeps the dispatch rows it is given."""

    def __init__(self) -> None:
        self.rows: list[Any] = []

    def record_dispatches(self, rows: list[Any]) -> None:
        self.rows.extend(rows)

    def flush(self) -> None:
        return None


def _outcomes(n: int) -> list[Any]:
    return [(date_trigger(i), "ok", i + 1, 0.001 * i, 1_700_000_000.0 + i, None) for i in range(n)]


@pytest.mark.parametrize(("n", "closed"), [(1, False), (5, False), (3, True), (0, False)])
def test_dispatches_writes_what_dispatch_writes(n: int, closed: bool) -> None:
    """dispatches() leaves the log the rows dispatch() once per outcome leaves, in order."""
    one, many = RecordingLog(), RecordingLog()
    b_one, b_many = LogBridge(one, None), LogBridge(many, None)  # type: ignore[arg-type]
    if closed:
        b_one.shutdown(timeout=5)
        b_many.shutdown(timeout=5)
    for o in _outcomes(n):
        b_one.dispatch(*o)
    b_many.dispatches(_outcomes(n))
    assert b_many.pending == b_one.pending
    b_one.shutdown(timeout=5)
    b_many.shutdown(timeout=5)
    assert many.rows == one.rows and len(one.rows) == n

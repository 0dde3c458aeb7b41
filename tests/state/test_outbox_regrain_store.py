"""A trigger waiting in the outbox over a restart that changed its processor's granularity
(a rollback to ``granularity: date``) is sent as the full-date trigger, on SQLite and
PostgreSQL (``make_store``): new id and body, its row, attempts and lease kept; a trigger
its processor still takes, a done row and a processor no longer in the registry are left."""

from __future__ import annotations

from typing import Any

import pytest
from state_support import StoreFactory, batch, contrib

from scoperouter.router.window_trigger import trigger_id
from scoperouter.state.model import Done

T0 = 1_700_000_000.0


def _shape(t: Any) -> tuple[Any, ...]:
    return (t.scope, t.entity_type, t.entity_ids, t.reason, t.caused_by)


@pytest.mark.parametrize(
    ("granularity", "want"),
    [
        ("date", ("date", None, None, "date_granularity", ("e0", "e1"))),
        ("team", ("date", None, None, "unmapped_entity_type", ("e0", "e1"))),
        ("player", ("entities", "player", ("a", "b"), "entity_scope", ("e0", "e1"))),
    ],
)
def test_waiting_trigger_takes_the_granularity_now(
    make_store: StoreFactory, granularity: str, want: tuple[Any, ...]
) -> None:
    """Player ids fired before the restart, ``p`` now ``granularity``: the claimed trigger."""
    s = make_store()
    for i, ids in enumerate((("a",), ("b",))):
        s.ingest(batch(contrib(f"e{i}", ids)), T0 + i)
    [fired] = s.fire_due(T0 + 1000)  # leased to the process that then stopped
    s.close()
    s = make_store()
    assert s.regrain_pending({"p": granularity}) == (want[0] == "date")
    s.rescue_expired(T0 + 2000, all_leases=True)
    [item] = s.claim(T0 + 2000)
    assert item.item_id == fired.item_id
    assert _shape(item.trigger) == want
    same = want[0] == "entities"
    want_id = (
        fired.trigger.trigger_id
        if same
        else trigger_id("p", fired.trigger.game_date, "date", None, want[4])
    )
    assert item.trigger.trigger_id == want_id
    [row] = s.outbox_rows()
    assert row.trigger_id == want_id


@pytest.mark.parametrize(
    ("processor", "done"), [("gone", False), ("p", True)], ids=["not-in-registry", "done"]
)
def test_rows_left_as_they_are(make_store: StoreFactory, processor: str, done: bool) -> None:
    """A processor not in the registry keeps its ids; a delivered row is not rewritten."""
    s = make_store()
    s.ingest(batch(contrib("e0", ("a",), processor=processor)), T0)
    [fired] = s.fire_due(T0 + 1000)
    if done:
        s.apply_marks([Done(fired.item_id, 1, T0 + 1001)])
    assert s.regrain_pending({"p": "date"}) == 0
    [row] = s.outbox_rows()
    assert row.trigger_id == fired.trigger.trigger_id

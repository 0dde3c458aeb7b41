"""A trigger waiting in the outbox over a restart that changed its processor's granularity
(a rollback to ``granularity: date``) is sent as the full-date trigger, on SQLite and
PostgreSQL (``make_store``): new id and body, its row, attempts and lease kept; a dead one
too, with its dead letter, so a redrive sends the full-date trigger; a trigger its
processor still takes, a done row and a processor no longer in the registry are left."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from state_support import StoreFactory, batch, contrib

from scoperouter.messages.models import Trigger
from scoperouter.router.window_trigger import trigger_id
from scoperouter.runtime.payloads import trigger_bytes
from scoperouter.runtime.store import Store
from scoperouter.state.model import Dead, Done

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


def test_a_dead_row_and_its_letter_take_the_granularity_now(make_store: StoreFactory) -> None:
    """A trigger dead before the restart becomes the full-date one, its dead letter with it (ref and payload); redriven, the letter goes and the full-date trigger is claimed."""
    s = make_store()
    s.ingest(batch(contrib("e0", ("a",))), T0)
    [fired] = s.fire_due(T0 + 1000)
    assert s.apply_marks([Dead(fired.item_id, 3, T0 + 1001, "max_attempts", "503")]) == (True,)
    [letter] = s.dead_letters()
    assert letter.ref == f"{fired.trigger.trigger_id}#{fired.item_id}"
    s.close()
    s = make_store()
    assert s.regrain_pending({"p": "date"}) == 1
    want = trigger_id("p", fired.trigger.game_date, "date", None, ("e0",))
    [letter] = s.dead_letters()
    assert letter.ref == f"{want}#{fired.item_id}" and letter.payload is not None
    assert _shape(Trigger.model_validate_json(letter.payload))[:2] == ("date", None)
    assert s.redrive_dead(T0 + 2000) == 1
    assert s.dead_letters() == []  # found under its new ref
    [item] = s.claim(T0 + 2000)
    assert (item.trigger.trigger_id, item.trigger.scope) == (want, "date")


def test_the_router_stores_dead_row_and_letter_take_the_granularity_now(tmp_path: Path) -> None:
    """The per-process Router store (snapshot + journal): a dead entity trigger and its letter become full date; redriven, the full-date trigger is what is due."""
    store = Store(tmp_path / "router.sqlite3", sync="normal")
    t = Trigger.model_validate(
        {"trigger_id": "t-old", "processor": "p", "game_date": "2025-11-19",
         "start_date": "2025-11-19", "end_date": "2025-11-19", "scope": "entities",
         "entity_type": "player", "entity_ids": ["a"], "reason": "entity_scope",
         "caused_by": ["e0"]}
    )  # fmt: skip
    body = trigger_bytes(t)
    with store.transaction():
        row = store.insert_trigger("t-old", "p", body.decode(), T0)
        store.mark_dead(row, 3, T0 + 1, "503")
        store.dead_letter("trigger", f"t-old#{row}", "max_attempts", "503", body, T0 + 1)
    with store.transaction():
        assert store.regrain_pending({"p": "date"}) == 1
    want = trigger_id("p", t.game_date, "date", None, ("e0",))
    [letter] = store.dead_letters()
    assert letter.ref == f"{want}#{row}" and letter.payload is not None
    assert Trigger.model_validate_json(letter.payload).scope == "date"
    with store.transaction():
        assert store.redrive_dead(T0 + 5) == 1
    assert store.dead_letters() == []
    [due] = store.due_triggers("p", T0 + 5, 10)
    assert (due.trigger_id, Trigger.model_validate_json(due.body).scope) == (want, "date")
    store.close()

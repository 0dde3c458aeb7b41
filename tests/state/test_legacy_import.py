"""Upgrading from the snapshot + journal store: the imported windows are the ones the old
daemon would have restored; seen ids, pending triggers and dead letters carry over once."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

from state_support import StoreFactory

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "planner"))
from planner_support import registry_from

from scoperouter.messages.models import Event
from scoperouter.router.decisions import Decision
from scoperouter.router.windows import WindowBook
from scoperouter.runtime.store import Store
from scoperouter.state.legacy import read_legacy

REG = registry_from(
    {
        "version": 1,
        "entities": {"player": {}},
        "defaults": {"max_entities": 3, "window": {"quiet": "10s", "max_wait": "60s"}},
        "processors": {
            "p": {"phase": 3, "granularity": "player", "inputs": [{"source": "raw.a"}]},
        },
    }
)
D = date(2025, 11, 19)


def _ev(eid: str) -> Event:
    return Event(event_id=eid, source="raw.a", game_date=D, correlation_id="c-" + eid)


def _dec(*ids: str, day: date = D) -> Decision:
    return Decision(
        processor="p",
        action="run",
        scope="entities",
        entity_type="player",
        entity_ids=ids,
        dates=(day,),
        reason="entity_scope",
    )


def _old_store(path: Path) -> WindowBook:
    """An old state file: a snapshot, then journaled adds (one window fired by a due)."""
    old = Store(path, sync="normal")
    book = WindowBook(REG)
    book.add(_ev("e1"), _dec("a"), 100.0)
    book.add(_ev("e2"), _dec("b", day=date(2025, 11, 20)), 100.0)
    old.save_snapshot(book.snapshot(), 100.0)
    with old.transaction():
        for eid, dec, now in (
            ("e3", _dec("c"), 105.0),
            ("e5", _dec("e", day=date(2025, 11, 20)), 115.0),
            ("e4", _dec("d", day=date(2025, 11, 21)), 120.0),
        ):
            old.journal("add", now, _ev(eid).model_dump_json(), dec.model_dump_json())
            book.add(_ev(eid), dec, now)
        old.journal("due", 121.0)
        book.due(121.0)  # the Nov 19 window (quiet 10 s) fired: not imported
        for eid in ("e1", "e2", "e3", "e4", "e5"):
            old.mark_seen(eid, 100.0)
        pending = old.insert_trigger("t-pending", "p", '{"x":1}', 110.0)
        old.mark_attempts(pending, 2)
        done = old.insert_trigger("t-done", "p", '{"x":2}', 110.0)
        old.mark_done(done, 1, 111.0)
        old.dead_letter("event", "m-1", "invalid_json", "bad", b"{", 99.0)
    old.close()
    return book


def test_legacy_state_imports_once(tmp_path: Path, make_store: StoreFactory) -> None:
    """Windows after journal replay, seen times, pending attempts and letters; once."""
    book = _old_store(tmp_path / "old.sqlite3")
    state = read_legacy(tmp_path / "old.sqlite3", REG)
    s = make_store()
    assert s.import_legacy(state, 200.0) is True
    got = [
        (w.key, w.opened_at, w.last_at, sorted(w.entity_ids or ()), sorted(w.caused_by))
        for w in s.open_windows()
    ]
    want = [
        (
            (i["processor"], date.fromisoformat(i["date"])),
            i["opened_at"],
            i["last_at"],
            i["entity_ids"],
            i["caused_by"],
        )
        for i in book.snapshot()["windows"]  # type: ignore[attr-defined]
    ]
    assert got == want and [k[0][1] for k in got] == [date(2025, 11, 20), date(2025, 11, 21)]
    assert got[0][1:] == (100.0, 115.0, ["b", "e"], ["e2", "e5"])  # snapshot + journal
    assert s.seen_at("e3") == 100.0 and s.next_deadline() == 125.0
    [row] = s.outbox_rows()
    assert (row.trigger_id, row.status, row.attempts) == ("t-pending", "pending", 2)
    [dl] = s.dead_letters()
    assert (dl.kind, dl.ref, dl.payload) == ("event", "m-1", b"{")
    assert s.import_legacy(state, 300.0) is False
    assert len(s.open_windows()) == 2 and len(s.outbox_rows()) == 1

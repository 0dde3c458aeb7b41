"""Upgrading from the snapshot + journal store: the imported windows are the ones the old
daemon would have restored; seen ids, pending triggers and dead letters carry over once."""

from __future__ import annotations

import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from state_support import ONE_INPUT_REGISTRY, StoreFactory

from window_limit_support import run_ids

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "planner"))
from planner_support import registry_from

from scoperouter.messages.models import Event
from scoperouter.processor_registry.relations import InMemoryRelations
from scoperouter.router.completion_ref import CompletionRef
from scoperouter.router.decisions import Decision
from scoperouter.router.windows import WindowBook
from scoperouter.runtime.durable_windows import DurableWindows
from scoperouter.runtime.options import RouterOptions
from scoperouter.runtime.store import Store
from scoperouter.state.legacy import LOOP_DEAD_REASON, read_legacy

REG = registry_from(ONE_INPUT_REGISTRY)
D = date(2025, 11, 19)


def _ev(eid: str) -> Event:
    return Event(event_id=eid, source="raw.a", game_date=D, correlation_id="c-" + eid)


def _dec(*ids: str, day: date = D) -> Decision:
    return run_ids(day, *ids)


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


def _loop_registry(barrier: bool, p_quiet: str = "10s", **defaults: Any) -> Any:
    """u (raw.a, fires at once) publishes an.u, which p reads; ``barrier``: p waits for u."""
    p: dict[str, Any] = {
        "phase": 4,
        "granularity": "player",
        "inputs": [{"source": "an.u"}],
        "window": {"quiet": p_quiet, "max_wait": "2m"},
    }
    if barrier:
        p["barrier"] = {}
    return registry_from(
        {
            "version": 1,
            "entities": {"player": {}},
            "defaults": {"window": {"quiet": "10s", "max_wait": "60s"}, **defaults},
            "processors": {
                "u": {
                    "phase": 3,
                    "granularity": "player",
                    "inputs": [{"source": "raw.a"}],
                    "publishes": "an.u",
                    "window": {"quiet": "0s", "max_wait": "0s"},
                },
                "p": p,
            },
        }
    )


T0 = 1_764_000_000.0


class _LoopDaemon:
    """The closed loop's daemon state (snapshot + journal store) driven by hand."""

    def __init__(self, path: Path, registry: Any) -> None:
        self.now = [T0]
        self.store = Store(path, sync="normal")
        self.dw = DurableWindows(registry, self.store, RouterOptions(as_of=D), lambda: self.now[0])
        self.dw.restore()

    def feed(self, eid: str, source: str, pid: str, at: float) -> None:
        self.now[0] = at
        ev = Event(event_id=eid, source=source, game_date=D, affected_entities={"players": (pid,)})
        dw, store = self.dw, self.store
        runs = [
            (d, d.model_dump_json())
            for d in dw.engine.plan(ev, InMemoryRelations({}), D)
            if d.action == "run"
        ]
        with store.transaction():
            store.mark_seen(eid, at)
            fired = dw.accept(ev, ev.model_dump_json(), runs, at)
            dw.persist(fired, at, datetime.fromtimestamp(at, UTC))
            dw.finish_journal()
        dw.after_commit()


def test_a_window_held_at_the_barrier_is_imported(tmp_path: Path, make_store: StoreFactory) -> None:
    """A window the closed loop held at its barrier is imported when the loop is turned off."""
    old = _LoopDaemon(tmp_path / "old.sqlite3", _loop_registry(barrier=True))
    old.feed("e1", "raw.a", "a", T0)  # u's trigger goes out at once; no completion: u is busy
    old.feed("e2", "an.u", "b", T0 + 1)  # p's window opens
    old.now[0] = T0 + 30
    old.dw.fire_due(lambda: None)  # p is due, and held: u has open work on the date
    assert old.dw.engine.loop is not None and list(old.dw.engine.loop.barrier.held) == [("p", D)]
    old.store.close()
    state = read_legacy(tmp_path / "old.sqlite3", _loop_registry(barrier=False))
    got = [(w.processor, w.entity_ids, w.caused_by) for w in state.windows]
    assert got == [("p", frozenset({"b"}), frozenset({"e2"}))]
    s = make_store()
    assert s.import_legacy(state, T0 + 40) is True
    [item] = s.fire_due(T0 + 40)  # no barrier any more: it goes out
    assert (item.trigger.entity_ids, item.trigger.caused_by) == (("b",), ("e2",))


def test_the_journal_replays_under_the_registry_that_wrote_it(
    tmp_path: Path, make_store: StoreFactory
) -> None:
    """A window open under the old quiet (60 s) is imported, though the new quiet (10 s) has passed."""
    old = _LoopDaemon(tmp_path / "old.sqlite3", _loop_registry(False, "60s", run_retries=1))
    old.feed("e2", "an.u", "b", T0)  # p's window: due at T0 + 60 under that registry
    old.feed("e1", "raw.a", "a", T0 + 30)  # u fires: the journal has a due at T0 + 30
    assert old.dw.book.keys() == (("p", D),)
    old.store.close()
    state = read_legacy(tmp_path / "old.sqlite3", _loop_registry(False, "10s"))
    got = [(w.processor, w.entity_ids, w.caused_by, w.last_at) for w in state.windows]
    assert got == [("p", frozenset({"b"}), frozenset({"e2"}), T0)]
    s = make_store()
    assert s.import_legacy(state, T0 + 31) is True
    [item] = s.fire_due(T0 + 31)  # the new quiet applies from here on: due at once
    assert item.trigger.caused_by == ("e2",)


def test_dead_and_backing_off_triggers_are_imported_as_they_were(
    tmp_path: Path, make_store: StoreFactory
) -> None:
    """A pending row backing off keeps its due time; a dead row stays dead with its dead letter, which names the new row."""
    old = Store(tmp_path / "old.sqlite3", sync="normal")
    with old.transaction():
        waiting = old.insert_trigger("t-wait", "p", '{"x":1}', 100.0, "live")
        old.defer(waiting, 3, 500.0, "503")
        dead = old.insert_trigger("t-dead", "p", '{"x":2}', 100.0, "live")
        old.mark_dead(dead, 5, 150.0, "410 gone")
        old.dead_letter("trigger", f"t-dead#{dead}", "refused", "410 gone", b'{"x":2}', 150.0)
    old.close()
    state = read_legacy(tmp_path / "old.sqlite3", REG)
    s = make_store()
    assert s.import_legacy(state, 200.0) is True
    rows = {r.trigger_id: r for r in s.outbox_rows()}
    got = {t: (r.status, r.attempts, r.available_at, r.error) for t, r in rows.items()}
    assert got["t-wait"] == ("pending", 3, 500.0, None)
    assert got["t-dead"][:2] == ("dead", 5) and got["t-dead"][3] == "410 gone"
    [dl] = s.dead_letters()
    assert (dl.ref, dl.reason, dl.payload) == (
        f"t-dead#{rows['t-dead'].item_id}",
        "refused",
        b'{"x":2}',
    )
    assert s.redrive_dead(600.0) == 1 and s.dead_letters() == []  # its letter goes with it


def _fail(old: _LoopDaemon, trigger_id: str, at: float) -> None:
    """A completion reporting the run of ``trigger_id`` failed, at ``at``."""
    old.now[0] = at
    with old.store.transaction():
        old.dw.complete(CompletionRef("failed", trigger_id, f"run-{at}", error="boom"), at)
        old.dw.finish_journal()
    old.dw.after_commit()


def _delivered(old: _LoopDaemon, at: float) -> None:
    """Every pending outbox row was delivered (the loop then waits on its completion)."""
    with old.store.transaction():
        for row in old.store.pending_triggers():
            old.store.mark_done(row.row_id, 1, at)


def test_the_loop_s_unfinished_work_is_imported_as_outbox_rows(
    tmp_path: Path, make_store: StoreFactory
) -> None:
    """The closed loop turned off: a re-dispatch it scheduled is a pending row due then, a trigger it dead-lettered a dead row with its letter, one it waits on is counted."""
    old = _LoopDaemon(tmp_path / "old.sqlite3", _loop_registry(False, run_retries=1))
    for n, pid in enumerate("abc"):
        old.feed(f"e-{pid}", "raw.a", pid, T0 + n)  # u fires at once: three triggers
    _delivered(old, T0 + 5)
    loop = old.dw.engine.loop
    assert loop is not None
    tid = {e.trigger.entity_ids[0]: e.trigger_id for e in loop.ledger.entries()}  # type: ignore[index]
    _fail(old, tid["b"], T0 + 10)  # b backs off (a retry left)
    (due,) = {e.due_at for e in loop.ledger.entries() if e.phase == "backoff"}
    assert due is not None
    old.now[0] = due
    old.dw.fire_due(lambda: None)  # b re-dispatched
    _delivered(old, due)
    _fail(old, tid["b"], due + 1)  # b's retry failed too: a dead letter
    _fail(old, tid["a"], due + 1)  # a backs off
    phases = {e.trigger.entity_ids[0]: (e.phase, e.due_at) for e in loop.ledger.entries()}  # type: ignore[index]
    assert {p: ph for p, (ph, _) in phases.items()} == {
        "a": "backoff",
        "b": "dead",
        "c": "dispatched",
    }
    again = phases["a"][1]
    assert again is not None
    old.store.close()
    state = read_legacy(tmp_path / "old.sqlite3", _loop_registry(False))
    assert state.awaiting == 1  # c: sent, its completion never came
    s = make_store()
    assert s.import_legacy(state, due + 2) is True
    rows = {(r.trigger_id, r.status): r for r in s.outbox_rows()}
    assert set(rows) == {(tid["a"], "pending"), (tid["b"], "dead")}
    assert rows[(tid["a"], "pending")].available_at == again
    assert rows[(tid["a"], "pending")].mode == "live"
    [dl] = s.dead_letters()
    assert (dl.kind, dl.ref, dl.reason) == (
        "trigger",
        f"{tid['b']}#{rows[(tid['b'], 'dead')].item_id}",
        LOOP_DEAD_REASON,
    )
    assert s.claim(again - 1) == []
    [item] = s.claim(again)
    assert (item.trigger.trigger_id, item.trigger.entity_ids) == (tid["a"], ("a",))

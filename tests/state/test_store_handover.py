"""serve's two stores hand their work over when the closed loop is switched across a restart
(runtime/state_handover.py): windows of one key join by the window rules, the rows keep their
attempts, due time and dead letters, and handing the same work over twice writes nothing
twice (a start that died between the carry and letting go of the other store)."""

from __future__ import annotations

import sys
from dataclasses import replace
from datetime import date
from pathlib import Path

from state_support import DAY, ONE_INPUT_REGISTRY, batch, contrib, win

from scoperouter.router.window_state import CAUSED_BY_CAP
from scoperouter.router.window_state import WindowState as BookWindow
from scoperouter.runtime.durable_windows import DurableWindows
from scoperouter.runtime.options import RouterOptions
from scoperouter.runtime.state_handover import _into, carry_into_loop_store
from scoperouter.runtime.store import Store
from scoperouter.state import StoreOptions
from scoperouter.state.legacy import Carried, DeadTrigger, LegacyState, PendingTrigger
from scoperouter.state.model import Dead, DeadLetterIn, RetryLater
from scoperouter.state.sqlite import SqliteStateStore

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "planner"))
from planner_support import registry_from

REG = registry_from(ONE_INPUT_REGISTRY)
OWNER = StoreOptions(owner="a")
LATER = 4e9  # a due time past any test run (2096)


def _work() -> LegacyState:
    """Another store's work: a window of a key the store holds and one of another day, a
    trigger backing off, a dead one with its letter, two event letters, two seen ids."""
    body = b'{"x":1}'
    return LegacyState(
        seen=(("e1", 50.0), ("e9", 90.0)),
        windows=(
            win({"b"}, opened=95.0, last=96.0, causes=("e9",)),
            win({"c"}, day=date(2025, 11, 20), causes=("e9",)),
        ),
        pending=(PendingTrigger("t-1", "p", body, 2, 90.0, "live", 500.0),),
        dead_letters=(
            DeadLetterIn("event", None, "invalid_json", "bad", b"{", 92.0),
            DeadLetterIn("event", "m-1", "invalid_json", "bad", b"{", 93.0),
        ),
        dead=(
            DeadTrigger(
                "t-2",
                "p",
                body,
                4,
                80.0,
                91.0,
                "410",
                "live",
                DeadLetterIn("trigger", None, "refused", "410", body, 91.0),
            ),
        ),
    )


def test_the_per_window_store_takes_the_work_once(tmp_path: Path) -> None:
    """carry_over joins a window to the store's one of its key and adds the rows; carrying the same work again writes nothing."""
    s = SqliteStateStore(tmp_path / "state.db", OWNER, sync="normal")
    try:
        s.ingest(batch(contrib("e1", ("a",))), 100.0)
        first = s.carry_over(_work(), 200.0)
        assert first == Carried(2, 1, 1, 1, 2, 1, 0)
        windows, rows, letters = s.open_windows(), s.outbox_rows(), s.dead_letters()
        assert [(w.day, w.entity_ids, w.caused_by, w.opened_at) for w in windows] == [
            (DAY, {"a", "b"}, {"e1", "e9"}, 95.0),
            (date(2025, 11, 20), {"c"}, {"e9"}, 100.0),
        ]
        by_id = {r.trigger_id: r for r in rows}
        assert (by_id["t-1"].status, by_id["t-1"].attempts, by_id["t-1"].available_at) == (
            "pending",
            2,
            500.0,
        )
        assert by_id["t-2"].status == "dead"
        assert ("trigger", f"t-2#{by_id['t-2'].item_id}") in {(d.kind, d.ref) for d in letters}
        assert s.seen_at("e1") == 100.0 and s.seen_at("e9") == 90.0  # the first time stays
        assert s.carry_over(_work(), 300.0) == Carried(2, 2, 0, 0, 0, 0, 2)
        assert (s.open_windows(), s.outbox_rows(), s.dead_letters()) == (windows, rows, letters)
    finally:
        s.close()


def _busy_state_db(path: Path) -> None:
    """A per-window store a stopped daemon left: open windows, a trigger it was sending
    (leased), one backing off, a dead one, an event's dead letter."""
    s = SqliteStateStore(path, OWNER, sync="normal")
    try:
        s.ingest(batch(contrib("e1", ("a",)), contrib("e2", ("b",), day=date(2025, 11, 20))), 100.0)
        fired = s.ingest(
            batch(*(contrib(f"f{n}", (f"x{n}",), processor=f"q{n}", quiet=0.0) for n in range(3))),
            100.0,
        ).fired
        sending, waiting, dead = (i.item_id for i in fired)
        s.apply_marks(
            [RetryLater(waiting, 2, LATER, "503"), Dead(dead, 4, 120.0, "refused", "410")]
        )
        assert {r.item_id: r.status for r in s.outbox_rows()}[sending] == "leased"
        s.dead_letter(DeadLetterIn("event", "m-1", "invalid_json", "bad", b"{", 99.0))
    finally:
        s.close()


def _book(store: Store) -> list[tuple[str, date, frozenset[str] | None]]:
    """The open windows the loop's router restores from ``store``."""
    dw = DurableWindows(REG, store, RouterOptions(), lambda: 200.0)
    dw.restore()
    return [(w.processor, w.day, w.entity_ids) for w in dw.book.states()]


def test_the_loop_store_takes_the_work_of_state_db_once(tmp_path: Path) -> None:
    """Loop turned on: state.db's windows go into the snapshot, its rows keep attempts, due time and letters, state.db is drained; the same work carried again writes nothing."""
    _busy_state_db(tmp_path / "state.db")
    other = SqliteStateStore(tmp_path / "state.db", OWNER)
    state = other.export_state()
    other.close()
    store = Store(tmp_path / "state.sqlite3", sync="normal")
    try:
        got = carry_into_loop_store(store, REG, OWNER, "normal")
        assert got == Carried(2, 0, 2, 1, 1, 5, 0)
        windows = _book(store)
        assert windows == [
            ("p", DAY, frozenset({"a"})),
            ("p", date(2025, 11, 20), frozenset({"b"})),
        ]
        assert store.trigger_counts() == {"pending": 2, "dead": 1}
        assert {(p.trigger_id, p.attempts) for p in store.pending_triggers()} == {
            (t.trigger_id, a) for t, a in zip(state.pending, (0, 2), strict=True)
        }
        assert store.next_available("q1", 200.0) == LATER  # still backing off
        [dead] = [d for d in store.dead_letters() if d.kind == "trigger"]
        row = store._db.execute("SELECT id FROM triggers WHERE status = 'dead'").fetchone()[0]
        assert dead.ref == f"{state.dead[0].trigger_id}#{row}"
        drained = SqliteStateStore(tmp_path / "state.db", OWNER)
        try:
            assert drained.open_windows() == [] and drained.outbox_rows() == []
            assert drained.dead_letters() == [] and drained.seen_at("e1") == 100.0
        finally:
            drained.close()
        assert carry_into_loop_store(store, REG, OWNER, "normal") is None  # drained: nothing
        assert _into(store, REG, state, False) == Carried(2, 2, 0, 0, 0, 0, 3)
        assert _book(store) == windows and store.trigger_counts() == {"pending": 2, "dead": 1}
    finally:
        store.close()


def _hot(first: int, n: int, opened: float, more: int = 0) -> LegacyState:
    """Another store's work: one window of ``DAY`` with ``n`` causes from ``e<first>`` on
    (the smallest ``CAUSED_BY_CAP`` kept) and ``more`` counted beyond them."""
    causes = tuple(f"e{i:05d}" for i in range(first, first + min(n, CAUSED_BY_CAP)))
    w = replace(win({"b"}, opened=opened, last=opened + 1, causes=causes), caused_more=more)
    return LegacyState(seen=(), windows=(w,), pending=(), dead_letters=())


def test_hot_windows_carried_again_into_the_per_window_store_change_nothing(
    tmp_path: Path,
) -> None:
    """A hot window joined by another store's hot window of its key, then the same work carried again (a start that died between the two steps): causes and count -- the trigger id -- unchanged."""
    s = SqliteStateStore(tmp_path / "state.db", OWNER, sync="normal")
    try:
        ids = [f"e{i:05d}" for i in range(CAUSED_BY_CAP + 200)]
        s.ingest(batch(*(contrib(i, ("a",)) for i in ids)), 100.0)
        work = _hot(CAUSED_BY_CAP + 200, CAUSED_BY_CAP, 95.0, more=50)
        s.carry_over(work, 200.0)
        [once] = s.open_windows()
        assert len(once.caused_by) == CAUSED_BY_CAP and once.caused_more >= 1050
        s.carry_over(work, 300.0)
        assert s.open_windows() == [once]
    finally:
        s.close()


def test_hot_windows_carried_again_into_the_loop_store_change_nothing(tmp_path: Path) -> None:
    """The loop store holding a hot window takes another store's hot window of its key twice: the window (causes and count) is the one the first carry left."""
    store = Store(tmp_path / "state.sqlite3", sync="normal")
    try:
        _into(store, REG, _hot(0, CAUSED_BY_CAP, 95.0, more=200), False)
        work = _hot(CAUSED_BY_CAP + 200, CAUSED_BY_CAP, 97.0, more=50)
        _into(store, REG, work, False)
        [once] = _windows(store)
        assert len(once.caused_by) == CAUSED_BY_CAP and once.caused_by.more >= 1050
        _into(store, REG, work, False)
        assert _windows(store) == [once]
    finally:
        store.close()


def _windows(store: Store) -> list[BookWindow]:
    """The open windows the loop's router restores from ``store``."""
    dw = DurableWindows(REG, store, RouterOptions(), lambda: 200.0)
    dw.restore()
    return list(dw.book.states())

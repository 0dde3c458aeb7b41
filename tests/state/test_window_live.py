"""A window remembers that a contribution joined it while its processor fired live (its
``live`` bit, OR-ed when windows merge or join) and fires live, whatever its processor's
mode is when it fires (docs/rollout.md "Flip back"): on SQLite and PostgreSQL, across a
migration (rows written before fire in their processor's mode then, as they did), in the
window snapshot and through the hand-over between serve's two stores."""

from __future__ import annotations

import sqlite3
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from state_support import DAY, ONE_INPUT_REGISTRY, batch, contrib, need_psycopg, win

from scoperouter.messages.normalize import normalize_event
from scoperouter.processor_registry.relations import InMemoryRelations
from scoperouter.router.window_state import join_windows, window_from_json, window_to_json
from scoperouter.router.windows import window_params
from scoperouter.runtime.durable_windows import DurableWindows
from scoperouter.runtime.options import RouterOptions
from scoperouter.runtime.state_handover import carry_into_loop_store, take_old_state
from scoperouter.runtime.store import Store
from scoperouter.state import StateStore, StoreOptions, open_state_store
from scoperouter.state.merge import book_window, join, stored_window
from scoperouter.state.model import FireModes, WindowState
from scoperouter.state.sqlite import SqliteStateStore

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "planner"))
from planner_support import registry_from

REG = registry_from(ONE_INPUT_REGISTRY)
MODES = {
    "live": FireModes(live=frozenset({"p"})),
    "shadow": FireModes(shadow=frozenset({"p"}), others="shadow"),
}
T0 = 1_000.0


def _open(location: str, mode: str) -> StateStore:
    return open_state_store(location, StoreOptions(owner="a", modes=MODES[mode]), sync="normal")


def _live(w: WindowState, live: bool) -> WindowState:
    return replace(w, live=live)


@pytest.mark.parametrize(
    ("joined", "fires", "expected"),
    [
        (("live",), "shadow", "live"),  # acked while live: still sent
        (("shadow",), "shadow", "shadow"),
        (("shadow",), "live", "live"),
        (("shadow", "live"), "shadow", "live"),  # one live contribution is enough
        (("live", "shadow"), "shadow", "live"),  # the bit stays set
    ],
)
def test_a_window_fires_live_when_a_contribution_joined_it_while_live(
    store_location: str, joined: tuple[str, ...], fires: str, expected: str
) -> None:
    """Each store: live when any contribution joined while live, else the mode at fire."""
    for i, mode in enumerate(joined):
        s = _open(store_location, mode)
        s.ingest(batch(contrib(f"e{i}", (f"x{i}",))), T0 + i)
        s.close()
    s = _open(store_location, fires)
    try:
        [w] = s.open_windows()
        assert w.live == ("live" in joined)
        [item] = s.fire_due(T0 + 1000.0)
        assert item.mode == expected
        assert [r.mode for r in s.outbox_rows()] == [expected]
    finally:
        s.close()


@pytest.mark.parametrize("fires", ["live", "shadow"])
def test_a_sqlite_window_row_from_schema_7_fires_in_the_mode_at_fire(
    tmp_path: Path, fires: str
) -> None:
    """Migration 8 adds ``live``; a row written before reads not live (the old rule)."""
    from scoperouter.state.sqlite_schema import MIGRATIONS

    path = tmp_path / "s.db"
    db = sqlite3.connect(path, isolation_level=None)
    for script in MIGRATIONS[:7]:
        for stmt in script.split(";"):
            if stmt.strip():
                db.execute(stmt)
    db.execute(
        "INSERT INTO sr_windows VALUES ('p', ?, 1.0, 1.0, 2.0, '[\"a\"]', 'player', NULL, "
        "'[\"e1\"]', NULL, 'normal', 1.0, 1.0, 3, 0)",
        (DAY.isoformat(),),
    )
    db.execute("PRAGMA user_version = 7")
    db.close()
    s = SqliteStateStore(path, StoreOptions(modes=MODES[fires]))
    try:
        assert s.pragma("user_version") == len(MIGRATIONS) == 9
        [w] = s.open_windows()
        assert not w.live
        assert [x.mode for x in s.fire_due(10.0)] == [fires]
    finally:
        s.close()


@pytest.mark.parametrize("fires", ["live", "shadow"])
def test_a_postgres_window_row_from_schema_5_fires_in_the_mode_at_fire(
    pg_location: str, fires: str
) -> None:
    """Migration 6 adds ``live``; a row written before reads not live (the old rule)."""
    need_psycopg()
    import psycopg

    from scoperouter.state.pg_schema import MIGRATIONS

    with psycopg.connect(pg_location, autocommit=True) as c:
        c.execute(
            "CREATE TABLE sr_schema_version (version integer PRIMARY KEY, "
            "applied_at timestamptz NOT NULL DEFAULT now())"
        )
        for n, script in enumerate(MIGRATIONS[:5], start=1):
            c.execute(script)
            c.execute("INSERT INTO sr_schema_version(version) VALUES (%s)", (n,))
        c.execute(
            "INSERT INTO sr_windows (processor, day, opened_at, last_at, deadline, entity_ids, "
            "entity_type, caused_by, priority, quiet_s, max_wait_s, max_entities) VALUES "
            "('p', %s, 1, 1, 2, '{a}', 'player', '{e1}', 'normal', 1, 1, 3)",
            (DAY,),
        )
    s = _open(pg_location, fires)
    try:
        assert len(MIGRATIONS) >= 6  # migrated on (7: sr_processors)
        [w] = s.open_windows()
        assert not w.live
        assert [x.mode for x in s.fire_due(10.0)] == [fires]
    finally:
        s.close()


@pytest.mark.parametrize(("a", "b"), [(True, False), (False, True), (True, True), (False, False)])
def test_joined_windows_are_live_when_either_is(a: bool, b: bool) -> None:
    """join (a hand-over between stores) ORs the bit, in either order, stored or in memory."""
    first, then = _live(win({"a"}), a), _live(win({"b"}, opened=105.0), b)
    assert join(first, then).live == join(then, first).live == (a or b)
    assert join_windows(book_window(first), book_window(then)).live == (a or b)


@pytest.mark.parametrize("live", [True, False])
def test_the_snapshot_item_keeps_the_bit(live: bool) -> None:
    """window_to_json / window_from_json round-trip it; an item written before reads not live."""
    item = window_to_json(book_window(_live(win({"a"}), live)))
    assert ("live" in item) == live
    back = window_from_json(item, window_params(REG, "p"))
    assert back.live == live and stored_window(back).live == live


def test_state_db_hands_a_live_window_to_the_loop_store(tmp_path: Path) -> None:
    """Closed loop turned on: state.db's live window stays live in the snapshot + journal store."""
    s = SqliteStateStore(tmp_path / "state.db", StoreOptions(owner="a", modes=MODES["live"]))
    s.ingest(batch(contrib("e1", ("a",))), T0)
    s.close()
    store = Store(tmp_path / "state.sqlite3", sync="normal")
    try:
        assert carry_into_loop_store(store, REG, StoreOptions(owner="a"), "normal", shadow=True)
        dw = DurableWindows(REG, store, RouterOptions(shadow=True), lambda: T0 + 1)
        dw.restore()
        [w] = dw.book.states()
        assert w.live
        assert [f.mode for f in dw.engine.tick(T0 + 1000.0)] == ["live"]
    finally:
        store.close()


@pytest.mark.parametrize("how", ["snapshot", "journal"])
def test_the_loop_store_hands_a_live_window_to_state_db(tmp_path: Path, how: str) -> None:
    """Closed loop turned off: a window the loop store holds live comes into state.db live."""
    old = tmp_path / "state.sqlite3"
    store = Store(old, sync="normal")
    now = [T0]
    dw = DurableWindows(REG, store, RouterOptions(), lambda: now[0])
    dw.restore()
    ev = normalize_event(
        {"event_id": "e1", "source": "raw.a", "game_date": DAY.isoformat(),
         "affected_entities": {"players": ["a"]}},
        REG,
    )  # fmt: skip
    decisions = dw.engine.plan(ev, InMemoryRelations({}), DAY)
    runs = [(d, d.model_dump_json()) for d in decisions if d.action == "run"]
    assert runs
    with store.transaction():
        store.mark_seen(ev.event_id, T0)
        assert dw.accept(ev, ev.model_dump_json(), runs, T0) == []
        dw.finish_journal()
    dw.after_commit()
    if how == "snapshot":
        dw.compact(force=True)
    assert [w.live for w in dw.book.states()] == [True]
    store.close()
    s = SqliteStateStore(tmp_path / "state.db", StoreOptions(owner="a", modes=MODES["shadow"]))
    try:
        assert take_old_state(s, old, REG) is not None
        [w] = s.open_windows()
        assert w.live
        assert [x.mode for x in s.fire_due(T0 + 1000.0)] == ["live"]
    finally:
        s.close()

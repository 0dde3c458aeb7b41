"""The roster of the PostgreSQL store (state/pg_roster.py): a replica fires windows, pages
and claims rows only of the processors it routes, or of those no replica has routed for
the grace (``ORPHAN_AFTER_LEASES`` leases); the earliest deadline it wakes for leaves the
others out. SQLite (one instance) fires and claims everything, as before."""

from __future__ import annotations

import dataclasses

import pytest
from state_support import DAY, StoreFactory, batch, contrib, need_psycopg

from scoperouter.state import StateStore, StoreOptions
from scoperouter.state.model import LaneClaim, Released
from scoperouter.state.pg_roster import FORGET_AFTER_S, ORPHAN_AFTER_LEASES

need_psycopg()

T0 = 1_763_000_000.0
LEASE = 30.0
GRACE = ORPHAN_AFTER_LEASES * LEASE
OLD, NEW = frozenset({"p_old"}), frozenset({"p_old", "p_new"})


def _replica(open_: StoreFactory, owner: str, processors: frozenset[str]) -> StateStore:
    s = open_(owner, LEASE)
    s.options = dataclasses.replace(s.options, processors=processors)
    return s


def _new_window(new: StateStore) -> float:
    """A p_new window opened by the new replica (quiet 10 s); its deadline."""
    new.ingest(batch(contrib("e1", processor="p_new")), T0)
    [w] = new.open_windows()
    return w.deadline


@pytest.mark.parametrize(
    ("old_at", "fired_by_old"),
    [
        (T0 + 20, 0),  # the new replica routes p_new: its window is left to it
        (T0 + GRACE - 1, 0),  # still within the grace
        (T0 + GRACE + 1, 1),  # no replica routed p_new for the grace: an orphan
    ],
)
def test_fire_due_leaves_windows_routed_elsewhere(
    replicas: StoreFactory, old_at: float, fired_by_old: int
) -> None:
    """The old replica fires p_new's due window only once no replica routed it for the grace."""
    old, new = _replica(replicas, "old", OLD), _replica(replicas, "new", NEW)
    assert new.announce_processors(T0) == frozenset()
    deadline = _new_window(new)
    assert old.announce_processors(old_at) == (frozenset() if fired_by_old else {"p_new"})
    assert deadline < old_at
    got = old.fire_due(old_at)
    assert [x.trigger.processor for x in got] == ["p_new"] * fired_by_old
    if not fired_by_old:
        assert [x.trigger.processor for x in new.fire_due(deadline)] == ["p_new"]


def test_next_deadline_leaves_windows_routed_elsewhere(replicas: StoreFactory) -> None:
    """The old replica's earliest deadline is its own window's, not p_new's earlier one."""
    old, new = _replica(replicas, "old", OLD), _replica(replicas, "new", NEW)
    new.announce_processors(T0)
    first = _new_window(new)
    old.ingest(batch(contrib("e2", processor="p_old")), T0 + 5)
    assert old.next_deadline() == first  # the roster not read yet: p_new's counts
    old.announce_processors(T0 + 5)
    assert old.next_deadline() == first + 5
    assert new.next_deadline() == first


def test_pages_and_claims_leave_rows_routed_elsewhere(replicas: StoreFactory) -> None:
    """A p_new row given back by the new replica is not paged nor claimed by the old one
    until no replica routed p_new for the grace."""
    old, new = _replica(replicas, "old", OLD), _replica(replicas, "new", NEW)
    new.announce_processors(T0)
    deadline = _new_window(new)
    [item] = new.fire_due(deadline)
    new.apply_marks([Released(item.item_id)])
    now = deadline + 1
    old.announce_processors(now)
    assert old.pending_processors(now) == []
    [lc] = old.claim_lanes([LaneClaim("p_new", 10, now)], [], now)
    assert lc.claimed == () and lc.next_due is None
    assert new.pending_processors(now) == ["p_new"]
    later = T0 + GRACE + 1
    old.announce_processors(later)
    assert old.pending_processors(later) == ["p_new"]
    [lc] = old.claim_lanes([LaneClaim("p_new", 10, later)], [], later)
    assert [r.item_id for r in lc.claimed] == [item.item_id]


def test_sqlite_fires_every_processor(tmp_path: object) -> None:
    """One instance: a processor outside its own is an orphan at once (today's rule)."""
    from scoperouter.state import open_state_store

    s = open_state_store(f"{tmp_path}/state.db", StoreOptions(owner="a", processors=OLD))
    try:
        assert s.announce_processors(T0) == frozenset()
        s.ingest(batch(contrib("e1", processor="p_new")), T0)
        assert s.next_deadline() == T0 + 10
        assert [x.trigger.processor for x in s.fire_due(T0 + 11)] == ["p_new"]
    finally:
        s.close()


def test_no_processors_no_roster(replicas: StoreFactory) -> None:
    """A store opened without a router's processors (a CLI) fires any window."""
    s = replicas("cli", LEASE)
    assert s.announce_processors(T0) == frozenset()
    s.ingest(batch(contrib("e1", processor="p_new", day=DAY)), T0)
    assert len(s.fire_due(T0 + 11)) == 1


def test_apply_limits_leaves_windows_routed_elsewhere(replicas: StoreFactory) -> None:
    """An old replica's start gives its own windows its limits and durations, not p_new's
    (another replica routes p_new: its routes.yaml has them, this one only the defaults)."""
    old, new = _replica(replicas, "old", OLD), _replica(replicas, "new", NEW)
    new.announce_processors(T0)
    deadline = _new_window(new)
    old.announce_processors(T0 + 1)
    assert old.apply_limits({"p_old": 100}, 1, durations={}, default_durations=(99.0, 99.0)) == 0
    [w] = new.open_windows()
    assert (w.deadline, w.max_entities) == (deadline, 3)


@pytest.mark.parametrize(
    ("lead", "fired_by_old"),
    [
        (GRACE - 1, 0),  # a clock a little ahead: its row is live (within the grace either way)
        (86_400.0, 1),  # a clock a day ahead: its row is no proof of life (review6)
    ],
)
def test_a_row_from_a_clock_far_ahead_keeps_nothing_live(
    replicas: StoreFactory, lead: float, fired_by_old: int
) -> None:
    """A roster row written by a replica whose clock ran far ahead does not hold a processor's work."""
    old, fast = _replica(replicas, "old", OLD), _replica(replicas, "fast", NEW)
    fast.announce_processors(T0 + lead)  # p_new, written with that replica's clock
    deadline = _new_window(fast)
    at = deadline + 1  # the old replica's clock: the window is due
    assert old.announce_processors(at) == (frozenset() if fired_by_old else {"p_new"})
    assert [x.trigger.processor for x in old.fire_due(at)] == ["p_new"] * fired_by_old


def test_the_last_write_wins(replicas: StoreFactory) -> None:
    """A replica's clock corrected after running ahead rewrites its row (no greatest())."""
    old, fast = _replica(replicas, "old", OLD), _replica(replicas, "fast", NEW)
    fast.announce_processors(T0 + GRACE - 1)
    fast.announce_processors(T0)  # the clock is right again
    assert old.announce_processors(T0 + GRACE + 1) == frozenset()  # aged out as any row


@pytest.mark.parametrize(
    ("age", "kept"),
    [
        (FORGET_AFTER_S - 1, True),  # long past live, not yet forgotten
        (FORGET_AFTER_S + 1, False),  # nobody wrote it for a week: deleted
    ],
)
def test_a_roster_row_nobody_writes_is_forgotten(
    replicas: StoreFactory, age: float, kept: bool, caplog: pytest.LogCaptureFixture
) -> None:
    """A processor no replica has written for FORGET_AFTER_S leaves sr_processors, logged."""
    gone, live = _replica(replicas, "gone", NEW), _replica(replicas, "live", OLD)
    gone.announce_processors(T0)  # p_old and p_new; then p_new is renamed away
    with caplog.at_level("INFO", logger="scoperouter.state"):
        live.announce_processors(T0 + age)
    rows = live._run(  # type: ignore[attr-defined]
        lambda c: c.execute("SELECT processor FROM sr_processors ORDER BY 1").fetchall()
    )
    assert [r[0] for r in rows] == (["p_new", "p_old"] if kept else ["p_old"])
    said = [r.getMessage() for r in caplog.records if "left the roster" in r.getMessage()]
    assert said == (
        []
        if kept
        else ["state: 1 processors no replica has routed for 7 days left the roster: p_new"]
    )

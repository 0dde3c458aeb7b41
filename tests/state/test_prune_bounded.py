"""A prune pass deletes at most ``Retention.limit`` rows per statement (the store's write
lock -- SQLite's one writer, the ingest's too -- is held for a bounded time however large
the backlog past a horizon); it says when it reached the limit (``Pruned.more``), the next
passes delete the rest, and nothing newer than a horizon, pending or open goes. Counted
per pass and per statement (no timing)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from state_support import StoreFactory, batch, contrib

from scoperouter.state import StateStore
from scoperouter.state.model import (
    PRUNE_LIMIT,
    DeadLetterIn,
    Done,
    Pruned,
    Retention,
    StoreOptions,
)
from scoperouter.state.sqlite import SqliteStateStore

T0 = 1_700_000_000.0
OLD = 23  # rows of each kind past their horizon
LIMIT = 10
ALL = Retention(seen_s=1e9, done_s=10, dead_s=None, completions_s=10, letters_s=10, limit=LIMIT)


def _old_rows(s: StateStore) -> list[int]:
    """OLD done outbox rows, event dead letters and completions at T0, and one of each
    newer (T0 + 100); the ids of the pending rows (one per fired trigger, never pruned)."""
    fired = s.ingest(
        batch(*(contrib(f"e{k}", processor=f"p{k}", critical=True) for k in range(OLD + 2))), T0
    ).fired
    ids = sorted(x.item_id for x in fired)
    s.apply_marks([Done(i, 1, T0) for i in ids[:OLD]] + [Done(ids[OLD], 1, T0 + 100)])
    for k in range(OLD + 1):
        at = T0 if k < OLD else T0 + 100
        s.dead_letter(DeadLetterIn("event", f"ev{k}", "not_json", None, b"x", at))
        s.record_completion(f"t-{k}", "success", at)
    return ids[OLD + 1 :]


def _passes(s: StateStore, retention: Retention, now: float) -> list[Pruned]:
    """Prune passes until one leaves nothing (at most a few more than needed)."""
    out: list[Pruned] = []
    while not out or out[-1].more:
        out.append(s.prune(retention, now))
        assert len(out) <= OLD // retention.limit + 2, out
    return out


def test_a_pass_deletes_at_most_the_limit_per_statement(make_store: StoreFactory) -> None:
    """Done rows, event dead letters and ledger rows past their horizon go LIMIT a pass,
    the rest in the next passes; the newer, pending and open ones stay."""
    s = make_store("a")
    pending = _old_rows(s)
    s.ingest(batch(contrib("open")), T0 + 100)
    passes = _passes(s, ALL, T0 + 105)
    full, rest = OLD // LIMIT, OLD % LIMIT
    want = [LIMIT] * full + [rest]
    assert [p.done for p in passes] == want
    assert [p.dead_letters for p in passes] == want
    assert [p.completions for p in passes] == want
    assert [p.more for p in passes] == [True] * full + [False]
    assert [r.status for r in s.outbox_rows()] == ["done"] + ["leased"] * len(pending)
    assert [d.ref for d in s.dead_letters()] == [f"ev{OLD}"]
    assert s.completion(f"t-{OLD}") is not None and s.completion("t-0") is None
    assert s.open_window_count() == 1


def test_the_default_limit_bounds_a_big_backlog(tmp_path: Path) -> None:
    """With the default Retention, seen ids past the horizon go PRUNE_LIMIT a statement:
    more than that past it take two passes (sr_seen filled directly: an outage's day)."""
    s = SqliteStateStore(tmp_path / "state.db", StoreOptions(), sync="normal")
    n = PRUNE_LIMIT + 7
    db = sqlite3.connect(tmp_path / "state.db")
    with db:
        db.executemany(
            "INSERT INTO sr_seen(event_id, seen_at) VALUES (?, ?)",
            [(f"old{k:06d}", T0) for k in range(n)] + [("new", T0 + 86400)],
        )
    db.close()
    first = s.prune(Retention(), T0 + 86400 + 1)
    second = s.prune(Retention(), T0 + 86400 + 1)
    assert (first.seen, first.more, second.seen, second.more) == (PRUNE_LIMIT, True, 7, False)
    assert s.seen_at("new") == T0 + 86400 and s.seen_at("old000000") is None
    s.close()


def test_seen_ids_go_limit_a_pass_staged_ones_too(tmp_path: Path) -> None:
    """SQLite: ids folded into sr_seen go LIMIT a pass; the staging table (fewer than
    fold_at ids) is emptied of old ids at once."""
    fold_at = 4
    s = SqliteStateStore(tmp_path / "state.db", StoreOptions(), sync="normal", seen_fold_at=fold_at)
    for k in range(OLD):
        s.ingest(batch(contrib(f"e{k:03d}")), T0)
    s.ingest(batch(contrib("new")), T0 + 100)
    retention = Retention(seen_s=10, done_s=1e9, dead_s=None, completions_s=1e9, limit=LIMIT)
    passes = _passes(s, retention, T0 + 105)
    assert sum(p.seen for p in passes) == OLD
    assert all(p.seen <= LIMIT + fold_at - 1 for p in passes), passes
    assert len(passes) >= 2
    assert s.seen_at("new") == T0 + 100 and s.seen_at("e000") is None
    s.close()


@pytest.mark.parametrize("limit", [0, -1])
def test_a_limit_below_one_is_refused(make_store: StoreFactory, limit: int) -> None:
    """A limit that would delete nothing (and never end the backlog) is an error."""
    with pytest.raises(ValueError, match="at least 1"):
        make_store("a").prune(Retention(limit=limit), T0)

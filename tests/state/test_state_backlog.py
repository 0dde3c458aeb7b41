"""The state-store contract, backlog part: per-target claims (lanes), rows given back,
a lane redriven, rows past the retry horizon dead-lettered, operator redrive/discard, and
dead rows kept by the daemon's retention. Every test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import itertools

import pytest
from state_support import StoreFactory, batch, contrib

from scoperouter.state.api import StateStore
from scoperouter.state.model import (
    Dead,
    DeadLetterIn,
    Done,
    IngestBatch,
    LaneClaim,
    RedriveLane,
    Released,
    Retention,
    RetryLater,
)

T0 = 1_700_000_000.0
INF = float("inf")
_EVENTS = itertools.count()


def fire(s: StateStore, processors: str, at: float = T0) -> list[int]:
    """One critical event per processor letter (fires at once); the outbox ids, in order."""
    cs = [contrib(f"e{next(_EVENTS)}", processor=p, critical=True) for p in processors]
    return [x.item_id for x in s.ingest(batch(*cs), at).fired]


def pending(s: StateStore, processors: str, at: float = T0) -> list[int]:
    """Fired rows given straight back to the store (waiting, not leased)."""
    ids = fire(s, processors, at)
    assert s.apply_marks([Released(i) for i in ids]) == (True,) * len(ids)
    return ids


def claimed_ids(s: StateStore, claims: list[LaneClaim], now: float = T0) -> list[list[int]]:
    return [[r.item_id for r in lc.claimed] for lc in s.claim_lanes(claims, [], now)]


def test_released_row_is_claimable_at_once(make_store: StoreFactory) -> None:
    """Released gives this owner's lease back without an attempt; another owner's Released changes nothing."""
    a, b = make_store("a"), make_store("b")
    [i] = fire(a, "p")
    assert b.apply_marks([Released(i)]) == (False,)
    assert a.apply_marks([Released(i)]) == (True,)
    [row] = a.outbox_rows()
    assert (row.status, row.lease_owner, row.attempts, row.available_at) == ("pending", None, 0, T0)
    [lc] = b.claim_lanes([LaneClaim("p", 5, T0)], [], T0)
    assert [(r.item_id, r.claims, r.attempts, r.created_at) for r in lc.claimed] == [(i, 2, 0, T0)]
    assert b.outbox_rows()[0].lease_owner == "b"


@pytest.mark.parametrize(
    ("lane", "limit", "want", "more"),
    [
        ("p", 2, [0, 1], True),  # oldest first, up to the limit
        ("p", 3, [0, 1, 2], True),  # exactly the rows there are: maybe more
        ("p", 5, [0, 1, 2], False),
        ("q", 5, [3], False),  # only the lane's own processor
        ("p", 0, [], False),  # no rows asked for
    ],
)
def test_claim_lanes_takes_one_processors_due_rows(
    make_store: StoreFactory, lane: str, limit: int, want: list[int], more: bool
) -> None:
    """A lane leases up to its limit of its processor's due rows, oldest availability first; nothing locked elsewhere: none held."""
    s = make_store("a")
    ids = pending(s, "pppq")
    [lc] = s.claim_lanes([LaneClaim(lane, limit, T0)], [], T0)
    assert [r.item_id for r in lc.claimed] == [ids[k] for k in want]
    assert lc.more is more and lc.next_due is None and not lc.held
    assert {r.lease_owner for r in s.outbox_rows() if r.item_id in set(ids[k] for k in want)} <= {
        "a"
    }


def test_deferred_rows_wait_and_next_due_is_reported(make_store: StoreFactory) -> None:
    """Rows retried later are not claimed before their time; next_due names the earliest; a probe (due_at inf) takes the oldest anyway."""
    s = make_store("a")
    i, j = fire(s, "pp")
    s.apply_marks([RetryLater(i, 1, T0 + 30, "503"), RetryLater(j, 1, T0 + 20, "503")])
    [lc] = s.claim_lanes([LaneClaim("p", 5, T0 + 1)], [], T0 + 1)
    assert (lc.claimed, lc.next_due, lc.held) == ((), T0 + 20, False)  # later: not held
    [probe] = s.claim_lanes([LaneClaim("p", 1, INF)], [], T0 + 1)
    assert [r.item_id for r in probe.claimed] == [j] and probe.next_due == T0 + 30


def test_redrive_lane_makes_deferred_rows_due(make_store: StoreFactory) -> None:
    """RedriveLane (the target works again) makes that processor's deferred rows due now, not another's."""
    s = make_store("a")
    i, j = fire(s, "pq")
    s.apply_marks([RetryLater(i, 2, T0 + 60, "x"), RetryLater(j, 2, T0 + 60, "x")])
    assert s.apply_marks([RedriveLane("p", T0 + 5)]) == (True,)
    assert claimed_ids(s, [LaneClaim("p", 5, T0 + 5), LaneClaim("q", 5, T0 + 5)], T0 + 5) == [
        [i],
        [],
    ]


def test_marks_are_written_before_the_lanes_are_read(make_store: StoreFactory) -> None:
    """claim_lanes applies its marks first: a row released in the same call is claimed by it."""
    s = make_store("a")
    [i] = fire(s, "p")
    [lc] = s.claim_lanes([LaneClaim("p", 5, T0)], [Released(i)], T0)
    assert [r.item_id for r in lc.claimed] == [i]


def failed(s: StateStore, processors: str, at: float = T0) -> list[int]:
    """Fired rows whose one attempt failed (pending again, attempts 1)."""
    ids = fire(s, processors, at)
    assert s.apply_marks([RetryLater(i, 1, at, "HTTP 503") for i in ids]) == (True,) * len(ids)
    return ids


def test_rows_past_the_horizon_are_dead_lettered(make_store: StoreFactory) -> None:
    """Pending rows fired before expire_before that failed become dead with a retry_horizon letter (body kept); newer, leased and never-attempted rows stay (a trigger that never reached its target is no target that kept failing)."""
    s = make_store("a")
    old = failed(s, "pp", T0)
    [untried] = pending(s, "p", T0)
    [leased] = fire(s, "p", T0)
    [new] = pending(s, "p", T0 + 100)
    [lc] = s.claim_lanes([LaneClaim("p", 0, T0 + 200, expire_before=T0 + 50)], [], T0 + 200)
    assert [r.item_id for r in lc.expired] == old and lc.claimed == ()
    status = {r.item_id: r.status for r in s.outbox_rows()}
    assert [status[k] for k in (*old, untried, leased, new)] == [
        "dead",
        "dead",
        "pending",
        "leased",
        "pending",
    ]
    letters = s.dead_letters()
    assert {(d.kind, d.reason) for d in letters} == {("trigger", "retry_horizon")}
    assert sorted(d.ref for d in letters) == sorted(
        f"{r.trigger_id}#{r.item_id}" for r in lc.expired
    )
    assert {d.payload for d in letters} == {r.body for r in lc.expired}


def test_an_open_circuit_expires_untried_rows_too(make_store: StoreFactory) -> None:
    """With the target's circuit open (expire_untried) a row never attempted dies past the horizon too: its backlog waits on a target that keeps failing."""
    s = make_store("a")
    [untried] = pending(s, "p", T0)
    claim = LaneClaim("p", 0, T0 + 200, expire_before=T0 + 50, expire_untried=True)
    [lc] = s.claim_lanes([claim], [], T0 + 200)
    assert [r.item_id for r in lc.expired] == [untried]


def test_expiry_is_bounded_per_call(make_store: StoreFactory) -> None:
    """At most expire_limit rows die per call (bounded work per transaction); the next call takes the rest."""
    s = make_store("a")
    ids = failed(s, "ppp")
    claim = LaneClaim("p", 0, T0 + 9, expire_before=T0 + 1, expire_limit=2)
    [first] = s.claim_lanes([claim], [], T0 + 9)
    [second] = s.claim_lanes([claim], [], T0 + 9)
    assert [r.item_id for r in first.expired] == ids[:2] and [
        r.item_id for r in second.expired
    ] == ids[2:]


def test_two_replicas_claim_disjoint_rows(make_store: StoreFactory) -> None:
    """Two owners claiming one lane get each pending row once."""
    a, b = make_store("a"), make_store("b")
    ids = pending(a, "pppppp")
    [got_a] = claimed_ids(a, [LaneClaim("p", 4, T0)])
    [got_b] = claimed_ids(b, [LaneClaim("p", 4, T0)])
    assert sorted(got_a + got_b) == ids and len(got_a) == 4


def test_pending_processors_and_count(make_store: StoreFactory) -> None:
    """pending_processors names processors with due pending rows (leased and deferred ones aside); pending_count counts them all."""
    s = make_store("a")
    i, _j, _k = fire(s, "pqr")
    s.apply_marks([RetryLater(i, 1, T0 + 30, "x")])
    s.apply_marks([Released(_j)])
    assert s.pending_processors(T0) == ["q"]
    assert s.pending_processors() == ["p", "q"]
    assert s.pending_count() == 2


def _dead(s: StateStore, processors: str) -> list[int]:
    ids = fire(s, processors)
    s.apply_marks([Dead(i, 3, T0 + 1, "retry_horizon", "boom") for i in ids])
    return ids


@pytest.mark.parametrize(
    ("processor", "redriven"),
    [(None, 3), ("a", 2), ("b", 1), ("zz", 0), ("", 0)],
)
def test_redrive_dead_rows(make_store: StoreFactory, processor: str | None, redriven: int) -> None:
    """redrive_dead makes dead rows pending again (fresh attempts and horizon, due now) and drops their dead letters."""
    s = make_store("x")
    ids = _dead(s, "aab")
    s.dead_letter(DeadLetterIn("event", "m1", "invalid_json", None, b"{", T0))
    assert s.redrive_dead(T0 + 500, processor) == redriven
    rows = s.outbox_rows()
    back = [r for r in rows if r.status == "pending"]
    assert len(back) == redriven and s.outbox_counts().get("dead", 0) == len(ids) - redriven
    assert all(
        (r.attempts, r.available_at, r.error, r.finished_at) == (0, T0 + 500, None, None)
        for r in back
    )
    kinds = sorted(d.kind for d in s.dead_letters())
    assert kinds == ["event"] + ["trigger"] * (len(ids) - redriven)
    claimed = [
        r
        for lc in s.claim_lanes([LaneClaim(p, 9, T0 + 500) for p in "ab"], [], T0 + 500)
        for r in lc.claimed
    ]
    assert len(claimed) == redriven and all(r.created_at == T0 + 500 for r in claimed)


@pytest.mark.parametrize(("processor", "left"), [(None, 0), ("a", 1), ("b", 2), ("", 3)])
def test_discard_dead_rows(make_store: StoreFactory, processor: str | None, left: int) -> None:
    """discard_dead deletes dead rows and their dead letters, nothing else."""
    s = make_store("x")
    _dead(s, "aab")
    [done] = fire(s, "a")
    s.apply_marks([Done(done, 1, T0)])
    assert s.discard_dead(processor) == 3 - left
    assert s.outbox_counts() == ({"dead": left} if left else {}) | {"done": 1}
    assert len(s.dead_letters()) == left


def test_daemon_retention_keeps_dead_rows(make_store: StoreFactory) -> None:
    """With dead_s None, dead rows and their letters outlive every horizon; event letters go at letters_s."""
    s = make_store("x")
    _dead(s, "ab")
    s.ingest(IngestBatch(dead_letters=(DeadLetterIn("event", "m1", "bad", None, None, T0),)), T0)
    keep = Retention(seen_s=1, done_s=1, dead_s=None, completions_s=1, letters_s=10)
    p = s.prune(keep, T0 + 1e7)
    assert (p.dead, p.dead_letters) == (0, 1)
    assert s.outbox_counts() == {"dead": 2}
    assert {d.kind for d in s.dead_letters()} == {"trigger"}

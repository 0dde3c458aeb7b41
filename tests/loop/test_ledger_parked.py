"""Completions parked for a message id not recorded yet (``router/ledger_parked.py``): a
success waits at most ``ORPHAN_TTL_S``; a report of missed ids or a failure waits until its
id is recorded, dropped only for room once no success waits -- else its run's success,
parked after it, would close the trigger alone when the id is recorded."""

from __future__ import annotations

import pytest
from closed_loop_support import trig
from hypothesis import given, settings
from hypothesis import strategies as st

from scoperouter.router.completion_ref import CompletionRef
from scoperouter.router.ledger_book import LedgerBook
from scoperouter.router.ledger_parked import ORPHAN_TTL_S, ParkedCompletions
from scoperouter.router.loop_params import LoopParams


def ref(
    outcome: str, mid: str = "m1", missed: tuple[str, ...] = (), eid: str = "e"
) -> CompletionRef:
    return CompletionRef(outcome=outcome, message_id=mid, missed=missed, event_id=eid)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("report", "kept"),
    [
        (ref("success"), False),
        (ref("no_data"), False),
        (ref("partial"), False),  # no missed ids: a success
        (ref("partial", missed=("x",)), True),
        (ref("failed"), True),
    ],
)
def test_only_successes_are_dropped_for_their_age(report: CompletionRef, kept: bool) -> None:
    """Past ORPHAN_TTL_S a success is dropped (counted), a failure report still waits."""
    p = ParkedCompletions()
    assert p.park(report, 0.0) == 1
    assert p.expire(ORPHAN_TTL_S) == 0  # at the bound: still waiting
    assert p.expire(ORPHAN_TTL_S + 1.0) == (0 if kept else 1)
    assert (p.take("m1") == [report]) is kept
    assert p.dropped == (0 if kept else 1)


def test_room_is_made_by_dropping_successes_first() -> None:
    """Past ORPHAN_MAX the oldest success goes first; a failure only when none is left."""
    p = ParkedCompletions(limit=2)
    p.park(ref("failed", "m1", eid="f1"), 0.0)
    p.park(ref("success", "m2", eid="s2"), 1.0)
    assert p.park(ref("failed", "m3", eid="f3"), 2.0) == 2  # parked, and s2 dropped
    assert [r.event_id for _m, r, _at in p.items()] == ["f1", "f3"]
    assert p.park(ref("failed", "m4", eid="f4"), 3.0) == 2  # no success left: f1 goes
    assert [r.event_id for _m, r, _at in p.items()] == ["f3", "f4"]
    assert p.dropped == 2


_op = st.tuples(
    st.sampled_from(("park", "take", "expire")),
    st.sampled_from(("m1", "m2", "m3")),
    st.sampled_from(("success", "no_data", "partial", "partial_missed", "failed")),
    st.sampled_from((0.0, 1.0, 300.0, 700.0)),
)


@settings(max_examples=300)
@given(st.lists(_op, max_size=40), st.integers(1, 4))
def test_parked_matches_a_list_model(ops: list[tuple[str, str, str, float]], room: int) -> None:
    """Park, take and expire against a plain list of what waits, scanned in full each time."""
    p, now, dropped = ParkedCompletions(limit=room), 0.0, 0
    model: list[tuple[str, CompletionRef, float]] = []
    for n, (op, mid, outcome, dt) in enumerate(ops):
        now += dt
        missed = ("x",) if outcome == "partial_missed" else ()
        r = ref(outcome.removesuffix("_missed"), mid, missed, f"e{n}")
        aged = [w for w in model if w[1].says_success and now - w[2] > ORPHAN_TTL_S]
        if op == "take":
            assert p.take(mid) == ([w[1] for w in model if w[0] == mid] or None)
            model = [w for w in model if w[0] != mid]
            continue
        model = [w for w in model if w not in aged]
        dropped += len(aged)
        if op == "expire":
            assert p.expire(now) == len(aged)
            continue
        assert p.park(r, now) >= 1
        model.append((mid, r, now))
        while len(model) > room:
            successes = [w for w in model if w[1].says_success]
            model.remove((successes or model)[0])
            dropped += 1
        assert p.items() == model
        assert p.dropped == dropped


def test_a_late_recorded_id_applies_the_failure_before_the_success() -> None:
    """Partial (x missed), then hours later the run's success parks: the id recorded, the
    success is stale and x is re-run -- it closed the trigger when the partial had expired."""
    b = LedgerBook(lambda _p: LoopParams(2, None, None, backoff_base_s=10.0))
    b.open(trig("t-1", ("x", "y")), 0.0)
    b.complete(CompletionRef(outcome="partial", message_id="m1", missed=("x",), event_id="p"), 5.0)
    later = 5.0 + 3 * ORPHAN_TTL_S
    b.complete(CompletionRef(outcome="success", message_id="m1", event_id="s"), later)
    entry = b.alias("m1", "t-1", later)
    assert entry is not None
    assert entry.phase == "backoff"  # the missed id's re-run waits, nothing closed
    assert [a.what for a in entry.history][-2:] == ["partial", "late"]
    assert entry.trigger.entity_ids == ("x",)

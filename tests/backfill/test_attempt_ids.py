"""Every attempt of a backfill run is a new trigger, with its own id, across invocations too
(docs/backfill.md, Executors): a resumed run's attempts are numbered on from the stored
count, so neither a target deduping on ``trigger_id`` (docs/targets.md) nor the completion
an earlier attempt reported (the execution log keeps the first report per trigger id)
answers the new one. ``max_attempts`` and the backoff count the attempts of one invocation."""

from __future__ import annotations

import asyncio
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from backfill_support import REPO

from scoperouter.backfill.daemon_executor import TargetExecutor, backfill_trigger
from scoperouter.backfill.plan import BackfillPlan, Request, plan_backfill
from scoperouter.backfill.runner import open_backfill, run_backfill
from scoperouter.backfill.schedule import Policy, Scheduler, State
from scoperouter.backfill.store import BackfillStore
from scoperouter.errors import DispatchError
from scoperouter.messages.models import Trigger
from scoperouter.processor_registry.loader import load_config

P = "player_game_summary"
DAY = date(2025, 11, 1)
REQ = Request(DAY, DAY, (P,))


def _plan() -> BackfillPlan:
    reg = load_config(REPO / "routes.yaml", with_relations=False).registry
    return plan_backfill(reg, REQ, as_of=date(2025, 11, 30))


@pytest.mark.parametrize(
    ("state", "stored"),
    [
        pytest.param("failed", 3, id="failed-attempts-used-up"),
        pytest.param("blocked", 0, id="blocked-never-attempted"),
        pytest.param("waiting", 2, id="stopped-or-interrupted-in-flight"),
        pytest.param("running", 1, id="crashed-in-flight"),
        pytest.param("retrying", 2, id="crashed-while-retrying"),
    ],
)
def test_a_resumed_runs_attempts_are_numbered_on_from_the_stored_count(
    state: State, stored: int
) -> None:
    """Restored with ``stored`` attempts, the run's next attempt is ``stored + 1``, never a number an earlier attempt had."""
    sched = Scheduler(_plan(), {P: Policy(max_attempts=2)}, restored={0: (state, stored)})
    assert sched.take(0.0) == [0] and sched.attempts[0] == stored + 1


@pytest.mark.parametrize(
    ("stored", "max_attempts", "handed_out"),
    [
        pytest.param(0, 3, [1, 2, 3], id="first-invocation"),
        pytest.param(3, 3, [4, 5, 6], id="after-three-failed"),
        pytest.param(5, 1, [6], id="one-attempt-per-invocation"),
    ],
)
def test_max_attempts_counts_the_attempts_of_this_invocation(
    stored: int, max_attempts: int, handed_out: list[int]
) -> None:
    """A run failing every attempt gets max_attempts fresh attempts per invocation, numbered on from the stored count; its first retry waits the first backoff."""
    pol = Policy(max_attempts=max_attempts, backoff_s=1.0)
    sched = Scheduler(_plan(), {P: pol}, restored={0: ("failed", stored)} if stored else None)
    got, now, delays = [], 0.0, []
    while True:
        (i,) = sched.take(now) or [None]
        if i is None:
            break
        got.append(sched.attempts[i])
        (t,) = sched.fail(i, "boom", now)
        if t.retry_at is None:
            break
        delays.append(t.retry_at - now)
        now = t.retry_at
    assert got == handed_out and sched.state[0] == "failed"
    assert delays == [1.0, 2.0][: max_attempts - 1]


class Target:
    """A target deduping on ``trigger_id`` (docs/targets.md): a trigger id it has seen is
    acknowledged and dropped. ``fail``: refuses every trigger (the processor's service is
    down); ``hold``: takes the trigger and never answers (a stop or a crash comes first)."""

    def __init__(self, *, fail: bool = False, hold: bool = False) -> None:
        self.fail, self.hold = fail, hold
        self.received: list[str] = []  # every trigger id sent to it
        self.ran: list[str] = []  # the trigger ids it ran (not deduped)

    async def send(self, trigger: Trigger, *, message_id: str, body: bytes | None = None) -> None:
        self.received.append(trigger.trigger_id)
        if trigger.trigger_id in self.ran:
            return  # a duplicate: acknowledged, not run again
        self.ran.append(trigger.trigger_id)
        if self.hold:
            await asyncio.Event().wait()
        if self.fail:
            raise DispatchError(P, "test", "refused")

    async def close(self) -> None:
        return None


def _ack(target: Target) -> TargetExecutor:
    return TargetExecutor({P: target}, lambda _tid: None, ack_is_completion=True)


async def _first(tmp: Path, ended: str) -> tuple[BackfillStore, str, BackfillPlan, Target]:
    """The backfill's first invocation, ended as ``ended`` says: ``failed`` (its attempts
    used up), ``stopped`` (cancelled while the run was in flight), ``crashed`` (killed in
    flight: stored ``running``), ``interrupted`` (the same, as the daemon's check leaves it)."""
    store = BackfillStore(tmp / "backfills.sqlite")
    bid, plan, _ = open_backfill(store, "k", _plan, 0.0)
    target = Target(fail=ended == "failed", hold=ended != "failed")
    run = run_backfill(store, bid, plan, _ack(target), {P: Policy(max_attempts=2, backoff_s=0)})
    if ended == "failed":
        assert not (await run).ok
        return store, bid, plan, target
    task = asyncio.ensure_future(run)
    while not target.received:
        await asyncio.sleep(0.001)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    if ended in ("crashed", "interrupted"):  # a SIGKILL leaves the run stored running
        store.db.execute("UPDATE backfill_runs SET state = 'running'")
        store.set_status(bid, "running", 0.0)
    if ended == "interrupted":
        assert store.reconcile(bid, 0.0) == "interrupted"
    return store, bid, plan, target


@pytest.mark.parametrize("ended", ["failed", "stopped", "crashed", "interrupted"])
async def test_a_resumed_run_is_sent_as_a_new_trigger_a_deduping_target_runs(
    tmp_path: Path, ended: str
) -> None:
    """Resumed after its first invocation ended ``ended``, the run is sent with a trigger id no earlier attempt had: a target deduping on it runs it, and the run is done because it ran."""
    store, bid, plan, first = await _first(tmp_path, ended)
    target = Target()
    target.ran = list(first.ran)  # the same target: it remembers the ids it ran
    again = await run_backfill(store, bid, plan, _ack(target), {P: Policy(max_attempts=1)},
                               resumed=True)  # fmt: skip
    (sent,) = target.received
    assert again.ok and sent not in first.received and target.ran[-1] == sent
    (run,) = store.runs(bid)
    ids = [backfill_trigger(bid, P, DAY, n).trigger_id for n in range(1, run.attempts + 1)]
    assert ids[-1] == sent and len(set(ids)) == len(ids) == len(first.received) + 1
    store.close()


def test_the_trigger_id_is_the_same_for_one_attempt_and_new_for_the_next() -> None:
    """Deterministic per (backfill, processor, date, attempt): a sink's retry of one attempt is recognisable; another attempt, date, processor or backfill is another id."""
    one = backfill_trigger("b1", P, DAY, 1).trigger_id
    assert backfill_trigger("b1", P, DAY, 1).trigger_id == one
    others: list[tuple[Any, ...]] = [("b1", P, DAY, 2), ("b2", P, DAY, 1),
                                     ("b1", "league_rankings", DAY, 1), ("b1", P, date(2025, 11, 2), 1)]  # fmt: skip
    assert one not in {backfill_trigger(*o).trigger_id for o in others}

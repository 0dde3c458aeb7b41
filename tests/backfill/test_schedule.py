"""The scheduler state machine: runs start only after what they read, failures retry then
block exactly their readers, concurrency caps hold, resume never re-hands a done run."""

from __future__ import annotations

import random
from datetime import date, timedelta
from functools import cache

import pytest
from backfill_support import REPO

from scoperouter.backfill.plan import BackfillPlan, Request, plan_backfill
from scoperouter.backfill.runner import Summary
from scoperouter.backfill.schedule import Policy, Scheduler
from scoperouter.processor_registry.loader import load_config

D1, D2 = date(2025, 11, 1), date(2025, 11, 6)


@cache
def the_plan() -> BackfillPlan:
    reg = load_config(REPO / "routes.yaml", with_relations=False).registry
    return plan_backfill(reg, Request(D1, D2), as_of=D2 + timedelta(days=4))


def deps_done(plan: BackfillPlan, sched: Scheduler, i: int) -> bool:
    for d in plan.runs[i].deps:
        day = d.lo
        while day <= d.hi:
            if sched.state[plan.index[f"{d.upstream}@{day.isoformat()}"]] != "done":
                return False
            day += timedelta(days=1)
    return True


def drive(sched: Scheduler, rng: random.Random, fail: set[str], check: bool = True) -> list[int]:
    """Random completion order; every failing run fails every attempt. Returns start order."""
    plan, started, running, now = sched.plan, [], [], 0.0
    while True:
        now += 1.0
        new = sched.take(now)
        for i in new:
            if check:
                assert deps_done(plan, sched, i), plan.runs[i].key
        started += new
        running += new
        if not running:
            if sched.next_retry() is None:
                return started
            continue
        i = running.pop(rng.randrange(len(running)))
        if plan.runs[i].key in fail:
            sched.fail(i, "boom", now)
        else:
            sched.complete(i)


@pytest.mark.parametrize("seed", range(5))
def test_every_run_starts_after_what_it_reads(seed: int) -> None:
    """Under any completion order, a run is handed out only when its deps are done."""
    sched = Scheduler(the_plan(), {}, max_running=6)
    drive(sched, random.Random(seed), set())
    assert sched.finished and sched.counts()["done"] == len(the_plan().runs)


def test_failure_retries_then_blocks_exactly_the_readers() -> None:
    """A run failing every attempt is retried max_attempts times, then its transitive readers
    are blocked and every other run completes."""
    plan = the_plan()
    bad = f"upcoming_team_game_context@{(D1 + timedelta(days=2)).isoformat()}"
    sched = Scheduler(plan, {"upcoming_team_game_context": Policy(max_attempts=3, backoff_s=0.5)})
    started = drive(sched, random.Random(1), {bad})
    i_bad = plan.index[bad]
    assert started.count(i_bad) == 3 and sched.state[i_bad] == "failed"
    blocked = {plan.runs[i].key for i, s in enumerate(sched.state) if s == "blocked"}
    readers: set[str] = set()
    frontier = {bad}
    while frontier:  # transitive readers, from the plan's edges
        frontier = {
            r.key for r in plan.runs if r.key not in readers and any(
                f"{d.upstream}@{(d.lo + timedelta(days=k)).isoformat()}" in frontier
                for d in r.deps for k in range((d.hi - d.lo).days + 1))
        }  # fmt: skip
        readers |= frontier
    assert blocked == readers and blocked
    assert sched.counts()["done"] == len(plan.runs) - len(readers) - 1


@pytest.mark.parametrize(("concurrency", "max_running"), [(1, 8), (2, 8), (4, 3)])
def test_concurrency_caps(concurrency: int, max_running: int) -> None:
    """Never more than the target's concurrency per processor nor max_running overall."""
    plan = the_plan()
    pol = {n: Policy(concurrency=concurrency) for n in plan.processors}
    sched = Scheduler(plan, pol, max_running=max_running)
    running: list[int] = []
    rng = random.Random(3)
    while not sched.finished:
        running += sched.take(0.0)
        per: dict[str, int] = {}
        for i in running:
            per[plan.runs[i].processor] = per.get(plan.runs[i].processor, 0) + 1
        assert max(per.values()) <= concurrency and len(running) <= max_running
        sched.complete(running.pop(rng.randrange(len(running))))


def test_restored_done_runs_are_never_handed_out_again() -> None:
    """Resume: done runs stay done; the rest (running, failed) start over."""
    plan = the_plan()
    first = Scheduler(plan, {})
    running: list[int] = []
    rng = random.Random(5)
    for _ in range(40):  # then "killed": what is running stays running
        running += first.take(0.0)
        first.complete(running.pop(rng.randrange(len(running))))
    assert running and first.counts()["done"] == 40
    restored = {i: (s, first.attempts[i]) for i, s in enumerate(first.state)}
    again = Scheduler(plan, {}, restored=restored)
    done_before = {i for i, s in enumerate(first.state) if s == "done"}
    started = drive(again, random.Random(0), set())
    assert not done_before & set(started)
    assert sorted(done_before | set(started)) == list(range(len(plan.runs)))


def test_complete_and_fail_ignore_runs_not_running() -> None:
    """Late or duplicate outcomes change nothing."""
    sched = Scheduler(the_plan(), {})
    (i, *_rest) = sched.take(0.0)
    assert sched.complete(i) and sched.complete(i) == [] and sched.fail(i, "x", 0.0) == []


@pytest.mark.parametrize(
    ("policies", "max_running"),
    [({}, 0), ({}, -1), ({"league_rankings": Policy(concurrency=0)}, 8)],
)
def test_limits_that_would_never_start_a_run_are_errors(
    policies: dict[str, Policy], max_running: int
) -> None:
    """A limit under 1 is a ValueError: with it the runner found nothing to start and ended
    the backfill at once, stored ``done`` (exit 0) with every run still waiting."""
    with pytest.raises(ValueError, match="at least 1"):
        Scheduler(the_plan(), policies, max_running=max_running)


def test_a_summary_with_runs_left_is_not_ok() -> None:
    """A backfill that ends with runs neither done, failed nor blocked is not reported done."""
    counts = dict.fromkeys(("waiting", "running", "retrying", "done", "failed", "blocked"), 0)
    assert Summary("b", False, {**counts, "done": 3}).ok
    assert not Summary("b", False, {**counts, "done": 1, "ready": 2}).ok
    assert Summary("b", False, {**counts, "waiting": 1}).to_json()["status"] == "failed"

"""The scheduler on a virtual clock (acceptance 3's timing half): a processor failing 20 %
of its attempts delays only the runs that read it; every other run starts at exactly the
same virtual time as without failures. Also the makespan arithmetic the estimate uses."""

from __future__ import annotations

import hashlib
from datetime import date, timedelta
from functools import cache

import pytest
from backfill_support import REPO

from scoperouter.backfill.plan import BackfillPlan, PlannedRun, Request, plan_backfill
from scoperouter.backfill.schedule import Policy
from scoperouter.backfill.simulate import simulate
from scoperouter.processor_registry.compiled import CompiledRegistry
from scoperouter.processor_registry.loader import load_config

D1, D2 = date(2025, 11, 1), date(2025, 11, 20)


@cache
def reg() -> CompiledRegistry:
    return load_config(REPO / "routes.yaml", with_relations=False).registry


@cache
def the_plan() -> BackfillPlan:
    return plan_backfill(reg(), Request(D1, D2), as_of=D2 + timedelta(days=5))


def dur(r: PlannedRun) -> float:
    return 1.0 + (len(r.processor) % 7) + r.phase


def flaky(name: str, rate: float = 0.2):  # type: ignore[no-untyped-def]
    def fails(r: PlannedRun, attempt: int) -> bool:
        h = int(hashlib.sha256(f"{r.key}|{attempt}".encode()).hexdigest()[:8], 16)
        return r.processor == name and h / 0xFFFFFFFF < rate

    return fails


def readers_of(name: str) -> set[str]:
    out, todo = {name}, [name]
    while todo:
        for d in reg().downstream_of.get(todo.pop(), ()):
            if d not in out:
                out.add(d)
                todo.append(d)
    return out


@pytest.mark.parametrize("name", ["upcoming_team_game_context", "league_rankings",
                                  "player_shot_zone_analysis"])  # fmt: skip
def test_failures_hold_up_only_their_readers(name: str) -> None:
    """Unrelated runs start at identical virtual times; the flaky branch still finishes."""
    plan = the_plan()
    pol = {n: Policy(max_attempts=8, concurrency=2, backoff_s=5.0) for n in plan.processors}
    clean = simulate(plan, pol, dur)
    bad = simulate(plan, pol, dur, fails=flaky(name))
    assert set(bad.states) == {"done"}
    retried = [i for i, s in bad.starts.items() if len(s) > 1]
    assert retried and all(plan.runs[i].processor == name for i in retried)
    held = readers_of(name)
    for i, r in enumerate(plan.runs):
        if r.processor not in held:
            assert bad.starts[i] == clean.starts[i], r.key
    assert bad.makespan >= clean.makespan


@pytest.mark.parametrize(("concurrency", "want"), [(1, 20 * 3.0), (4, 5 * 3.0), (20, 3.0)])
def test_makespan_of_independent_runs(concurrency: int, want: float) -> None:
    """20 independent runs of 3 s: the makespan divides by the target's concurrency."""
    plan = plan_backfill(reg(), Request(D1, D2, processors=("player_game_summary",)), as_of=D2)
    got = simulate(plan, {"player_game_summary": Policy(concurrency=concurrency)}, lambda _r: 3.0)
    assert got.makespan == want


def test_a_failure_for_good_blocks_readers_in_the_timeline() -> None:
    """A run failing every attempt ends failed; its readers are blocked, never started."""
    plan = the_plan()
    pol = {n: Policy(max_attempts=2, backoff_s=1.0) for n in plan.processors}
    always = f"team_defense_game_summary@{D1.isoformat()}"
    tl = simulate(plan, pol, dur, fails=lambda r, _a: r.key == always)
    i = plan.index[always]
    assert tl.states[i] == "failed" and len(tl.starts[i]) == 2
    blocked = [k for k, s in enumerate(tl.states) if s == "blocked"]
    assert blocked and not set(blocked) & set(tl.starts)

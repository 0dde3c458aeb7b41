"""The backfill planner and scheduler against a brute-force oracle on random small DAGs.

The oracle knows what each run reads: (P, D) reads its direct upstream U on ``D``
(no lookback), on ``[D - N, D]`` (``days: N``), or on ``D`` and the last ``N`` dates
before ``D`` of every player the relation data has playing on ``D`` (``games: N``; an
undated row is a player playing every day); with ``ahead: {days: A}`` on P's input from
U, on each of those dates and the A dates before it (U's run dated X holds rows dated
X..X+A). The runs a backfill must make are the least fixed point: every selected
processor on ``[start, min(end, as_of)]``, and every later (P, D) that reads a run made
-- up to as-of, and past it only by an ahead or on a date of the run made itself (the
router: an event's own date and its ahead dates are never capped, lookback dates are);
with ``--from``, the closure's processors ``--phases`` leaves out count as made. The plan
must hold all of them (over-covering is allowed, never fewer), never a run of an
unselected processor, nor one after as-of that no ahead (or date of its own) reaches
from a run made or planned, each processor's dates contiguous, and every read of a planned upstream run inside an edge of the reader
(so it runs after what it reads). The scheduler, failing random runs for good,
blocks exactly the runs reaching a failed run through edges, and completes the rest.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from scoperouter.backfill.plan import BackfillPlan, PlanError, Request, plan_backfill
from scoperouter.backfill.schedule import Policy, Scheduler
from scoperouter.processor_registry.compiled import CompiledRegistry, compile_registry
from scoperouter.processor_registry.models import RoutesSpec
from scoperouter.processor_registry.relations import InMemoryRelations, Row

BASE = date(2025, 11, 1)
HORIZON = 14  # dates BASE .. BASE + HORIZON
PLAYERS = ("ann", "bob", "cid")
_DAY = timedelta(days=1)


def _d(n: int) -> date:
    return BASE + timedelta(days=n)


@st.composite
def _worlds(draw: st.DrawFn) -> dict[str, Any]:
    k = draw(st.integers(2, 5))
    procs: dict[str, Any] = {}
    ups: dict[str, list[str]] = {}
    for i in range(k):
        name = f"p{i}"
        up = sorted(draw(st.sets(st.sampled_from([f"p{j}" for j in range(i)]))) if i else set())
        ups[name] = up
        ahead = {u: draw(st.sampled_from((0, 0, 1, 2))) for u in up}
        lb = draw(
            st.one_of(
                st.none(),
                st.builds(lambda n: {"days": n}, st.integers(1, 3)),
                st.builds(lambda n: {"games": n, "via": "player_games"}, st.integers(1, 2)),
            )
        )
        spec: dict[str, Any] = {
            "phase": draw(st.integers(2, 5)),
            "granularity": "player",
            "inputs": [{"source": f"raw.r{i}"}]
            + [{"source": f"an.{u}", **_ahead_key(ahead[u])} for u in up],
            "publishes": f"an.{name}",
        }
        if lb is not None:
            spec["lookback"] = lb
        procs[name] = spec
    dated = draw(st.sets(st.tuples(st.integers(0, HORIZON), st.sampled_from(PLAYERS)), max_size=25))
    undated = draw(st.sets(st.sampled_from(PLAYERS), max_size=1))
    rows: list[Row] = [(_d(n), p, f"g{n}") for n, p in sorted(dated)]
    rows += [(None, p, "gx") for p in sorted(undated)]
    s = draw(st.integers(0, HORIZON))
    e = draw(st.integers(s, HORIZON))
    as_of = draw(st.integers(s, HORIZON))
    names = sorted(procs)
    how = draw(st.sampled_from(("all", "processors", "from")))
    picked = tuple(sorted(draw(st.sets(st.sampled_from(names), min_size=1))))
    phases = draw(st.one_of(st.none(), st.tuples(st.integers(2, 5), st.integers(2, 5))))
    if phases is not None:
        phases = (min(phases), max(phases))
    req = Request(
        _d(s),
        _d(e),
        processors=picked if how == "processors" else (),
        from_=picked if how == "from" else (),
        phases=phases,
    )
    return {"procs": procs, "ups": ups, "rows": rows, "req": req, "as_of": _d(as_of)}


def _ahead_key(days: int) -> dict[str, Any]:
    return {"ahead": {"days": days}} if days else {}


def _ahead(spec: dict[str, Any], upstream: str) -> int:
    """The ahead days of ``spec``'s input from ``upstream`` (0: none)."""
    for inp in spec["inputs"]:
        if inp["source"] == f"an.{upstream}":
            return int(inp.get("ahead", {}).get("days", 0))
    raise KeyError(upstream)


def _registry(procs: dict[str, Any]) -> CompiledRegistry:
    doc = {
        "version": 1,
        "entities": {"player": {}, "game": {}},
        "relations": {"player_games": {"from": "player", "to": "game"}},
        "processors": procs,
    }
    return compile_registry(RoutesSpec.model_validate(doc))


def _relations(rows: list[Row]) -> InMemoryRelations:
    return InMemoryRelations(
        {"player_games": rows},
        inverses={"game_players": "player_games"},
        types={"player_games": ("player", "game"), "game_players": ("game", "player")},
    )


def _reads(spec: dict[str, Any], upstream: str, day: date, rows: list[Row]) -> set[date]:
    """The dates of its direct ``upstream`` run (P, ``day``) reads (module docstring)."""
    n = _ahead(spec, upstream)
    return {x - timedelta(days=k) for x in _window(spec, day, rows) for k in range(n + 1)}


def _window(spec: dict[str, Any], day: date, rows: list[Row]) -> set[date]:
    """The dates run (P, ``day``)'s lookback reads, ``day`` included (module docstring)."""
    lb = spec.get("lookback")
    if lb is None:
        return {day}
    if "days" in lb:
        return {day - timedelta(days=k) for k in range(lb["days"] + 1)}
    n = lb["games"]
    every = {p for d, p, _ in rows if d is None}
    playing = {p for d, p, _ in rows if d == day} | every
    out = {day}
    for p in playing:
        if p in every:
            out |= {day - timedelta(days=k) for k in range(1, n + 1)}
        else:
            before = sorted({d for d, q, _ in rows if q == p and d is not None and d < day})
            out |= set(before[-n:])
    return out


def _changed(world: dict[str, Any], selected: set[str]) -> set[str]:
    """The processors whose dates are re-run: the selection, with --from its closure."""
    frm = set(world["req"].from_)
    if not frm:
        return selected
    for name in sorted(world["procs"], key=lambda n: int(n[1:])):
        if set(world["ups"][name]) & frm:
            frm.add(name)
    return frm


def _must_run(world: dict[str, Any], selected: set[str]) -> set[tuple[str, date]]:
    req, as_of, rows = world["req"], world["as_of"], world["rows"]
    changed = _changed(world, selected)
    # the furthest any chain of ahead days reaches past as-of
    horizon = as_of + timedelta(days=3 * len(world["procs"]))
    made: set[tuple[str, date]] = set()
    for name in sorted(world["procs"], key=lambda n: int(n[1:])):  # p0, p1, ... is topological
        if name not in changed:
            continue
        spec = world["procs"][name]
        day = req.start
        while day <= horizon:
            if day <= min(req.end, as_of) or any(
                (u, d) in made
                for u in world["ups"][name]
                if u in changed
                for d in (
                    _reads(spec, u, day, rows)
                    if day <= as_of  # past it: no lookback date, only the ahead ones
                    else {day - timedelta(days=k) for k in range(_ahead(spec, u) + 1)}
                )
            ):
                made.add((name, day))
            day += _DAY
    return made


def _covered(plan: BackfillPlan, i: int, upstream: str, day: date) -> bool:
    return any(d.upstream == upstream and d.lo <= day <= d.hi for d in plan.runs[i].deps)


@settings(max_examples=300)
@given(_worlds())
def test_plan_holds_every_run_the_oracle_requires(world: dict[str, Any]) -> None:
    """Every (processor, date) whose inputs the backfill changes is planned, in an order
    where it runs after every planned upstream run it reads; nothing unselected or late."""
    reg, rel = _registry(world["procs"]), _relations(world["rows"])
    try:
        plan = plan_backfill(reg, world["req"], as_of=world["as_of"], relations=rel)
    except PlanError:
        return  # a selection the phases filter empties (asserted by test_plan.py)
    selected = set(plan.processors)
    planned = {(r.processor, r.day) for r in plan.runs}
    made = _must_run(world, selected)  # with the --from closure's left-out processors
    missing = {(p, day) for p, day in made if p in selected} - planned
    assert not missing, sorted(missing)
    # past as-of only what an ahead (or the date itself) reaches from a run made or
    # planned (a plan may over-cover up to as-of, and an ahead reaches on from there; a
    # processor --phases leaves out has no runs to show how far it was over-covered)
    left_out = _changed(world, selected) - selected
    for p, day in planned:
        if day > world["as_of"]:
            spec = world["procs"][p]
            assert any(
                (u, x) in made | planned or (u in left_out and x <= world["as_of"])
                for u in world["ups"][p]
                for x in (day - timedelta(days=k) for k in range(_ahead(spec, u) + 1))
            ), (p, day)
    for name in selected:
        days = sorted(d for p, d in planned if p == name)
        assert days == [world["req"].start + k * _DAY for k in range(len(days))]
    for i, r in enumerate(plan.runs):
        for u in world["ups"][r.processor]:
            if u not in selected:
                assert not any(d.upstream == u for d in r.deps)
                continue
            for day in _reads(world["procs"][r.processor], u, r.day, world["rows"]):
                if (u, day) in planned:
                    assert _covered(plan, i, u, day), (r.key, u, day)
                    assert plan.index[f"{u}@{day.isoformat()}"] < i


@settings(max_examples=150)
@given(_worlds(), st.randoms(use_true_random=False))
def test_scheduler_blocks_exactly_the_readers_of_a_failed_run(
    world: dict[str, Any], rng: random.Random
) -> None:
    """Runs failing every attempt block exactly their transitive readers (by the plan's
    edges); every other run is done, each started only after what it reads."""
    reg, rel = _registry(world["procs"]), _relations(world["rows"])
    try:
        plan = plan_backfill(reg, world["req"], as_of=world["as_of"], relations=rel)
    except PlanError:
        return
    bad = {i for i in range(len(plan.runs)) if rng.random() < 0.15}
    sched = Scheduler(plan, {n: Policy(max_attempts=2, concurrency=2) for n in plan.processors})
    running: list[int] = []
    now = 0.0
    while True:
        now += 100.0  # past any backoff
        for i in sched.take(now):
            for d in plan.runs[i].deps:
                day = d.lo
                while day <= d.hi:
                    assert sched.state[plan.index[f"{d.upstream}@{day.isoformat()}"]] == "done"
                    day += _DAY
            running.append(i)
        if not running:
            if sched.next_retry() is None:
                break
            continue
        i = running.pop(rng.randrange(len(running)))
        if i in bad:
            sched.fail(i, "boom", now)
        else:
            sched.complete(i)
    want: dict[int, str] = {}
    for i, r in enumerate(plan.runs):  # plan order: upstream runs come first
        reads_bad = any(
            want.get(j) in ("failed", "blocked")
            for d in r.deps
            for k in range((d.hi - d.lo).days + 1)
            if (j := plan.index.get(f"{d.upstream}@{(d.lo + k * _DAY).isoformat()}")) is not None
        )
        want[i] = "blocked" if reads_bad else "failed" if i in bad else "done"
    assert dict(enumerate(sched.state)) == want

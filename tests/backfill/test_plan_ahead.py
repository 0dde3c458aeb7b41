"""The backfill planner and an input's ``ahead: {days: N}``: a re-run of upstream U on D
changes the downstream P on D..D+N past the as-of cap (as the router routes it), each of
those dates with its lookback dates (as-of capped); P on D+k waits for U on D; the
overlap check's reach and the registry digest count the ahead days."""

from __future__ import annotations

import hashlib
import json
from datetime import date
from typing import Any

import pytest
import yaml

from scoperouter.backfill.overlap import reach_back
from scoperouter.backfill.plan import Dep, Request, plan_backfill, registry_digest
from scoperouter.processor_registry.compiled import CompiledRegistry, compile_registry
from scoperouter.processor_registry.models import RoutesSpec
from scoperouter.processor_registry.relations import InMemoryRelations


def _d(day: int) -> date:
    return date(2025, 11, day)


def _reg(ahead: int | None, lookback: dict[str, Any] | None = None) -> CompiledRegistry:
    """u -> p (its input from u with ``ahead`` and p's ``lookback``) -> q (no ahead)."""
    inp: dict[str, Any] = {"source": "an.u"}
    if ahead is not None:
        inp["ahead"] = {"days": ahead}
    p: dict[str, Any] = {"phase": 4, "granularity": "player", "inputs": [inp], "publishes": "an.p"}
    if lookback is not None:
        p["lookback"] = lookback
    doc = {
        "version": 1,
        "entities": {"player": {}, "game": {}},
        "relations": {"player_games": {"from": "player", "to": "game"}},
        "processors": {
            "u": {"phase": 3, "granularity": "player", "inputs": [{"source": "raw.r"}],
                  "publishes": "an.u"},
            "p": p,
            "q": {"phase": 5, "granularity": "player", "inputs": [{"source": "an.p"}],
                  "publishes": "an.q"},
        },
    }  # fmt: skip
    return compile_registry(RoutesSpec.model_validate(doc))


@pytest.mark.parametrize(
    ("ahead", "lookback", "end", "as_of", "p_last", "q_last"),
    [
        (None, None, 10, 30, 10, 10),  # no ahead: the range alone
        (1, None, 10, 30, 11, 11),  # the router's D..D+1
        (1, None, 10, 10, 11, 11),  # past the as-of cap, and q reads p's run there
        (2, None, 12, 30, 14, 14),  # the range's last re-run date + N
        (2, {"days": 3}, 10, 30, 15, 15),  # D+2's lookback dates too
        (2, {"days": 3}, 10, 11, 12, 12),  # those capped at as-of, the ahead days not
        (1, {"occurrences": 1, "via": "player_games"}, 10, 10, 11, 11),
    ],
)
def test_ahead_days_extend_the_downstream_dates(
    ahead: int | None,
    lookback: dict[str, Any] | None,
    end: int,
    as_of: int,
    p_last: int,
    q_last: int,
) -> None:
    """--from u re-runs p through u's last date + N, past as-of, and q on p's dates."""
    plan = plan_backfill(
        _reg(ahead, lookback), Request(_d(10), _d(end), from_=("u",)), as_of=_d(as_of)
    )
    assert plan.last_day == {"u": _d(end), "p": _d(p_last), "q": _d(q_last)}
    days = {(r.processor, r.day) for r in plan.runs}
    assert days == {(n, _d(k)) for n, last in (("u", end), ("p", p_last), ("q", q_last))
                    for k in range(10, last + 1)}  # fmt: skip


@pytest.mark.parametrize(
    ("ahead", "lookback", "day", "want"),
    [
        (None, None, 11, Dep("u", _d(11), _d(11))),
        (1, None, 11, Dep("u", _d(10), _d(11))),  # p@11 reads u's report of the 10th
        (2, None, 12, Dep("u", _d(10), _d(12))),
        (2, {"days": 3}, 15, Dep("u", _d(10), _d(15))),  # clipped to the range's start
    ],
)
def test_a_run_on_an_ahead_date_waits_for_the_upstream_run_it_reads(
    ahead: int | None, lookback: dict[str, Any] | None, day: int, want: Dep
) -> None:
    """p on D+k (k <= N) has an edge to u on D: it runs after the run it reads."""
    plan = plan_backfill(_reg(ahead, lookback), Request(_d(10), _d(20)), as_of=_d(30))
    run = plan.runs[plan.index[f"p@{_d(day).isoformat()}"]]
    assert run.deps == (want,)
    assert plan.index[f"u@{_d(10).isoformat()}"] < plan.index[f"p@{_d(day).isoformat()}"]


def test_ahead_on_a_games_lookback_reads_the_window_shifted_by_n() -> None:
    """With an occurrences lookback, p on X reads u from X's window start - N."""
    rows = [(_d(k), "ann", f"g{k}") for k in (10, 12, 14)]
    rel = InMemoryRelations(
        {"player_games": rows},
        inverses={},
        types={"player_games": ("player", "game")},
    )
    reg = _reg(1, {"occurrences": 1, "via": "player_games"})
    plan = plan_backfill(reg, Request(_d(10), _d(20)), as_of=_d(30), relations=rel)
    # p@14: ann's previous game is the 12th, whose rows u dated the 11th or the 12th
    assert plan.runs[plan.index["p@2025-11-14"]].deps == (Dep("u", _d(11), _d(14)),)


@pytest.mark.parametrize(
    ("ahead", "lookback", "want"),
    [(None, None, 0), (1, None, 1), (2, {"days": 3}, 5), (2, {"occurrences": 1}, None)],
)
def test_overlap_reach_counts_the_ahead_days(
    ahead: int | None, lookback: dict[str, Any] | None, want: int | None
) -> None:
    """p reads u back by its lookback plus the ahead days (q through p, the same)."""
    if lookback is not None and "occurrences" in lookback:
        lookback = {**lookback, "via": "player_games"}
    r = reach_back(_reg(ahead, lookback))
    assert r["p"]["u"] == want and r["q"]["u"] == want


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        (None, None, True),
        (None, 1, False),  # a plan stored before the ahead is not resumed as unchanged
        (1, 2, False),
        (2, 2, True),
    ],
)
def test_the_registry_digest_sees_the_ahead_days(a: int | None, b: int | None, same: bool) -> None:
    """Adding or changing an input's ahead changes the digest (the resume key)."""
    assert (registry_digest(_reg(a)) == registry_digest(_reg(b))) is same


def test_a_registry_without_ahead_keeps_its_digest() -> None:
    """The digest of a registry with no ahead is the one before ``ahead``: its stored plans resume."""
    from backfill_support import REPO

    # the repository's registry with its ahead lines taken out (it has some since bac553b)
    text = (REPO / "routes.yaml").read_text(encoding="utf-8")
    kept = [ln for ln in text.splitlines() if not ln.lstrip().startswith("ahead:")]
    assert len(kept) < len(text.splitlines())
    doc = yaml.safe_load("\n".join(kept))
    reg = compile_registry(RoutesSpec.model_validate(doc))
    assert not any(i.ahead_days for p in reg.processors.values() for i in p.inputs.values())
    parts = []  # the digest as it was computed before ahead (commit 3991295)
    for name in reg.processor_names:
        p = reg.processors[name]
        lb = p.lookback.model_dump(exclude_none=True) if p.lookback is not None else None
        parts.append([name, p.phase, sorted(p.inputs), p.publishes, lb])
    before = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]
    assert registry_digest(reg) == before

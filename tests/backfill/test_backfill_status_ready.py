"""``GET /backfills/ID``'s counts (``service.status``) tell the runs that could start now
(``ready``: every upstream run they read is done) from those still ``waiting`` on one: the
store keeps both as ``waiting`` (readiness lives in the scheduler's memory)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from scoperouter.backfill.plan import Request, plan_backfill
from scoperouter.backfill.runner import open_backfill
from scoperouter.backfill.schedule import Scheduler, Transition
from scoperouter.backfill.service import policies, status
from scoperouter.backfill.store import BackfillStore
from scoperouter.processor_registry.loader import load_config

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("done_upstream_days", [0, 1, 2])
def test_status_counts_ready_runs_as_the_scheduler_does(
    tmp_path: Path, done_upstream_days: int
) -> None:
    """With the first N upstream dates done, GET's counts equal a fresh scheduler's."""
    reg = load_config(REPO / "routes.yaml", with_relations=False).registry
    req = Request(date(2025, 11, 1), date(2025, 11, 2), ("player_game_summary", "league_rankings"))
    store = BackfillStore(tmp_path / "backfills.sqlite")
    bid, plan, _ = open_backfill(
        store, "k", lambda: plan_backfill(reg, req, as_of=date(2025, 11, 30)), 0.0
    )
    done = [
        i
        for i, r in enumerate(plan.runs)
        if r.processor == "player_game_summary" and (r.day - req.start).days < done_upstream_days
    ]
    store.apply(bid, [Transition(i, "done", 1) for i in done])
    got = status(store, bid)
    sched = Scheduler(plan, policies(reg), restored={i: ("done", 1) for i in done})
    want = {k: v for k, v in sched.counts().items() if v}
    assert got is not None and got["counts"] == want
    assert got["counts"].get("ready", 0) > 0
    store.close()

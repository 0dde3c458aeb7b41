"""A backfill is never reported running when nothing runs it. Stored ``running`` with its run
lock free (its process died: SIGKILL, OOM kill), it is ``interrupted`` -- on the daemon's
start and on ``GET`` -- and its runs that were in flight are back to waiting; with its lock
held (a live process) it stays ``running``; planned but never started (``--dry-run``) it is
``planned``. POSTing the same request resumes an interrupted backfill without running its
done runs again. (The real SIGKILL: tests/runtime/test_backfill_daemon_sigkill.py.)"""

from __future__ import annotations

from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from backfill_support import REPO

from scoperouter.backfill.executor import RunOutcome
from scoperouter.backfill.http_api import BackfillApi
from scoperouter.backfill.plan import Request
from scoperouter.backfill.schedule import Transition
from scoperouter.backfill.service import prepare, store_path
from scoperouter.backfill.store import BackfillStore
from scoperouter.processor_registry.compiled import CompiledRegistry
from scoperouter.processor_registry.loader import load_config
from scoperouter.runtime.daemon import Daemon, DaemonSettings

AS_OF = date(2025, 11, 30)
BODY = {"start": "2025-11-01", "end": "2025-11-04", "processors": ["league_rankings"]}
REQUEST = Request(date(2025, 11, 1), date(2025, 11, 4), processors=("league_rankings",))


@cache
def registry() -> CompiledRegistry:
    return load_config(REPO / "routes.yaml", with_relations=False).registry


class Recorder:
    """Every run succeeds; records the dates it ran."""

    def __init__(self) -> None:
        self.days: list[date] = []

    async def execute(
        self, processor: str, day: date, *, backfill_id: str, attempt: int
    ) -> RunOutcome:
        self.days.append(day)
        return RunOutcome(True, rows=1)


def _api(state_dir: Path, executor: Recorder | None = None) -> BackfillApi:
    ex = executor or Recorder()
    return BackfillApi(registry(), lambda: None, state_dir, lambda _b: ex, as_of=lambda: AS_OF)


def _left_by_a_dead_process(state_dir: Path) -> str:
    """A backfill as a killed process leaves it: stored running, its first run done and its
    second in flight, the lock file of its owner still there (with its pid) but not held."""
    prep = prepare(registry(), None, REQUEST, state_dir=state_dir, as_of=AS_OF)
    bid = prep.backfill_id
    with prep.store.running(bid):  # the owner took the lock, ran, and died
        prep.store.set_status(bid, "running", 0.0)
        prep.store.apply(bid, [Transition(0, "done", 1), Transition(1, "running", 1)])
    prep.store.close()
    return bid


def _stored(state_dir: Path, bid: str) -> tuple[str | None, dict[str, int]]:
    """The status and run states as stored (read without any reconciliation)."""
    store = BackfillStore(store_path(state_dir))
    try:
        counts: dict[str, int] = {}
        for r in store.runs(bid):
            counts[r.state] = counts.get(r.state, 0) + 1
        return store.status(bid), counts
    finally:
        store.close()


async def _daemon_start(state_dir: Path, bid: str) -> tuple[str | None, dict[str, int]]:
    cfg = load_config(REPO / "routes.yaml")
    settings = DaemonSettings(state_dir=state_dir, port=0, as_of=AS_OF, sync="normal")
    d = Daemon(cfg.registry, cfg.relations, settings)
    await d.start()
    try:
        return _stored(state_dir, bid)  # nobody asked GET /backfills/ID
    finally:
        await d.stop()


async def _get(state_dir: Path, bid: str) -> tuple[str | None, dict[str, int]]:
    code, got = _api(state_dir).get(bid)
    assert code == 200, got
    return got["status"], got["counts"]


@pytest.mark.parametrize(
    ("notice", "left"),
    [(_daemon_start, "waiting"), (_get, "ready")],  # GET tells the runs that could start
    ids=["daemon-start", "get"],
)
async def test_a_backfill_left_running_by_a_dead_process_is_interrupted(
    tmp_path: Path, notice: Any, left: str
) -> None:
    """Stored running with a free lock: interrupted, its in-flight run waiting again."""
    bid = _left_by_a_dead_process(tmp_path)
    status, counts = await notice(tmp_path, bid)
    assert (status, counts) == ("interrupted", {"done": 1, left: 3})
    store = BackfillStore(store_path(tmp_path))
    try:
        assert [r.error for r in store.runs(bid)][1] == "interrupted"
    finally:
        store.close()


async def test_a_backfill_whose_process_holds_its_lock_stays_running(tmp_path: Path) -> None:
    """A live owner (its lock held, here on another open file) keeps the backfill running."""
    bid = _left_by_a_dead_process(tmp_path)
    owner = BackfillStore(store_path(tmp_path))
    try:
        with owner.running(bid):
            assert (await _get(tmp_path, bid))[0] == "running"
    finally:
        owner.close()
    assert (await _get(tmp_path, bid))[0] == "interrupted"


async def test_a_planned_backfill_is_not_reported_running(tmp_path: Path) -> None:
    """A backfill only planned (the CLI's --dry-run) answers planned, not running."""
    prep = prepare(registry(), None, REQUEST, state_dir=tmp_path, as_of=AS_OF)
    prep.store.close()
    assert await _get(tmp_path, prep.backfill_id) == ("planned", {"ready": 4})  # none waits


@pytest.mark.parametrize("left", ["interrupted", "planned"])
async def test_posting_the_same_request_resumes_it(tmp_path: Path, left: str) -> None:
    """POST of the same request: 202 resumed, running at once, its done run not run again."""
    if left == "interrupted":
        bid = _left_by_a_dead_process(tmp_path)
        assert (await _get(tmp_path, bid))[0] == "interrupted"
    else:
        prep = prepare(registry(), None, REQUEST, state_dir=tmp_path, as_of=AS_OF)
        prep.store.close()
        bid = prep.backfill_id
    rec = Recorder()
    api = _api(tmp_path, rec)
    code, got = await api.start(BODY)
    assert (code, got["backfill_id"], got["resumed"]) == (202, bid, True)
    assert api.get(bid)[1]["status"] == "running"  # before its task has run at all
    await api.tasks[bid]
    assert (api.get(bid)[1]["status"], api.get(bid)[1]["counts"]) == ("done", {"done": 4})
    want = [date(2025, 11, k) for k in range(1, 5)]
    assert sorted(rec.days) == (want[1:] if left == "interrupted" else want)

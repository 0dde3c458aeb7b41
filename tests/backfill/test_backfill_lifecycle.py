"""A daemon's backfills over their life: the status while a retry runs, refused options, the
targets' concurrency shared by backfills running at once, a stop with runs in flight."""

from __future__ import annotations

import asyncio
from datetime import date
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from backfill_support import REPO

from scoperouter.backfill.executor import RunOutcome
from scoperouter.backfill.http_api import BackfillApi
from scoperouter.processor_registry.loader import load_config
from scoperouter.runtime.http import IngressApp
from scoperouter.runtime.metrics import Metrics

BODY = {"start": "2025-11-01", "end": "2025-11-01", "processors": ["league_rankings"],
        "max_attempts": 1}  # fmt: skip


class Gate:
    """First invocation: every run fails. Later: runs wait for ``release``."""

    def __init__(self) -> None:
        self.failing = True
        self.release = asyncio.Event()
        self.started = asyncio.Event()

    async def execute(
        self, processor: str, day: date, *, backfill_id: str, attempt: int
    ) -> RunOutcome:
        if self.failing:
            return RunOutcome(False, error="boom")
        self.started.set()
        await self.release.wait()
        return RunOutcome(True, rows=1)


@pytest.fixture
async def api(tmp_path: Path) -> Any:
    reg = load_config(REPO / "routes.yaml", with_relations=False).registry
    gate = Gate()
    router = SimpleNamespace(metrics=Metrics())
    app = IngressApp(router)  # type: ignore[arg-type]
    app.backfills = BackfillApi(
        reg, lambda: None, tmp_path, lambda _b: gate, as_of=lambda: date(2025, 11, 30)
    )
    c: TestClient[Any, Any] = TestClient(TestServer(app.app))
    await c.start_server()
    yield c, gate, app
    gate.release.set()
    await app.backfills.close()
    await c.close()


async def _status(c: TestClient[Any, Any], bid: str) -> dict[str, Any]:
    resp = await c.get(f"/backfills/{bid}")
    got: dict[str, Any] = await resp.json()
    return got


async def test_a_resumed_failed_backfill_reports_running_while_it_runs(api: Any) -> None:
    """A failed backfill POSTed again answers running while its retry runs."""
    c, gate, app = api
    bid = (await (await c.post("/backfills", json=BODY)).json())["backfill_id"]
    await app.backfills.tasks[bid]
    assert (await _status(c, bid))["status"] == "failed"
    gate.failing = False
    again = await c.post("/backfills", json=BODY)
    assert again.status == 202 and (await again.json())["resumed"] is True
    await asyncio.wait_for(gate.started.wait(), 5)
    st = await _status(c, bid)
    assert st["status"] == "running", st
    gate.release.set()
    await app.backfills.tasks[bid]
    assert (await _status(c, bid))["status"] == "done"


@pytest.mark.parametrize(
    "extra",
    [
        {"max_attempts": -1},
        {"max_attempts": 0},
        {"completion": "events"},
        {"max_attempts": "2.5"},
        {"max_attempts": 2.5},  # was truncated to 2
        {"max_attempts": True},
        # a misspelt key was ignored: {"processor": [...]} backfilled every processor
        {"processor": ["league_rankings"]},
        {"phase": "4"},
        {"phases": "6-3"},
    ],
)
async def test_invalid_options_are_400_not_silently_replaced(
    api: Any, extra: dict[str, Any]
) -> None:
    """Bad max_attempts, completion or phases, or an unknown key, is 400, never a default."""
    c, _gate, app = api
    resp = await c.post("/backfills", json={**BODY, **extra})
    assert resp.status == 400, await resp.text()
    assert app.backfills.tasks == {}


class Meter:
    """Counts runs in flight per processor (each run waits a little)."""

    def __init__(self) -> None:
        self.now: dict[str, int] = {}
        self.peak: dict[str, int] = {}

    async def execute(
        self, processor: str, day: date, *, backfill_id: str, attempt: int
    ) -> RunOutcome:
        self.now[processor] = self.now.get(processor, 0) + 1
        self.peak[processor] = max(self.peak.get(processor, 0), self.now[processor])
        await asyncio.sleep(0.02)
        self.now[processor] -= 1
        return RunOutcome(True, rows=1)


async def test_two_backfills_share_the_targets_concurrency(tmp_path: Path) -> None:
    """Two backfills at once never put more runs in flight than a target's concurrency."""
    reg = load_config(REPO / "routes.yaml", with_relations=False).registry
    meter = Meter()
    api = BackfillApi(
        reg, lambda: None, tmp_path, lambda _b: meter, as_of=lambda: date(2025, 11, 30)
    )
    a = {"start": "2025-11-01", "end": "2025-11-10", "processors": ["league_rankings"]}
    b = {"start": "2025-11-11", "end": "2025-11-20", "processors": ["league_rankings"]}
    for body in (a, b):
        status, _ = await api.start(body)
        assert status == 202
    await asyncio.gather(*api.tasks.values())
    assert meter.peak["league_rankings"] <= reg.processors["league_rankings"].target.concurrency, (
        meter.peak
    )


async def test_a_backfill_stopped_with_the_daemon_is_not_reported_running(api: Any) -> None:
    """A daemon stop cancels the runs in flight and stores the backfill stopped, not running."""
    c, gate, app = api
    gate.failing = False
    bid = (await (await c.post("/backfills", json=BODY)).json())["backfill_id"]
    await asyncio.wait_for(gate.started.wait(), 5)
    before = {t for t in asyncio.all_tasks() if "execute" in repr(t.get_coro())}
    assert before
    await app.backfills.close()
    await asyncio.sleep(0)
    assert all(t.done() for t in before), "executor runs left running after the stop"
    st = await _status(c, bid)
    assert st["status"] != "running", st

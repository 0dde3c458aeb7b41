"""``GET /backfills/ID`` on a replica that does not run backfill ID: answered from the
live claim on the shared state store (the replica running it, its processors and dates)
rather than a 404; 404 when no live claim names it, 503 when that store cannot be asked."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import date
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from backfill_support import repo_reach as reach
from backfill_support import repo_registry as reg

from scoperouter.backfill.claim import Overlap
from scoperouter.backfill.executor import CallableExecutor
from scoperouter.backfill.http_api import BackfillApi
from scoperouter.backfill.plan import Request
from scoperouter.backfill.service import prepare
from scoperouter.backfill.shared_claim import SharedClaims
from scoperouter.runtime.http import IngressApp
from scoperouter.runtime.metrics import Metrics

AS_OF = date(2025, 11, 22)
PGS = Request(date(2025, 11, 1), date(2025, 11, 2), ("player_game_summary",))
T0 = 1_000_000.0  # replica a's wall clock when it claimed (lease 30 s)
UNREACHABLE = "postgresql://u:s3cretpw@127.0.0.1:1/db"  # nothing listens on port 1
Replica = Callable[..., Any]
DETAIL = {
    "a": "running on replica a; its progress is kept there: GET it from that replica",
    "cli-h1": "running in scoperouter backfill (cli-h1); its progress is kept in that "
    "process's state dir",
}


@pytest.fixture
async def replica_b(tmp_path: Path) -> AsyncIterator[Replica]:
    """``replica_b(shared)``: replica b's HTTP app (its own state dir, which knows no
    backfill) with backfill claims ``shared`` (None: no shared store); closed afterwards."""
    made: list[tuple[TestClient[Any, Any], BackfillApi]] = []

    async def open_(shared: SharedClaims | None) -> TestClient[Any, Any]:
        router = SimpleNamespace(metrics=Metrics())  # only the rejection counter is used
        app = IngressApp(router)  # type: ignore[arg-type]
        app.backfills = BackfillApi(
            reg(),
            lambda: None,
            tmp_path / "b",
            lambda _body: CallableExecutor(lambda p, d: 1),
            as_of=lambda: AS_OF,
            shared=shared,
        )
        c: TestClient[Any, Any] = TestClient(TestServer(app.app))
        await c.start_server()
        made.append((c, app.backfills))
        return c

    yield open_
    for c, api in made:
        await api.close()
        await c.close()


@pytest.mark.parametrize(
    ("owner", "asked", "b_store", "b_clock", "code", "error"),
    [
        # running on replica a, its lease live on replica b's clock
        ("a", "running", "pg", T0 + 1, 200, None),
        # running in the CLI (scoperouter backfill --state postgresql://...)
        ("cli-h1", "running", "pg", T0 + 1, 200, None),
        # an id no replica runs
        ("a", "unknown", "pg", T0 + 1, 404, "unknown_backfill"),
        # replica a's claim whose lease ran out (its process died): running nowhere
        ("a", "running", "pg", T0 + 31, 404, "unknown_backfill"),
        # replica b cannot ask the shared store: it cannot know, so not a 404
        ("a", "running", "unreachable", T0 + 1, 503, "state_store_unavailable"),
        # no shared store: this state dir's backfills only, as before
        ("a", "running", None, T0 + 1, 404, "unknown_backfill"),
    ],
)
async def test_get_on_a_replica_not_running_the_backfill(
    tmp_path: Path,
    pg_schema_dsn: str,
    replica_b: Replica,
    owner: str,
    asked: str,
    b_store: str | None,
    b_clock: float,
    code: int,
    error: str | None,
) -> None:
    """GET /backfills/ID on replica b of replica a's backfill: 200 naming replica a while its
    claim is live; 404 for an id running nowhere; 503 when the shared store is unreachable."""
    a = prepare(reg(), None, PGS, state_dir=tmp_path / "a", as_of=AS_OF)
    holder = SharedClaims(pg_schema_dsn, owner, 30.0, clock=lambda: T0)
    held = holder.claim(reach(), a.plan, a.backfill_id)
    assert not isinstance(held, Overlap)
    dsn = {"pg": pg_schema_dsn, "unreachable": UNREACHABLE}.get(b_store or "")
    shared = None if dsn is None else SharedClaims(dsn, "b", 30.0, clock=lambda: b_clock)
    c = await replica_b(shared)
    bid = a.backfill_id if asked == "running" else "0" * 12
    resp = await c.get(f"/backfills/{bid}")
    got = await resp.json()
    held.release()
    holder.close()
    a.store.close()
    assert resp.status == code, got
    if code == 200:
        assert got == {
            "backfill_id": a.backfill_id,
            "status": "running",
            "replica": owner,
            "processors": ["player_game_summary"],
            "start": "2025-11-01",
            "end": "2025-11-02",
            "detail": DETAIL[owner],
        }
    else:
        assert got["error"] == error
        assert "s3cretpw" not in got["detail"]

"""``POST /backfills`` on a running daemon (``scoperouter serve``'s assembly): the bearer
token of ``/events`` applies, the triggers go through the daemon's own sinks (the default
outbox target of routes.yaml) with ``reason: backfill``, and ``GET /backfills/ID`` reports
the end; ``serve --shadow`` sends nothing."""

from __future__ import annotations

import asyncio
import json
from datetime import date
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from backfill_support import REPO

from scoperouter.processor_registry.loader import load_config
from scoperouter.runtime.daemon import Daemon, DaemonSettings

BODY = {"start": "2025-11-10", "end": "2025-11-11", "from": ["upcoming_player_game_context"]}


async def _post_and_wait(port: int, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as s:
        async with s.post(f"http://127.0.0.1:{port}/backfills", json=BODY, headers=headers) as r:
            if r.status != 202:
                return r.status, await r.json()
            bid = (await r.json())["backfill_id"]
        for _ in range(1000):
            async with s.get(f"http://127.0.0.1:{port}/backfills/{bid}", headers=headers) as r:
                got: dict[str, Any] = await r.json()
            if got["status"] != "running":
                return 200, got
            await asyncio.sleep(0.01)
    raise AssertionError("the backfill did not finish")


@pytest.mark.parametrize("shadow", [False, True])
async def test_daemon_runs_a_backfill_through_its_sinks(tmp_path: Path, shadow: bool) -> None:
    """401 without the token; with it the backfill ends done, one trigger per run (none in
    shadow), in the daemon's outbox."""
    cfg = load_config(REPO / "routes.yaml")
    settings = DaemonSettings(state_dir=tmp_path / "s", port=0, as_of=date(2025, 11, 14),
                              sync="normal", bearer_token="tok", shadow=shadow)  # fmt: skip
    d = Daemon(cfg.registry, cfg.relations, settings)
    await d.start()
    try:
        assert d.port is not None
        status, _ = await _post_and_wait(d.port, {})
        assert status == 401
        status, got = await _post_and_wait(d.port, {"Authorization": "Bearer tok"})
    finally:
        await d.stop()
    assert status == 200 and got["status"] == "done" and got["counts"] == {"done": got["runs"]}
    # shadow: every run done without being sent, and GET says so
    assert got["skipped"] == ({"shadow": got["runs"]} if shadow else {})
    outbox = tmp_path / "s" / "outbox.jsonl"
    sent = [json.loads(x) for x in outbox.read_text().splitlines()] if outbox.exists() else []
    if shadow:
        assert sent == []
    else:
        assert len(sent) == got["runs"] and {t["reason"] for t in sent} == {"backfill"}

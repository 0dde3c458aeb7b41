"""Issue 11, acceptance 3, as a user runs it: each mapping of docs/targets.md installed in a
copy of routes.yaml, ``scoperouter serve`` started as a subprocess, a completion POSTed to
it, and the stub enforcing the production service's contract (contract_stubs.py) answers
2xx. The in-process variants with the wrong-mapping teeth are in test_target_contracts.py."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from contract_stubs import ServiceStubs
from runtime_support import wait_ready, write_registry
from test_target_contracts import DAY, MAPPINGS, env_for


@pytest.fixture
async def stubs() -> AsyncIterator[ServiceStubs]:
    s = ServiceStubs()
    await s.server.start_server()
    yield s
    await s.server.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


CASES = [
    ("analytics_process_date_range", "player_game_summary", "analytics",
     {"source": "nba_raw.nbac_gamebook_player_stats", "affected_entities": {"players": ["lalplayer01"]}},
     {"processors": ["PlayerGameSummaryProcessor"], "entities_changed": ["lalplayer01"]}),
    ("precompute_process_date", "player_shot_zone_analysis", "precompute",
     {"source": "nba_analytics.player_game_summary", "affected_entities": {"players": ["bosplayer03"]}},
     {"processors": ["PlayerShotZoneAnalysisProcessor"], "analysis_date": DAY}),
    ("coordinator_start", "prediction_coordinator", "coordinator",
     {"source": "nba_predictions.ml_feature_store_v2", "affected_entities": {"players": ["atlplayer00"]}},
     {"game_date": DAY}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("mapping", "processor", "service", "event", "expected"), CASES, ids=[c[0] for c in CASES]
)
async def test_mapping_through_serve_subprocess(
    tmp_path: Path, stubs: ServiceStubs, mapping: str, processor: str, service: str,
    event: dict[str, Any], expected: dict[str, Any],
) -> None:  # fmt: skip
    """A real trigger leaves `scoperouter serve` in the mapping's shape and the contract stub
    of that service accepts it (2xx); nothing is refused or dead-lettered."""
    cfg = write_registry(tmp_path, targets={processor: MAPPINGS[mapping]})
    port, log_path = _free_port(), tmp_path / "serve.log"
    env = {**os.environ, **env_for(stubs)}
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "scoperouter.cli", "serve", "--config", str(cfg),
             "--state-dir", str(tmp_path / "state"), "--port", str(port), "--as-of", DAY,
             "--shutdown-timeout", "2"],
            stdout=log, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
    body = {"event_id": f"serve-{mapping}", "game_date": DAY, **event}
    deadline = time.monotonic() + 120  # generous: a busy 2-core machine; not a timing check
    try:
        async with aiohttp.ClientSession() as session:
            # the port answers 503 'starting' before the ingress is up: wait for /readyz
            await wait_ready(session, port, proc, log_path)
            async with session.post(f"http://127.0.0.1:{port}/events", json=body) as r:
                assert r.status == 200, await r.text()
        while not [c for c in stubs.accepted if c.service == service] and not stubs.rejected:
            assert time.monotonic() < deadline, log_path.read_text()[-3000:]
            await asyncio.sleep(0.1)
    finally:
        proc.terminate()
        proc.wait(30)
    assert stubs.rejected == []
    calls = [c.opts for c in stubs.accepted if c.service == service]
    assert any(expected.items() <= c.items() for c in calls), calls

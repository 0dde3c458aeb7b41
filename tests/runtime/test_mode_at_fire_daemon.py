"""The daemon keeps a shadow processor's target unbuilt until a trigger it fired while live
must still be delivered (docs/rollout.md "Flip back"): after a restart that makes the
processors shadow (routes.yaml, or ``serve --shadow``), the triggers left pending behind a
failing HTTP target reach that target -- never the default target -- and the start-up
log names how many."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web
from runtime_support import GAME_DAY, INJURY_EVENT, LocalTarget, load, write_registry

from scoperouter.messages.normalize import normalize_event
from scoperouter.processor_registry.loader import LoadedConfig
from scoperouter.router.planner import plan
from scoperouter.runtime.daemon import Daemon, DaemonSettings
from scoperouter.runtime.router import Inbound


class Target(LocalTarget):
    """An HTTP target per processor (``/<name>``) that is down (503) until told otherwise;
    records the requests it accepted and the paths it was called on."""

    def __init__(self) -> None:
        super().__init__()
        self.up = False
        self.calls: list[str] = []
        self.accepted: set[str] = set()

    async def handle(self, request: web.Request) -> web.Response:
        self.calls.append(request.path)
        if not self.up:
            return web.Response(status=503, text="down")
        self.accepted.add(request.path + " " + await request.text())
        return web.Response(text="ok")


@pytest.fixture
async def target() -> AsyncIterator[Target]:
    t = Target()
    await t.start()
    yield t
    await t.stop()


def registry(tmp: Path, target: Target, mode: str) -> LoadedConfig:
    """Zero windows, every processor on its own path of ``target`` (the default target: an
    outbox file), all in ``mode``."""
    names = load(write_registry(tmp / "base")).registry.processors
    targets = {
        p: {"http": {"url": f"http://127.0.0.1:{target.port}/{p}", "timeout": "5s"}} for p in names
    }
    path = write_registry(tmp / mode, targets=targets)
    spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    spec["defaults"]["mode"] = mode
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return load(path)


def daemon(cfg: LoadedConfig, state: Path, *, shadow: bool = False) -> Daemon:
    return Daemon(
        cfg.registry,
        cfg.relations,
        DaemonSettings(state_dir=state, port=0, as_of=GAME_DAY, sync="normal", shadow=shadow),
    )


async def until(pred: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("serve_shadow", [False, True], ids=["routes-shadow", "serve-shadow"])
async def test_live_triggers_pending_at_a_flip_to_shadow_reach_their_targets(
    tmp_path: Path, target: Target, serve_shadow: bool, caplog: pytest.LogCaptureFixture
) -> None:
    """Pending live triggers reach their own targets after a restart into shadow mode."""
    state = tmp_path / "state"
    d1 = daemon(registry(tmp_path, target, "live"), state)
    await d1.start()
    try:
        out = await d1.router.submit(Inbound("test", data=json.dumps(INJURY_EVENT).encode()))
        assert out.status == "accepted"
        samples = d1.metrics.triggers_fired.collect()[0].samples
        fired = int(sum(s.value for s in samples if s.name.endswith("_total")))
        assert fired > 0
        # each target failed once (a processor's path serves its triggers of every date: the
        # injury report's game_date readers fire for the next day too, routes.yaml `ahead`)
        cfg = d1.router.registry, d1.router.relations
        ev = normalize_event(INJURY_EVENT, cfg[0])
        procs = {x.processor for x in plan(*cfg, ev, GAME_DAY) if x.action == "run"}
        await until(lambda: len(set(target.calls)) >= len(procs))
    finally:
        await d1.stop()
    paths = set(target.calls)
    target.up = True
    caplog.set_level(logging.INFO, logger="scoperouter")
    after = "live" if serve_shadow else "shadow"
    d2 = daemon(registry(tmp_path, target, after), state, shadow=serve_shadow)
    await d2.start()
    try:
        await until(lambda: len(target.accepted) >= fired)
        assert await d2.router.idle(timeout=10)
    finally:
        await d2.stop()
    assert len(target.accepted) == fired
    assert set(target.calls) == paths  # their own targets only
    # nothing went to the default target (an outbox file)
    assert all(f.stat().st_size == 0 for f in state.glob("**/*.jsonl"))
    lines = [
        r.getMessage() for r in caplog.records if "pending triggers fired live" in r.getMessage()
    ]
    assert len(lines) == 1 and lines[0].startswith(f"restart: {fired} pending triggers")

"""Shadow mode and per-processor rollout (issue 19, acceptance 1 and 2): the daemon with live
HTTP targets configured (a stub that records every request), fed a game day of events, in
memory or through the Pub/Sub emulator.

* ``serve --shadow``: the same decisions and execution log as a live run (modulo dispatch
  status and timestamps), and the stub receives no request.
* one processor ``mode: live``, the others ``shadow``: only that processor's target is
  called, and ``report`` splits the figures by mode."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web
from runtime_support import GAME_DAY, LocalTarget, game_day_stream, load, write_registry

from scoperouter.cli import main
from scoperouter.execution_log import SqliteExecutionLog
from scoperouter.execution_log.reader import read_log
from scoperouter.processor_registry.loader import LoadedConfig
from scoperouter.runtime.daemon import Daemon, DaemonSettings
from scoperouter.runtime.router import Inbound

PROJECT = "scoperouter-test"
STREAM = game_day_stream(200, seed=19)
LIVE_ONE = "player_game_summary"

TRANSPORTS = [
    pytest.param("memory", id="memory"),
    pytest.param("pull", id="pubsub-pull", marks=pytest.mark.emulator),
]


class Stub(LocalTarget):
    """An HTTP target that records every request (path, parsed push envelope)."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[tuple[str, Any]] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append((request.path, await request.json()))
        return web.Response(text="ok")


@pytest.fixture
async def stub() -> AsyncIterator[Stub]:
    s = Stub()
    await s.start()
    yield s
    await s.stop()


def http_registry(
    tmp: Path, stub: Stub, *, default_mode: str = "live", live: str | None = None
) -> tuple[LoadedConfig, Path]:
    """The NBA registry, zero windows, an HTTP target per processor on the stub; modes set."""
    cfg0 = load(write_registry(tmp / "base"))
    targets = {
        p: {"http": {"url": f"http://127.0.0.1:{stub.port}/{p}", "timeout": "5s"}}
        for p in cfg0.registry.processors
    }
    path = write_registry(tmp, targets=targets)
    spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    spec["defaults"]["mode"] = default_mode
    if live is not None:
        spec["processors"][live]["mode"] = "live"
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return load(path), path


async def run_day(cfg: LoadedConfig, state: Path, transport: str, *, shadow: bool) -> Path:
    """The stream through one daemon; returns its execution log (flushed)."""
    log_path = state.parent / f"{state.name}.sqlite"
    log = SqliteExecutionLog(log_path)
    sub = topic = None
    if transport == "pull":
        from test_transports import create_topic_and_sub, names, publish_all

        topic, sub = names("shadow")
        await asyncio.to_thread(create_topic_and_sub, topic, sub)
    d = Daemon(
        cfg.registry,
        cfg.relations,
        DaemonSettings(
            state_dir=state, port=0, subscription=sub, as_of=GAME_DAY, sync="normal", shadow=shadow
        ),
        log=log,
    )
    await d.start()
    try:
        payloads = [json.dumps(e).encode() for e in STREAM]
        if transport == "memory":
            for p in payloads:
                while not (await d.router.submit(Inbound("test", data=p))).ack:
                    await asyncio.sleep(0.01)
        else:
            assert topic is not None
            await asyncio.to_thread(publish_all, topic, payloads)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if d.metrics.events_accepted._value.get() >= len(STREAM) and await d.router.idle(
                timeout=0.1
            ):
                break
            await asyncio.sleep(0.05)
        assert d.metrics.events_accepted._value.get() == len(STREAM)
        assert await d.router.idle(timeout=10)
        metrics = d.metrics.render().decode()
    finally:
        await d.stop()
    log.flush()
    log.close()
    (state.parent / f"{state.name}.metrics").write_text(metrics, encoding="utf-8")
    return log_path


def decisions(path: Path) -> Counter[tuple[Any, ...]]:
    """Decision rows without timestamps and trigger links."""
    return Counter(
        (
            r.decision_id,
            r.processor,
            r.game_date,
            r.action,
            r.scope,
            r.entity_ids,
            r.entities_requested,
            r.entities_mapped,
            r.reason,
        )
        for r in read_log(path).decisions
    )


def dispatches(path: Path) -> tuple[Counter[tuple[Any, ...]], Counter[str]]:
    """Dispatch rows without ids and timestamps, and their statuses."""
    rows = read_log(path).dispatches
    return (
        Counter(
            (r.processor, r.game_date, r.scope, r.entity_ids, r.reason, r.caused_by) for r in rows
        ),
        Counter(r.dispatch_status or "" for r in rows),
    )


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_shadow_logs_what_live_dispatches_and_calls_nothing(
    transport: str, tmp_path: Path, stub: Stub, request: pytest.FixtureRequest
) -> None:
    """serve --shadow: same decisions and dispatch rows as live (status 'shadow'), no request."""
    if transport == "pull":
        request.getfixturevalue("pubsub_emulator")
    cfg, _ = http_registry(tmp_path / "cfg", stub)
    live_log = await run_day(cfg, tmp_path / "live", transport, shadow=False)
    live_requests = len(stub.requests)
    assert live_requests > 0
    stub.requests.clear()
    shadow_log = await run_day(cfg, tmp_path / "shadow", transport, shadow=True)
    assert stub.requests == []
    assert decisions(shadow_log) == decisions(live_log)
    (live_rows, live_status), (shadow_rows, shadow_status) = (
        dispatches(live_log),
        dispatches(shadow_log),
    )
    assert shadow_rows == live_rows
    assert live_status == Counter({"ok": live_requests})
    assert shadow_status == Counter({"shadow": live_requests})
    metrics = (tmp_path / "shadow.metrics").read_text(encoding="utf-8")
    assert (
        f'scoperouter_triggers_dispatched_total{{mode="shadow",processor="{LIVE_ONE}"}}' in metrics
    )
    assert 'mode="live"' not in metrics.replace('scoperouter_processor_mode{mode="live"', "")
    assert f'scoperouter_processor_mode{{mode="shadow",processor="{LIVE_ONE}"}} 1.0' in metrics


async def test_one_processor_live_the_rest_shadow(
    tmp_path: Path, stub: Stub, capsys: pytest.CaptureFixture[str]
) -> None:
    """defaults.mode shadow, one processor live: only its target is called; report splits by mode."""
    cfg, cfg_path = http_registry(tmp_path / "cfg", stub, default_mode="shadow", live=LIVE_ONE)
    log = await run_day(cfg, tmp_path / "mixed", "memory", shadow=False)
    paths = Counter(p for p, _ in stub.requests)
    assert set(paths) == {f"/{LIVE_ONE}"}
    _rows, status = dispatches(log)
    assert status["ok"] == paths[f"/{LIVE_ONE}"] and status["shadow"] > 0
    capsys.readouterr()
    assert main(["report", "--log", str(log), "--config", str(cfg_path), "--json"]) == 0
    ro = json.loads(capsys.readouterr().out)["rollout"]
    assert ro["by_mode"]["live"]["processors"] == [LIVE_ONE]
    assert ro["by_mode"]["live"]["runs"] == status["ok"]
    assert ro["by_mode"]["shadow"]["runs"] == status["shadow"]
    assert LIVE_ONE not in ro["by_mode"]["shadow"]["processors"]
    procs = {p["processor"]: p for p in ro["processors"]}
    assert procs[LIVE_ONE]["decision"] == "live"
    assert all(p["mode"] == "shadow" for n, p in procs.items() if n != LIVE_ONE)
    html = tmp_path / "report.html"
    assert main(["report", "--log", str(log), "--config", str(cfg_path), "--html", str(html)]) == 0
    text = capsys.readouterr().out
    assert f"  live   1 processor(s), {status['ok']} runs" in text
    assert "Rollout: shadow and live" in html.read_text(encoding="utf-8")

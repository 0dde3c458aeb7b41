"""Sinks: the HTTP push envelope, the outbox file, Pub/Sub limits, targets from the
registry only, and failing/hanging targets isolated from healthy ones."""

from __future__ import annotations

import asyncio
import base64
import json
import statistics
import time
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from runtime_support import RouterFactory, game_day_stream, load, write_registry

from scoperouter.errors import ConfigError, DispatchError
from scoperouter.messages.models import Trigger
from scoperouter.processor_registry.models import TargetSpec
from scoperouter.runtime.router import Inbound
from scoperouter.runtime.sinks import (
    SinkFactory,
    check_pubsub_limits,
    ordering_key,
    trigger_attributes,
)

TRIGGER = Trigger(
    trigger_id="t-1",
    processor="player_game_summary",
    game_date=date(2025, 11, 19),
    start_date=date(2025, 11, 19),
    end_date=date(2025, 11, 19),
    scope="entities",
    entity_type="player",
    entity_ids=("lebronjames",),
    reason="entity_scope",
    caused_by=("e-123",),
    correlation_id="c-9",
    priority="critical",
)


class Receiver:
    """A loopback HTTP service: /ok (optionally slow), /fail (500), /bad (400), /hang."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.got: list[tuple[float, dict[str, Any]]] = []
        self.fail_calls = 0
        app = web.Application()
        app.router.add_post("/ok", self.ok)
        app.router.add_post("/fail", self.fail)
        app.router.add_post("/bad", self.bad)
        app.router.add_post("/hang", self.hang)
        self.server = TestServer(app)

    async def ok(self, request: web.Request) -> web.Response:
        body = await request.json()
        if self.delay:
            await asyncio.sleep(self.delay)
        self.got.append((time.time(), body))
        return web.Response(text="ok")

    async def fail(self, request: web.Request) -> web.Response:
        self.fail_calls += 1
        return web.Response(status=500, text="boom")

    async def bad(self, request: web.Request) -> web.Response:
        return web.Response(status=400, text="no")

    async def hang(self, request: web.Request) -> web.Response:
        await asyncio.sleep(3600)
        return web.Response(text="late")

    def url(self, path: str) -> str:
        return str(self.server.make_url(path))


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()
    await rec.server.start_server()
    yield rec
    await rec.server.close()


async def test_http_sink_sends_push_envelope(receiver: Receiver, tmp_path: Path) -> None:
    """HTTP targets get the Pub/Sub push envelope with the trigger as base64 JSON."""
    f = SinkFactory(tmp_path)
    sink = f.build(
        "player_game_summary", TargetSpec.model_validate({"http": {"url": receiver.url("/ok")}})
    )
    await sink.send(TRIGGER, message_id="t-1-7")
    await f.close()
    ((_, body),) = receiver.got
    msg = body["message"]
    assert json.loads(base64.b64decode(msg["data"])) == TRIGGER.model_dump(mode="json")
    assert msg["attributes"] == {
        "processor": "player_game_summary",
        "game_date": "2025-11-19",
        "scope": "entities",
        "trigger_id": "t-1",
    }
    assert msg["messageId"] == "t-1-7"
    assert isinstance(body["subscription"], str)


@pytest.mark.parametrize(("path", "retryable"), [("/fail", True), ("/bad", False)])
async def test_http_sink_errors(
    receiver: Receiver, tmp_path: Path, path: str, retryable: bool
) -> None:
    """5xx is retryable, other 4xx are permanent."""
    f = SinkFactory(tmp_path)
    sink = f.build("p", TargetSpec.model_validate({"http": {"url": receiver.url(path)}}))
    with pytest.raises(DispatchError) as exc:
        await sink.send(TRIGGER, message_id="m")
    await f.close()
    assert exc.value.retryable is retryable


async def test_outbox_sink_writes_one_trigger_per_line(tmp_path: Path) -> None:
    """The default target appends SPEC section 3 triggers to <state-dir>/outbox.jsonl."""
    f = SinkFactory(tmp_path)
    sink = f.build("p", TargetSpec.model_validate({"outbox": {}}))
    await sink.send(TRIGGER, message_id="a")
    await sink.send(TRIGGER.model_copy(update={"trigger_id": "t-2"}), message_id="b")
    await f.close()
    lines = (tmp_path / "outbox.jsonl").read_text().splitlines()
    assert [json.loads(x)["trigger_id"] for x in lines] == ["t-1", "t-2"]
    assert json.loads(lines[0]) == TRIGGER.model_dump(mode="json")


@pytest.mark.parametrize(
    ("attrs", "key", "data_len", "ok"),
    [
        ({"processor": "p"}, "p:2025-11-19", 10, True),
        ({"processor": "p" * 1025}, None, 10, False),
        ({"k" * 257: "v"}, None, 10, False),
        ({f"a{i}": "v" for i in range(101)}, None, 10, False),
        ({"processor": "p"}, "k" * 1025, 10, False),
        ({"processor": "p"}, None, 10_000_001, False),
    ],
)
def test_pubsub_limits(attrs: dict[str, str], key: str | None, data_len: int, ok: bool) -> None:
    """Pub/Sub attribute/ordering-key/size limits are checked before publishing."""
    if ok:
        check_pubsub_limits(b"x" * data_len, attrs, key, processor="p", target="t")
    else:
        with pytest.raises(DispatchError) as exc:
            check_pubsub_limits(b"x" * data_len, attrs, key, processor="p", target="t")
        assert exc.value.retryable is False


def test_pubsub_attributes_and_ordering_key() -> None:
    """Pub/Sub triggers carry processor, game_date, scope, trigger_id and a per-processor-date key."""
    assert trigger_attributes(TRIGGER) == {
        "processor": "player_game_summary",
        "game_date": "2025-11-19",
        "scope": "entities",
        "trigger_id": "t-1",
    }
    assert ordering_key(TRIGGER) == "player_game_summary:2025-11-19"


@pytest.mark.parametrize(
    ("target", "env", "error"),
    [
        ({"pubsub": {"topic": "${TOPIC}"}}, {}, "TOPIC"),
        ({"pubsub": {"topic": "t"}}, {}, "needs a project"),
        ({"http": {"url": "ftp://x"}}, {}, "not an http"),
        ({"http": {"url": "${U}"}}, {"U": "gopher://x"}, "not an http"),
    ],
)
def test_bad_targets_fail_at_startup(
    tmp_path: Path, target: dict[str, Any], env: dict[str, str], error: str
) -> None:
    """Targets come from routes.yaml with ${ENV}; an unusable one is a config error at startup."""
    f = SinkFactory(tmp_path, env=env)
    with pytest.raises(ConfigError, match=error):
        f.build("p", TargetSpec.model_validate(target))


def test_topic_from_env(tmp_path: Path) -> None:
    """${VAR} in a topic is expanded from the environment."""
    f = SinkFactory(tmp_path, env={"PROJ": "prj", "T": "trig"})
    sink = f.build(
        "p", TargetSpec.model_validate({"pubsub": {"topic": "${T}", "project": "${PROJ}"}})
    )
    assert sink.name == "pubsub:projects/prj/topics/trig"


async def healthy_latencies(
    tmp_path: Path, make_router: RouterFactory, *, with_failures: bool, events: list[dict[str, Any]]
) -> tuple[list[float], Any, Receiver]:
    rec = Receiver(delay=0.02)
    await rec.server.start_server()
    targets: dict[str, Any] = {}
    if with_failures:
        targets = {
            "player_game_summary": {"http": {"url": rec.url("/fail")}, "max_attempts": 3},
            "team_offense_game_summary": {
                "http": {"url": rec.url("/hang"), "timeout": "300ms"},
                "max_attempts": 2,
            },
        }
    cfg = load(
        write_registry(
            tmp_path,
            targets=targets,
            default_target={"http": {"url": rec.url("/ok")}, "concurrency": 8},
        )
    )
    f = SinkFactory(tmp_path)
    r = make_router(
        cfg,
        sinks=f.build_all(cfg.registry),
        state_dir=tmp_path,
        backoff_base_s=0.05,
        backoff_cap_s=0.2,
    )
    await r.start()
    for e in events:  # a steady stream, not one burst
        await r.submit(Inbound("test", obj=e))
        await asyncio.sleep(0.002)
    assert await r.idle(timeout=20)
    await r._flush_marks()
    lat = []
    for t_recv, body in rec.got:
        trig = json.loads(base64.b64decode(body["message"]["data"]))
        fired = Trigger.model_validate(trig).fired_at
        assert fired is not None
        lat.append(t_recv - fired.timestamp())
    await f.close()
    await rec.server.close()
    return lat, r, rec


async def test_failing_targets_are_isolated(tmp_path: Path, make_router: RouterFactory) -> None:
    """A 500-answering and a hanging target are retried then dead-lettered, while every
    trigger of the healthy targets is delivered (no wall-clock bound here: the latency
    comparison is the slow test below)."""
    events = game_day_stream(150, seed=11)
    lat, r, rec = await healthy_latencies(tmp_path, make_router, with_failures=True, events=events)
    counts = r.store.trigger_counts()
    dead = [d for d in r.store.dead_letters() if d.kind == "trigger"]
    procs = {json.loads(d.payload or b"{}")["processor"] for d in dead}
    assert procs == {"player_game_summary", "team_offense_game_summary"}
    assert counts.get("dead", 0) == len(dead) > 0
    assert counts.get("pending", 0) == 0
    assert rec.fail_calls == 3 * sum(
        1 for d in dead if b"player_game_summary" in (d.payload or b"")
    )
    assert {d.reason for d in dead} == {"max_attempts"}
    assert len(lat) == counts.get("done", 0) > 0


@pytest.mark.slow
async def test_failing_targets_keep_healthy_latency(
    tmp_path: Path, make_router: RouterFactory
) -> None:
    """Healthy targets keep their latency next to failing ones (median within 2x of a run
    without the failing targets): a wall-clock ratio, so in the slow set, not the default."""
    events = game_day_stream(150, seed=11)
    base, _r0, _ = await healthy_latencies(
        tmp_path / "a", make_router, with_failures=False, events=events
    )
    lat, _r, _ = await healthy_latencies(
        tmp_path / "b", make_router, with_failures=True, events=events
    )
    m_base, m_fail = statistics.median(base), statistics.median(lat)
    print(
        f"healthy median latency: {m_base * 1000:.1f} ms alone, {m_fail * 1000:.1f} ms with failing targets"
    )
    assert m_fail <= 2 * m_base

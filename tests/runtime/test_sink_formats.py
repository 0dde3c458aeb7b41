"""Target formats at the sinks (docs/targets.md): the bare trigger, a mapped body with
headers (optionally inside the push envelope), mapped Pub/Sub data with SPEC attributes,
mapped outbox lines, render failures and ``retry_on``."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from test_sinks import TRIGGER

from scoperouter.errors import ConfigError, DispatchError
from scoperouter.processor_registry.models import TargetSpec
from scoperouter.runtime.sinks import SinkFactory

MAPPING = {
    "headers": {"X-API-Key": "${KEY}", "X-Trigger": "$.trigger_id", "X-Corr": "$.correlation_id"},
    "body": {
        "start_date": "$.start_date",
        "ids": "$.entity_ids",
        "backfill": {"$eq": ["$.reason", "backfill"]},
    },
}
MAPPED = {"start_date": "2025-11-19", "ids": ["lebronjames"], "backfill": False}


class Recorder:
    """Records request bodies and headers; answers with the status in the path."""

    def __init__(self) -> None:
        self.got: list[tuple[bytes, dict[str, str]]] = []
        app = web.Application()
        app.router.add_post("/{status}", self.handle)
        self.server = TestServer(app)

    async def handle(self, request: web.Request) -> web.Response:
        self.got.append((await request.read(), dict(request.headers)))
        return web.Response(status=int(request.match_info["status"]), text="x")

    def url(self, status: int = 200) -> str:
        return str(self.server.make_url(f"/{status}"))


@pytest.fixture
async def rec() -> AsyncIterator[Recorder]:
    r = Recorder()
    await r.server.start_server()
    yield r
    await r.server.close()


async def send(tmp: Path, target: dict[str, Any], env: dict[str, str] | None = None) -> None:
    f = SinkFactory(tmp, env=env or {"KEY": "k-1"})
    try:
        await f.build("player_game_summary", TargetSpec.model_validate(target)).send(
            TRIGGER, message_id="m-1"
        )
    finally:
        await f.close()


async def test_http_trigger_format_posts_the_bare_trigger(rec: Recorder, tmp_path: Path) -> None:
    """format: trigger sends the SPEC trigger as the request body, no envelope."""
    await send(tmp_path, {"http": {"url": rec.url()}, "format": "trigger"})
    ((body, headers),) = rec.got
    assert json.loads(body) == TRIGGER.model_dump(mode="json")
    assert headers["Content-Type"] == "application/json"


@pytest.mark.parametrize("envelope", [False, True])
async def test_http_mapping_sends_body_and_headers(
    rec: Recorder, tmp_path: Path, envelope: bool
) -> None:
    """A mapping sends its rendered body (bare, or as envelope data with SPEC attributes)
    and its headers (${ENV} and trigger fields)."""
    await send(tmp_path, {"http": {"url": rec.url()}, "mapping": {**MAPPING, "envelope": envelope}})
    ((body, headers),) = rec.got
    assert headers["X-API-Key"] == "k-1" and headers["X-Trigger"] == "t-1"
    assert headers["X-Corr"] == "c-9"
    sent = json.loads(body)
    if envelope:
        assert sent["message"]["attributes"] == {
            "processor": "player_game_summary",
            "game_date": "2025-11-19",
            "scope": "entities",
            "trigger_id": "t-1",
        }
        sent = json.loads(base64.b64decode(sent["message"]["data"]))
    assert sent == MAPPED


async def test_outbox_mapping_writes_the_mapped_line(tmp_path: Path) -> None:
    """An outbox target with a mapping writes the rendered body as its line."""
    await send(tmp_path, {"outbox": {}, "mapping": {"body": MAPPING["body"]}})
    assert [json.loads(x) for x in (tmp_path / "outbox.jsonl").read_text().splitlines()] == [MAPPED]


async def test_pubsub_mapping_shapes_data_not_attributes(tmp_path: Path) -> None:
    """A Pub/Sub mapping shapes the message data; attributes (trigger_id too) and key stay."""
    published: list[tuple[str, bytes, dict[str, str], str | None]] = []

    class FakePublisher:
        async def publish(
            self,
            topic: str,
            data: bytes,
            attributes: Any,
            ordering: str | None,
            *,
            timeout_s: float | None = None,
        ) -> str:
            published.append((topic, data, dict(attributes), ordering))
            return "1"

        def close(self) -> None:
            return None

    f = SinkFactory(tmp_path, env={})
    f.publisher = FakePublisher()  # type: ignore[assignment]
    sink = f.build(
        "player_game_summary",
        TargetSpec.model_validate(
            {"pubsub": {"topic": "projects/p/topics/t"}, "mapping": {"body": MAPPING["body"]}}
        ),
    )
    await sink.send(TRIGGER, message_id="m")
    await f.close()
    ((topic, data, attrs, key),) = published
    assert topic == "projects/p/topics/t" and json.loads(data) == MAPPED
    assert attrs == {
        "processor": "player_game_summary",
        "game_date": "2025-11-19",
        "scope": "entities",
        "trigger_id": "t-1",  # the dedupe key, though the mapped data dropped it
    }
    assert key == "player_game_summary:2025-11-19"


async def test_lookup_miss_is_a_permanent_dispatch_error(rec: Recorder, tmp_path: Path) -> None:
    """A $lookup without default that misses (a key validate cannot enumerate) is not retried."""
    target = {
        "http": {"url": rec.url()},
        "mapping": {"body": {"$lookup": ["$.trigger_id", {"t-2": 1}]}},
    }
    with pytest.raises(DispatchError) as exc:
        await send(tmp_path, target)
    assert exc.value.retryable is False and "no entry for 't-1'" in str(exc.value)
    assert rec.got == []


@pytest.mark.parametrize(("retry_on", "retryable"), [([], False), ([409], True)])
async def test_retry_on(
    rec: Recorder, tmp_path: Path, retry_on: list[int], retryable: bool
) -> None:
    """http.retry_on makes a 4xx retryable (409 from a coordinator mid-batch); others stay permanent."""
    with pytest.raises(DispatchError) as exc:
        await send(tmp_path, {"http": {"url": rec.url(409), "retry_on": retry_on}})
    assert exc.value.retryable is retryable


def test_unset_env_in_a_mapping_fails_at_startup(tmp_path: Path) -> None:
    """${VAR} in a mapping literal is expanded when the sink is built; unset is a config error."""
    f = SinkFactory(tmp_path, env={})
    with pytest.raises(ConfigError, match="KEY"):
        f.build(
            "player_game_summary",
            TargetSpec.model_validate({"http": {"url": "http://x"}, "mapping": MAPPING}),
        )


async def test_mapping_reads_the_registry_date_field(tmp_path: Path) -> None:
    """With date_field: business_date the trigger's date is $.business_date (as on the
    wire); $.game_date is an unknown field there."""
    from scoperouter.processor_registry.loader import load_config

    repo = Path(__file__).resolve().parents[2]
    cfg = load_config(repo / "examples" / "retail" / "routes.yaml")
    proc = next(iter(cfg.registry.processors))
    f = SinkFactory(tmp_path, env={})
    target = TargetSpec.model_validate(
        {"outbox": {}, "mapping": {"body": {"day": "$.business_date", "key": "$.date_field"}}}
    )
    sink = f.build(proc, target, cfg.registry)
    trig = TRIGGER.model_copy(update={"processor": proc, "date_field": "business_date"})
    await sink.send(trig, message_id="m")
    await f.close()
    assert json.loads((tmp_path / "outbox.jsonl").read_text()) == {
        "day": "2025-11-19",
        "key": "business_date",
    }
    with pytest.raises(ConfigError, match="unknown field 'game_date'"):
        SinkFactory(tmp_path, env={}).build(
            proc,
            TargetSpec.model_validate({"outbox": {}, "mapping": {"body": "$.game_date"}}),
            cfg.registry,
        )


SHARED = """\
version: 1
entities: {player: {}, team: {}}
defaults:
  target:
    outbox: {}
    mapping:
      body:
        ids: $.entity_ids
        summary: {$eq: [$.processor, pgs]}
        per_team: {$eq: [$.entity_type, team]}
processors:
  pgs: {phase: 3, granularity: player, inputs: [{source: nba_raw.x}]}
  tds: {phase: 3, granularity: team, inputs: [{source: nba_raw.x}]}
  own:
    phase: 3
    granularity: player
    inputs: [{source: nba_raw.x}]
    target: {outbox: {path: OWN}, mapping: {body: {p: {$eq: [$.processor, own]}}}}
"""


async def test_a_shared_target_that_validates_builds_for_each_of_its_processors(
    tmp_path: Path,
) -> None:
    """A default target's mapping is compiled at serve against the same fields as validate (every processor using it), so a config validate accepts starts and renders."""
    from scoperouter.processor_registry.loader import check_config_bytes, load_config_text

    text = SHARED.replace("OWN", str(tmp_path / "own.jsonl"))
    checked = check_config_bytes(text, file="r.yaml", with_relations=False)
    assert checked.valid, [i.format() for i in checked.errors]
    cfg = load_config_text(text, with_relations=False)
    f = SinkFactory(tmp_path, env={})
    sinks = f.build_all(cfg.registry)
    team = TRIGGER.model_copy(
        update={"processor": "tds", "entity_type": "team", "entity_ids": ("LAL",)}
    )
    await sinks["tds"].send(team, message_id="m")
    await f.close()
    assert json.loads((tmp_path / "outbox.jsonl").read_text()) == {
        "ids": ["LAL"],
        "summary": False,
        "per_team": True,
    }

"""The production pipeline's real message bodies (production_corpus.py, each cited) through
explain's code path and through ``serve`` (plain POST and Pub/Sub push envelope): every
completion is accepted and runs at least what production's own trigger tables run; an
incremental Phase 3 completion is entity-scoped; failed / no_data route nothing with their
reason; triggers are rejected with a reason, never accepted and dropped."""

from __future__ import annotations

import asyncio
import base64
import json
import re
from collections.abc import AsyncIterator, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from production_corpus import CASES, DAY, Case

from scoperouter.errors import EventError
from scoperouter.messages.body_ids import is_body_id
from scoperouter.messages.models import Event, Trigger
from scoperouter.messages.normalize import normalize_event
from scoperouter.messages.push import message_key
from scoperouter.processor_registry.compiled import CompiledRegistry
from scoperouter.processor_registry.loader import LoadedConfig, load_config
from scoperouter.router.decisions import Decision
from scoperouter.router.planner import plan
from scoperouter.runtime.http import IngressApp
from scoperouter.runtime.router import Router, RouterOptions
from scoperouter.runtime.store import Store

REPO = Path(__file__).resolve().parents[2]
AS_OF = date.fromisoformat(DAY)
COMPLETIONS = [c for c in CASES if c.completion]
TRIGGERS = [c for c in CASES if not c.completion]
H11C = "routes.yaml on main lacks this input edge production's trigger table has; issue 11 item 4 (h11c) adds it"


@pytest.fixture(scope="module")
def nba() -> LoadedConfig:
    return load_config(REPO / "routes.yaml")


def decide(cfg: LoadedConfig, body: dict[str, Any]) -> tuple[Event, tuple[Decision, ...]]:
    """What ``scoperouter explain --as-of DAY`` computes for one body."""
    ev = normalize_event(body, cfg.registry)
    return ev, plan(cfg.registry, cfg.relations, ev, AS_OF)


def runs_of(decisions: Sequence[Decision]) -> set[str]:
    return {d.processor for d in decisions if d.action == "run"}


def downstream(registry: CompiledRegistry, names: set[str]) -> set[str]:
    out, todo = set(names), list(names)
    while todo:
        for nxt in registry.downstream_of.get(todo.pop(), ()):
            if nxt not in out:
                out.add(nxt)
                todo.append(nxt)
    return out


def test_corpus_is_large_cited_and_unique() -> None:
    """At least 30 bodies, each citing a production file:line, with unique names."""
    assert len(CASES) >= 30 and len(COMPLETIONS) >= 25 and len(TRIGGERS) >= 5
    assert len({c.name for c in CASES}) == len(CASES)
    assert all(re.search(r"\.(py|sh):\d+", c.cite) for c in CASES), [c.name for c in CASES]


@pytest.mark.parametrize("case", COMPLETIONS, ids=[c.name for c in COMPLETIONS])
def test_completion_is_accepted_with_its_source(nba: LoadedConfig, case: Case) -> None:
    """Every completion normalises (never rejected) to the source production wrote."""
    ev, decisions = decide(nba, case.body)
    assert ev.source == case.source
    assert len(decisions) == len(nba.registry.processors)
    if case.name.startswith("trig_"):
        assert ev.shape == "orchestrator_trigger"
    elif "processor_name" in case.body:
        assert ev.shape == "unified"


@pytest.mark.parametrize("case", COMPLETIONS, ids=[c.name for c in COMPLETIONS])
def test_runs_what_production_runs(nba: LoadedConfig, case: Case) -> None:
    """Runs at least production's trigger-table processors (minus the edges awaiting h11c),
    and reaches the fan-in targets directly or downstream of what it runs."""
    _ev, decisions = decide(nba, case.body)
    runs = runs_of(decisions)
    assert case.direct - case.h11c <= runs, sorted(case.direct - case.h11c - runs)
    assert case.reaches <= downstream(nba.registry, runs), sorted(case.reaches)
    if case.skip_reason is not None:  # every reader of the source skips with this reason
        readers = {ci.processor for ci in nba.registry.by_source.get(case.source or "", ())}
        assert not runs
        assert {d.reason for d in decisions if d.processor in readers} <= {case.skip_reason}
        others = {d.reason for d in decisions if d.processor not in readers}
        assert others <= {
            "unknown_source" if case.skip_reason == "unknown_source" else "not_an_input"
        }
        assert case.skip_reason in {d.reason for d in decisions}
    elif case.direct - case.h11c or case.reaches:
        assert runs


WAITING = [c for c in COMPLETIONS if c.h11c]
# edges of production's trigger tables the first registry lacked; the last two
# (nbac_scoreboard_v2 -> upcoming_team_game_context, main_analytics_service.py:754, and
# team_offense_game_summary -> player_shot_zone_analysis, main_precompute_service.py:79)
# are trigger-only inputs in routes.yaml: production runs them, their SQL never reads them.


@pytest.mark.parametrize("case", WAITING, ids=[c.name for c in WAITING])
def test_runs_edges_waiting_on_the_real_dag(nba: LoadedConfig, case: Case) -> None:
    """The trigger-table processors production runs and the first registry lacked are run now."""
    _ev, decisions = decide(nba, case.body)
    assert case.h11c <= runs_of(decisions)


ENTITY = [c for c in COMPLETIONS if c.entity_scope]


@pytest.mark.parametrize("case", ENTITY, ids=[c.name for c in ENTITY])
def test_incremental_completion_is_entity_scoped(nba: LoadedConfig, case: Case) -> None:
    """A flat (or typed) entities_changed list gives entity scope to the consumers of that
    entity type, with at least the ids production sent."""
    _ev, decisions = decide(nba, case.body)
    by = {d.processor: d for d in decisions}
    for proc, ids in case.entity_scope.items():
        d = by[proc]
        assert (d.action, d.scope, d.reason) == ("run", "entities", "entity_scope"), d
        assert set(ids) <= set(d.entity_ids or ())


def test_full_run_is_date_scope(nba: LoadedConfig) -> None:
    """A Phase 3 full run (entities_changed: []) carries no entity information: date scope."""
    [case] = [c for c in CASES if c.name == "p3_pgs_full_run"]
    ev, decisions = decide(nba, case.body)
    assert ev.affected_entities is None
    assert {d.reason for d in decisions if d.action == "run"} <= {
        "no_entities_in_event",
        "date_granularity",
    }


@pytest.mark.parametrize(
    "extra", [{}, {"processor_name": None}], ids=["as_sent", "null_processor_name"]
)
def test_orchestrator_combined_entities_never_narrow(
    nba: LoadedConfig, extra: dict[str, Any]
) -> None:
    """The Phase 3->4 orchestrator's ids (every incremental processor's, united) route the
    full date; a null processor_name is absent (SPEC 3)."""
    [case] = [c for c in CASES if c.name == "trig_p3to4_player_incremental"]
    assert "processor_name" not in case.body
    ev, decisions = decide(nba, {**case.body, **extra})
    assert ev.affected_entities is None
    runs = [d for d in decisions if d.action == "run"]
    assert runs and all(d.scope == "date" for d in runs)


def test_untyped_flat_list_routes_at_date_scope(nba: LoadedConfig) -> None:
    """A flat list from a source whose entity type the registry cannot tell routes the full
    date with unmapped_entity_type, never a rejection."""
    [case] = [c for c in CASES if c.name == "p4_daily_cache"]
    body = {**case.body, "metadata": {"entities_changed": ["lebronjames"]}}
    reg = nba.registry
    assert reg.entity_type_of_source("nba_precompute.player_daily_cache") == "player"
    ev, decisions = decide(nba, {**body, "output_table": "league_rankings"})
    assert ev.source == "nba_precompute.league_rankings"  # published by a date processor
    assert reg.entity_type_of_source(ev.source) is None
    assert ev.affected_entities == {"(untyped)": ("lebronjames",)}
    assert runs_of(decisions) == set()  # nothing reads league_rankings
    ev2 = normalize_event({**body, "output_table": "player_daily_cache"}, reg)
    assert ev2.affected_entities == {"player": ("lebronjames",)}


@pytest.mark.parametrize("case", TRIGGERS, ids=[c.name for c in TRIGGERS])
def test_trigger_is_rejected_with_a_reason(nba: LoadedConfig, case: Case) -> None:
    """An orchestrator's trigger that names no completed table is rejected, with a reason."""
    with pytest.raises(EventError) as info:
        decide(nba, case.body)
    assert info.value.reason == case.reject
    assert info.value.detail


# ---------------------------------------------------------------------- through serve
class RecordingLog:
    """An execution log that keeps (event, decisions) in memory."""

    def __init__(self) -> None:
        self.decided: list[tuple[Event, tuple[Decision, ...]]] = []

    def record_decisions(
        self, event: Event, decisions: Sequence[Decision], decided_at: datetime, **_: Any
    ) -> list[str]:
        self.decided.append((event, tuple(decisions)))
        return []

    def record_dispatch(self, trigger: Trigger, **_: Any) -> None:
        return None

    def record_completion(self, *_: Any, **__: Any) -> None:
        return None

    def flush(self) -> None:
        return None

    def close(self) -> None:
        return None


class NullSink:
    async def send(self, trigger: Trigger, *, message_id: str, body: bytes | None = None) -> None:
        return None

    async def close(self) -> None:
        return None


@pytest.fixture
async def serve(
    tmp_path: Path, nba: LoadedConfig
) -> AsyncIterator[tuple[TestClient[Any, Any], Router, RecordingLog]]:
    """The ingress app of ``serve`` over a router with the repository's registry."""
    log = RecordingLog()
    sink = NullSink()
    router = Router(
        nba.registry,
        nba.relations,
        Store(tmp_path / "state.sqlite3", sync="normal"),
        {p: sink for p in nba.registry.processors},
        options=RouterOptions(as_of=AS_OF),
        log=log,  # type: ignore[arg-type]
    )
    await router.start()
    client: TestClient[Any, Any] = TestClient(TestServer(IngressApp(router).app))
    await client.start_server()
    try:
        yield client, router, log
    finally:
        await client.close()
        await router.stop(timeout=1.0)
        router.store._db.close()


def envelope(body: dict[str, Any], mid: str) -> dict[str, Any]:
    data = base64.b64encode(json.dumps(body).encode()).decode()
    return {"message": {"data": data, "messageId": mid, "attributes": {}}, "subscription": "s"}


@pytest.mark.parametrize("push", [False, True], ids=["plain", "push"])
async def test_serve_gives_explains_decisions(
    serve: tuple[TestClient[Any, Any], Router, RecordingLog], nba: LoadedConfig, push: bool
) -> None:
    """Every body through serve: completions get exactly explain's decisions; triggers are
    refused (400, or dead-lettered and acked for a push) with explain's reason."""
    client, router, log = serve
    for i, case in enumerate(CASES):
        mid = f"m-{i}"
        payload = envelope(case.body, mid) if push else case.body
        async with client.post("/events", json=payload) as r:
            answer = await r.json()
        if case.completion:
            assert (r.status, answer["status"]) == (200, "accepted"), (case.name, answer)
            # a push's message id is known with its subscription (messages/push.message_key)
            key = message_key(mid, "s") if push else None
            want = normalize_event(case.body, nba.registry, message_id=key)
            if is_body_id(want.event_id):  # no id at all: each acceptance is its own event
                assert answer["event_id"].startswith(want.event_id + "~")
            else:
                assert answer["event_id"] == want.event_id
        elif push:
            assert (r.status, answer["status"], answer["error"]) == (
                200,
                "dead_lettered",
                case.reject,
            ), case.name
        else:
            assert (r.status, answer["error"]) == (400, case.reject), case.name
    for _ in range(1000):  # decisions are logged on the log thread after the answer
        if len(log.decided) >= len(COMPLETIONS):
            break
        await asyncio.sleep(0.01)
    # an id-less message's id as sent (its acceptance adds "~<ms>": body_ids)
    got = {ev.source + "|" + ev.event_id.partition("~")[0]: ds for ev, ds in log.decided}
    assert len(got) == len(COMPLETIONS)
    for i, case in enumerate(COMPLETIONS):
        mid = f"m-{CASES.index(case)}"
        ev, want = decide(nba, case.body)
        if push:
            ev = normalize_event(case.body, nba.registry, message_id=message_key(mid, "s"))
        assert got[ev.source + "|" + ev.event_id] == want, (i, case.name)
    unknown = [c.source for c in COMPLETIONS if c.skip_reason == "unknown_source"]
    async with client.get("/metrics") as r:
        text = await r.text()
    for source in unknown:  # counted per source on /metrics
        assert router.metrics.unknown_source_events.labels(source)._value.get() == 1
        assert f'scoperouter_unknown_source_events_total{{source="{source}"}} 1.0' in text

"""The mappings of docs/targets.md, run as written: each is installed on its processors in a
copy of routes.yaml, a completion event goes through the daemon (``serve``, in-process) to
a stub that enforces the production service's contract (contract_stubs.py), and the stub
answers 2xx; a wrong mapping gets 4xx and its trigger is dead-lettered."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from contract_stubs import ANALYTICS_KEY, COORDINATOR_KEY, ServiceStubs
from runtime_support import GAME_DAY, load, write_registry

from scoperouter.runtime.daemon import Daemon, DaemonSettings

DOC = Path(__file__).resolve().parents[2] / "docs" / "targets.md"
MARK = re.compile(r"<!-- target-mapping: (\w+) -->\s*```yaml\n(.*?)```", re.S)
MAPPINGS: dict[str, dict[str, Any]] = {
    name: yaml.safe_load(body)["target"] for name, body in MARK.findall(DOC.read_text())
}
ANALYTICS = ("player_game_summary", "team_offense_game_summary", "team_defense_game_summary",
             "upcoming_player_game_context", "upcoming_team_game_context")  # fmt: skip
PRECOMPUTE = ("team_defense_zone_analysis", "player_shot_zone_analysis", "player_daily_cache",
              "player_composite_factors", "ml_feature_store")  # fmt: skip
DAY = GAME_DAY.isoformat()


@pytest.fixture
async def stubs() -> AsyncIterator[ServiceStubs]:
    s = ServiceStubs()
    await s.server.start_server()
    yield s
    await s.server.close()


def env_for(stubs: ServiceStubs) -> dict[str, str]:
    return {
        "ANALYTICS_URL": stubs.url(),
        "ANALYTICS_API_KEY": ANALYTICS_KEY,
        "PRECOMPUTE_URL": stubs.url(),
        "COORDINATOR_URL": stubs.url(),
        "COORDINATOR_API_KEY": COORDINATOR_KEY,
    }


async def route(
    tmp: Path, stubs: ServiceStubs, targets: dict[str, dict[str, Any]], events: list[dict[str, Any]]
) -> list[str]:
    """Run ``events`` through a daemon whose processors use ``targets``; wait until idle;
    the dead-lettered triggers (reason: detail)."""
    cfg = load(write_registry(tmp, targets=targets))
    settings = DaemonSettings(
        state_dir=tmp / "state", port=0, as_of=GAME_DAY, sync="normal", env=env_for(stubs),
        router_options={"backoff_base_s": 0.01, "backoff_cap_s": 0.05},
    )  # fmt: skip
    d = Daemon(cfg.registry, cfg.relations, settings)
    await d.start()
    try:
        async with aiohttp.ClientSession() as s:
            for e in events:
                async with s.post(f"http://127.0.0.1:{d.port}/events", json=e) as r:
                    assert r.status == 200, await r.text()
        assert await d.router.idle(timeout=30)
        await d.router._flush_marks()
        st = d.state_store  # serve's default: the per-window SQLite store
        assert st is not None
        assert await d.router._in_state(st.pending_count) == 0
        letters = await d.router._in_state(st.dead_letters)
        return [f"{x.reason}: {x.detail}" for x in letters if x.kind == "trigger"]
    finally:
        await d.stop()


def test_docs_ship_the_three_mappings() -> None:
    """docs/targets.md carries a mapping for each production entry point."""
    assert sorted(MAPPINGS) == [
        "analytics_process_date_range",
        "coordinator_start",
        "precompute_process_date",
    ]


async def test_analytics_process_date_range_gets_entities(
    tmp_path: Path, stubs: ServiceStubs
) -> None:
    """An entity-scoped trigger reaches /process-date-range as production's plain JSON: the
    class name, the dates, backfill_mode false and the ids as entities_changed; 200."""
    event = {"event_id": "e-1", "source": "nba_raw.nbac_gamebook_player_stats", "game_date": DAY,
             "affected_entities": {"players": ["lalplayer01", "lalplayer02"]}}  # fmt: skip
    dead = await route(
        tmp_path, stubs, {"player_game_summary": MAPPINGS["analytics_process_date_range"]}, [event]
    )
    assert stubs.rejected == [] and dead == []
    (call,) = [c for c in stubs.accepted if c.service == "analytics"]
    assert call.opts == {
        "start_date": DAY, "end_date": DAY, "triggered_by": "manual", "backfill_mode": False,
        "skip_downstream_trigger": False, "dataset_prefix": "",
        "processors": ["PlayerGameSummaryProcessor"], "entities_changed": ["lalplayer01", "lalplayer02"],
    }  # fmt: skip
    assert call.headers["X-API-Key"] == ANALYTICS_KEY


async def test_analytics_backfill_sets_backfill_mode(tmp_path: Path, stubs: ServiceStubs) -> None:
    """A backfill event (start/end, no game_date) gives one request per date with
    backfill_mode true and no entities_changed (date scope), for every analytics target."""
    event = {"event_id": "b-1", "source": "nba_raw.nbac_gamebook_player_stats",
             "start_date": "2025-11-17", "end_date": "2025-11-18"}  # fmt: skip
    targets = {p: MAPPINGS["analytics_process_date_range"] for p in ANALYTICS}
    dead = await route(tmp_path, stubs, targets, [event])
    assert stubs.rejected == [] and dead == []
    calls = [c.opts for c in stubs.accepted if c.service == "analytics"]
    assert calls and all(c["backfill_mode"] and c["skip_downstream_trigger"] for c in calls)
    assert all("entities_changed" not in c and c["start_date"] == c["end_date"] for c in calls)
    runs = {(c["processors"][0], c["start_date"]) for c in calls}
    assert ("PlayerGameSummaryProcessor", "2025-11-17") in runs
    assert ("PlayerGameSummaryProcessor", "2025-11-18") in runs


async def test_precompute_process_date(tmp_path: Path, stubs: ServiceStubs) -> None:
    """A Phase 3 completion reaches the Phase 4 processors through /process-date with
    analysis_date, one class name each, the trigger's correlation id; all 200."""
    event = {"event_id": "e-3", "source": "nba_analytics.player_game_summary", "game_date": DAY,
             "affected_entities": {"players": ["bosplayer03"]}, "correlation_id": "c-3"}  # fmt: skip
    targets = {p: MAPPINGS["precompute_process_date"] for p in PRECOMPUTE}
    dead = await route(tmp_path, stubs, targets, [event])
    assert stubs.rejected == [] and dead == []
    calls = [c.opts for c in stubs.accepted if c.service == "precompute"]
    assert calls, "no Phase 4 processor reads player_game_summary?"
    for c in calls:
        assert c["analysis_date"] == DAY and c["correlation_id"] == "c-3"
        assert c["trigger_source"] == "scoperouter" and c["triggered_by"].startswith("scoperouter:")
        assert len(c["processors"]) == 1 and c["backfill_mode"] is False
    scoped = {c["processors"][0]: c["entities_changed"] for c in calls if "entities_changed" in c}
    assert scoped and all("bosplayer03" in ids for ids in scoped.values())
    # the feature store reads his teammates' box scores too (routes.yaml also_map): they
    # come along; every other scoped processor gets the one player
    teammates = scoped.pop("MLFeatureStoreProcessor")
    assert len(teammates) > 1 and all(ids == ["bosplayer03"] for ids in scoped.values())


async def test_coordinator_start(tmp_path: Path, stubs: ServiceStubs) -> None:
    """A feature-store completion starts the coordinator with a top-level game_date; 202."""
    event = {"event_id": "e-4", "source": "nba_predictions.ml_feature_store_v2", "game_date": DAY,
             "affected_entities": {"players": ["atlplayer00"]}, "correlation_id": "c-4"}  # fmt: skip
    dead = await route(
        tmp_path, stubs, {"prediction_coordinator": MAPPINGS["coordinator_start"]}, [event]
    )
    assert stubs.rejected == [] and dead == []
    (call,) = [c for c in stubs.accepted if c.service == "coordinator"]
    assert call.opts == {"game_date": DAY, "correlation_id": "c-4", "parent_processor": None}


def _enveloped(target: dict[str, Any], *, wrap: bool = True) -> dict[str, Any]:
    """The same target sending the SPEC envelope (or the bare trigger), headers kept."""
    return {**target, "mapping": {**target["mapping"], "envelope": wrap, "body": "$"}}


def _renamed(target: dict[str, Any], old: str, new: str) -> dict[str, Any]:
    body = dict(target["mapping"]["body"])
    body[new] = body.pop(old)
    return {**target, "mapping": {**target["mapping"], "body": body}}


WRONG = [
    # the SPEC envelope (with the API key): no top-level start_date/end_date
    ("analytics", "player_game_summary", _enveloped(MAPPINGS["analytics_process_date_range"]), 400, 'start_date and end_date required'),
    # the bare trigger (with the API key): start/end dates but no class names
    ("analytics", "player_game_summary", _enveloped(MAPPINGS["analytics_process_date_range"], wrap=False), 400, "keys the service never reads: ['caused_by'"),
    # the ids under a key the service never reads (production would run the full date)
    ("analytics", "player_game_summary", _renamed(MAPPINGS["analytics_process_date_range"], "entities_changed", "entity_ids"), 400, "keys the service never reads: ['entity_ids']"),
    # no API key
    ("analytics", "player_game_summary", {**MAPPINGS["analytics_process_date_range"], "mapping": {"body": MAPPINGS["analytics_process_date_range"]["mapping"]["body"]}}, 401, 'Unauthorized'),
    # game_date where analysis_date is expected
    ("precompute", "player_shot_zone_analysis", _renamed(MAPPINGS["precompute_process_date"], "analysis_date", "game_date"), 400, 'analysis_date required'),
    # the SPEC envelope (with the API key): production's /start would predict for *today*
    ("coordinator", "prediction_coordinator", _enveloped(MAPPINGS["coordinator_start"]), 400, 'no top-level game_date'),
]  # fmt: skip


@pytest.mark.parametrize(
    ("service", "processor", "target", "status", "why"),
    WRONG,
    ids=[f"{w[0]}-{i}" for i, w in enumerate(WRONG)],
)
async def test_wrong_mapping_is_refused_and_dead_lettered(
    tmp_path: Path,
    stubs: ServiceStubs,
    service: str,
    processor: str,
    target: dict[str, Any],
    status: int,
    why: str,
) -> None:
    """Teeth: a mapping that breaks the contract gets 4xx from the stub, is not retried and
    its trigger is dead-lettered (the stubs are not accept-all)."""
    source = {"analytics": "nba_raw.nbac_gamebook_player_stats",
              "precompute": "nba_analytics.player_game_summary",
              "coordinator": "nba_predictions.ml_feature_store_v2"}[service]  # fmt: skip
    event = {"event_id": "w-1", "source": source, "game_date": DAY,
             "affected_entities": {"players": ["lalplayer01"]}}  # fmt: skip
    dead = await route(tmp_path, stubs, {processor: target}, [event])
    assert [(s[0], s[1]) for s in stubs.rejected] == [(service, status)]
    assert why in stubs.rejected[0][2]
    assert not [c for c in stubs.accepted if c.service == service]
    assert len(dead) == 1 and f"HTTP {status}" in dead[0]

"""The state thread reads only a source's candidate decisions (router/planner.py
``runs`` and ``reason_counts``): the same run decisions and the same counts by reason as
reading every decision, over a game day's events, unknown and skipped ones included."""

from __future__ import annotations

from collections import Counter
from datetime import date
from typing import Any

import pytest
from runtime_support import GAME_DAY, game_day_stream

from scoperouter.errors import EventError
from scoperouter.messages.models import Event
from scoperouter.processor_registry.loader import LoadedConfig
from scoperouter.router.decisions import Decision
from scoperouter.router.planner import planner_for
from scoperouter.runtime.batch_counts import decision_reasons
from scoperouter.runtime.intake import parse_inbound
from scoperouter.runtime.router import Inbound

EXTRA: list[dict[str, Any]] = [
    {"event_id": "u-1", "source": "nowhere.table", "game_date": "2025-11-19"},  # unknown
    {"event_id": "f-1", "source": "nba_raw.nbac_gamebook_player_stats",
     "game_date": "2025-11-19", "status": "failed"},
    {"event_id": "s-1", "source": "nba_raw.nbac_gamebook_player_stats",
     "game_date": "2025-11-19", "skip_downstream": True},
]  # fmt: skip


def planned(cfg: LoadedConfig, objs: list[dict[str, Any]], as_of: date) -> list[tuple[Event, Any]]:
    reg, planner = cfg.registry, planner_for(cfg.registry)
    out: list[tuple[Event, tuple[Decision, ...]]] = []
    for obj in objs:
        ev = parse_inbound(Inbound("test", obj=obj), reg)
        if not isinstance(ev, EventError):
            out.append((ev, planner.plan(cfg.relations, ev, as_of)))
    return out


@pytest.mark.parametrize("as_of", [GAME_DAY, date(2025, 11, 21)])
def test_candidates_only_give_every_decisions_runs_and_counts(
    zero_cfg: LoadedConfig, as_of: date
) -> None:
    """runs() equals the run decisions of the whole tuple, reason_counts() the Counter of
    every decision's reason (whole batch and per event)."""
    planner = planner_for(zero_cfg.registry)
    items = planned(zero_cfg, game_day_stream(400) + EXTRA, as_of)
    sources = {ev.source for ev, _ in items}
    assert "nowhere.table" in sources and len(sources) > 3
    for ev, decisions in items:
        assert planner.runs(ev, decisions) == [d for d in decisions if d.action == "run"]
        assert planner.reason_counts([(ev, decisions)]) == Counter(d.reason for d in decisions)
    decided = [(ev, decisions, None, "{}") for ev, decisions in items]
    assert planner.reason_counts(decided) == decision_reasons(decided)
    assert {"not_an_input", "unknown_source", "upstream_failed"} <= set(
        planner.reason_counts(decided)
    )

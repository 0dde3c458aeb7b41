"""Planner rules an outside mutation run found untested (issue 13, acceptance 6)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from planner_support import NBA_ROWS, D, event, registry_from, relations_for

from scoperouter.router.planner import Planner

BASE: dict[str, Any] = {
    "version": 1,
    "entities": {"player": {}, "team": {}, "game": {}},
    "relations": {
        "team_players": {"from": "team", "to": "player"},
        "game_teams": {"from": "game", "to": "team"},
        "player_games": {"from": "player", "to": "game"},
    },
    "relation_data": {"csv": {"dir": "unused"}},
}


def _registry(max_entities: int = 100, lookback: dict[str, Any] | None = None) -> Any:
    proc: dict[str, Any] = {
        "phase": 3,
        "granularity": "player",
        "max_entities": max_entities,
        "inputs": [{"source": "raw.a", "map": {"game": ["game_teams", "team_players"]}}],
    }
    if lookback is not None:
        proc["lookback"] = lookback
    return registry_from({**BASE, "processors": {"p": proc}})


@pytest.mark.parametrize("lookback", [None, {"games": 1, "via": "player_games"}])
def test_intermediate_hop_reaching_nothing_forces_date_scope(
    lookback: dict[str, Any] | None,
) -> None:
    """A game with no team rows (first hop of two) makes the decision full date, never drops it."""
    reg = _registry(lookback=lookback)
    rel = relations_for(reg, NBA_ROWS)
    ev = event(reg, source="raw.a", affected_entities={"games": ["G1", "G9"]})
    [d] = Planner(reg).plan(rel, ev, D)
    assert (d.scope, d.reason) == ("date", "empty_mapping")
    ok = event(reg, source="raw.a", affected_entities={"games": ["G1"]})
    [d] = Planner(reg).plan(rel, ok, D)
    assert d.reason == "entity_scope" and len(d.entity_ids or ()) == 4


def test_memo_is_per_event_key() -> None:
    """Two keys of one type (team, teams) on one path each map their own ids."""
    reg = registry_from(
        {
            **BASE,
            "processors": {
                "p": {"phase": 3, "granularity": "player", "inputs": [{"source": "raw.a"}]},
                "q": {"phase": 3, "granularity": "player", "inputs": [{"source": "raw.a"}]},
            },
        }
    )
    rel = relations_for(reg, NBA_ROWS)
    ev = event(reg, source="raw.a", affected_entities={"team": ["LAL"], "teams": ["BOS"]})
    for d in Planner(reg).plan(rel, ev, D):
        assert d.entity_ids == ("anthonydavis", "jaylenbrown", "jaysontatum", "lebronjames")


def test_games_lookback_keeps_every_mapped_id_past_the_threshold() -> None:
    """Past max_entities, a games lookback still covers the later games of every mapped id
    (ids are not truncated at the threshold when the lookback needs them)."""
    reg = registry_from(
        {
            **BASE,
            "processors": {
                "p": {
                    "phase": 4,
                    "granularity": "player",
                    "max_entities": 2,
                    "lookback": {"games": 1, "via": "player_games"},
                    "inputs": [{"source": "raw.a"}],
                }
            },
        }
    )
    day = [D + timedelta(days=k) for k in range(6)]
    rows = {
        "team_players": [
            (None, "T1", "p1"),
            (None, "T1", "p2"),
            (None, "T1", "p3"),
            (None, "T2", "p4"),
        ],
        # only p1 plays on D; p4's next game is the only one on D+4
        "player_games": [
            (day[0], "p1", "g0"),
            (day[1], "p1", "g1"),
            (day[2], "p2", "g2"),
            (day[3], "p3", "g3"),
            (day[4], "p4", "g4"),
            (day[5], "p1", "g5"),
        ],
    }
    rel = relations_for(reg, rows)
    ev = event(reg, source="raw.a", affected_entities={"teams": ["T1", "T2"]})
    [d] = Planner(reg).plan(rel, ev, day[5])
    assert (d.scope, d.reason) == ("date", "fallback_threshold")
    assert d.dates == tuple(day[:5])

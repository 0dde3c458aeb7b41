"""Planner API contracts: compiled once per registry, protocol-only relation access, replay core."""

from __future__ import annotations

import gc
import io
import json
from datetime import date, timedelta

from planner_support import NBA_ROWS, ROUTES, D, event, registry_from, relations_for

from scoperouter.commands.replay import replay_events
from scoperouter.processor_registry.loader import load_config
from scoperouter.processor_registry.relations import InMemoryRelations
from scoperouter.router import planner as planner_mod
from scoperouter.router.planner import plan, planner_for

DOC = {
    "version": 1,
    "entities": {"player": {}},
    "processors": {
        "p": {"phase": 3, "granularity": "player", "inputs": [{"source": "s.a"}]},
        "q": {"phase": 3, "granularity": "player", "inputs": [{"source": "s.b"}]},
    },
}


def test_compiled_once_per_registry_and_released() -> None:
    """planner_for reuses the compiled planner of a live registry and forgets dead ones."""
    reg = registry_from(DOC)
    assert planner_for(reg) is planner_for(reg)
    other = registry_from(DOC)
    assert planner_for(other) is not planner_for(reg)
    entry = planner_mod._CACHE[id(other)]
    del other
    gc.collect()
    # (not a count of the cache: collecting may also evict other tests' dead registries)
    assert all(v is not entry for v in planner_mod._CACHE.values())
    assert all(ref() is not None for ref, _ in planner_mod._CACHE.values())
    assert planner_for(reg) is planner_for(reg)


def test_not_an_input_decisions_are_prebuilt() -> None:
    """Non-candidates get the same prebuilt skip decision object on every event."""
    reg = registry_from(DOC)
    rel = relations_for(reg, {})
    a = plan(reg, rel, event(reg, source="s.a", affected_entities={"players": ["x"]}), D)
    b = plan(reg, rel, event(reg, source="s.a", affected_entities={"players": ["y"]}), D)
    assert a[1].reason == "not_an_input" and a[1] is b[1]
    assert a[0].entity_ids == ("x",) and b[0].entity_ids == ("y",)


class ProtocolOnly:
    """A RelationStore with only the protocol's methods, delegating to InMemoryRelations."""

    def __init__(self, inner: InMemoryRelations) -> None:
        self._inner = inner
        self.calls = 0

    def targets(self, relation: str, on: date, entity_id: str) -> frozenset[str]:
        self.calls += 1
        return self._inner.targets(relation, on, entity_id)

    def dates_of(self, relation: str, entity_id: str) -> tuple[date, ...]:
        self.calls += 1
        return self._inner.dates_of(relation, entity_id)

    def sources_on(self, relation: str, on: date) -> frozenset[str]:
        self.calls += 1
        return self._inner.sources_on(relation, on)

    def undated_sources(self, relation: str) -> frozenset[str]:
        self.calls += 1
        return self._inner.undated_sources(relation)

    def dated_span(self, relation: str) -> tuple[date, date] | None:
        self.calls += 1
        return self._inner.dated_span(relation)

    def holes(self, relation: str) -> frozenset[date]:
        self.calls += 1
        return self._inner.holes(relation)

    def universe(self, entity_type: str, on: date) -> int | None:
        return self._inner.universe(entity_type, on)


def test_planner_uses_only_the_protocol() -> None:
    """Any RelationStore works: the planner calls only the protocol's lookups."""
    reg = load_config(ROUTES, with_relations=False).registry
    inner = relations_for(reg, NBA_ROWS)
    store = ProtocolOnly(inner)
    ev = event(
        reg,
        source="nba_analytics.player_game_summary",
        affected_entities={"players": ["lebronjames"]},
    )
    assert plan(reg, store, ev, D + timedelta(days=30)) == plan(
        reg, inner, ev, D + timedelta(days=30)
    )
    assert store.calls > 0


def test_replay_core_clock() -> None:
    """Events without produced_at happen at the current virtual clock; leftover windows fire at their deadline."""
    reg = registry_from({**DOC, "defaults": {"window": {"quiet": "10s", "max_wait": "1m"}}})
    lines = [
        json.dumps(
            {
                "event_id": "e1",
                "source": "s.a",
                "game_date": "2025-11-19",
                "affected_entities": {"players": ["x"]},
            }
        ).encode(),
        json.dumps(
            {
                "event_id": "e2",
                "source": "s.a",
                "game_date": "2025-11-19",
                "affected_entities": {"players": ["y"]},
                "produced_at": "2025-11-19T10:00:00Z",
            }
        ).encode(),
        b"",
        b'{"source": "s.a"}',
        json.dumps(
            {
                "event_id": "e3",
                "source": "s.b",
                "game_date": "2025-11-19",
                "produced_at": "2025-11-19T09:00:00Z",
            }
        ).encode(),
    ]
    err = io.StringIO()
    result = replay_events(reg, relations_for(reg, {}), lines, D, errors=err)
    assert (result.events, result.rejected) == (3, 1)
    assert err.getvalue().startswith("line 4: rejected: missing_date")
    got = [
        (t.processor, t.entity_ids, t.caused_by, t.fired_at.isoformat() if t.fired_at else None)
        for t in result.triggers
    ]
    assert got == [
        ("p", ("x", "y"), ("e1", "e2"), "2025-11-19T10:00:10+00:00"),
        ("q", None, ("e3",), "2025-11-19T10:00:10+00:00"),
    ]

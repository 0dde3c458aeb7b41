"""Shared builders for the planner tests: small registries from dicts, in-memory relations."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from pathlib import Path
from typing import Any

from scoperouter.messages.models import Event
from scoperouter.messages.normalize import normalize_event
from scoperouter.processor_registry.compiled import CompiledRegistry, compile_registry
from scoperouter.processor_registry.models import RoutesSpec
from scoperouter.processor_registry.relations import InMemoryRelations, Row

D = date(2025, 11, 19)
ROUTES = Path(__file__).resolve().parents[2] / "routes.yaml"


def registry_from(doc: Mapping[str, Any]) -> CompiledRegistry:
    """Validate and compile a registry document given as a dict."""
    return compile_registry(RoutesSpec.model_validate(doc))


def relations_for(
    registry: CompiledRegistry, rows: Mapping[str, Iterable[Row]]
) -> InMemoryRelations:
    """InMemoryRelations with the registry's inverse relations and types wired in."""
    rels = registry.relations
    return InMemoryRelations(
        {n: list(rows.get(n, ())) for n, r in rels.items() if not r.inverse},
        inverses={n: r.base for n, r in rels.items() if r.inverse},
        types={n: (r.from_type, r.to_type) for n, r in rels.items()},
        every_day={n for n, r in rels.items() if r.every_day and not r.inverse},
    )


def event(registry: CompiledRegistry, **fields: Any) -> Event:
    """A normalised event; ``game_date`` defaults to D and ``event_id`` to e-1."""
    raw: dict[str, Any] = {"event_id": "e-1"}
    if "start_date" not in fields:
        raw["game_date"] = D.isoformat()
    raw.update(fields)
    return normalize_event(raw, registry)


# The entity types and relations of NBA_ROWS, for a registry literal (**NBA_RELATIONS).
NBA_RELATIONS: dict[str, Any] = {
    "entities": {"player": {}, "team": {}, "game": {}},
    "relations": {
        "team_players": {"from": "team", "to": "player"},
        "player_team": {"inverse_of": "team_players"},
        "game_teams": {"from": "game", "to": "team"},
        "player_games": {"from": "player", "to": "game"},
    },
}

# Two games on D: G1 = LAL v BOS, G2 = GSW v PHX. Two players per team; PHX has no roster
# rows (missing relation data). Later games for lookback on D+2, D+4, D+6.
NBA_ROWS: dict[str, list[Row]] = {
    "team_players": [
        (None, "LAL", "lebronjames"),
        (None, "LAL", "anthonydavis"),
        (None, "BOS", "jaysontatum"),
        (None, "BOS", "jaylenbrown"),
        (None, "GSW", "stephencurry"),
        (None, "GSW", "draymondgreen"),
    ],
    "game_teams": [
        (D, "G1", "LAL"),
        (D, "G1", "BOS"),
        (D, "G2", "GSW"),
        (D, "G2", "PHX"),
    ],
    "team_opponent": [
        (D, "LAL", "BOS"),
        (D, "BOS", "LAL"),
        (D, "GSW", "PHX"),
        (D, "PHX", "GSW"),
    ],
    "player_games": [
        (D, "lebronjames", "G1"),
        (D, "anthonydavis", "G1"),
        (D, "jaysontatum", "G1"),
        (D, "jaylenbrown", "G1"),
        (D, "stephencurry", "G2"),
        (D, "draymondgreen", "G2"),
    ],
}

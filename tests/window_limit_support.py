"""One-processor registries for the window-threshold tests (tests/planner, tests/state,
tests/runtime): processor ``p`` (player granularity unless given) reading ``raw.a``, its
``max_entities`` given, and its entity-scope run decisions."""

from __future__ import annotations

from datetime import date

from scoperouter.processor_registry.compiled import CompiledRegistry, compile_registry
from scoperouter.processor_registry.models import RoutesSpec
from scoperouter.router.decisions import Decision


def one_processor_registry(max_entities: int, granularity: str = "player") -> CompiledRegistry:
    """Processor ``p`` (``granularity``, reads ``raw.a``) with threshold ``max_entities``."""
    return compile_registry(
        RoutesSpec.model_validate(
            {
                "version": 1,
                "entities": {"player": {}, "team": {}},
                "defaults": {"max_entities": 100, "window": {"quiet": "10s", "max_wait": "60s"}},
                "processors": {
                    "p": {
                        "phase": 3,
                        "granularity": granularity,
                        "inputs": [{"source": "raw.a"}],
                        "max_entities": max_entities,
                    }
                },
            }
        )
    )


def run_ids(day: date, *ids: str) -> Decision:
    """``p``'s entity-scope run decision for ``ids`` on ``day``."""
    return Decision(
        processor="p",
        action="run",
        scope="entities",
        entity_type="player",
        entity_ids=ids,
        dates=(day,),
        reason="entity_scope",
    )

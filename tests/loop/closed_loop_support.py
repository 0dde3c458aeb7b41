"""A small DAG for the closed-loop tests: raw.a -> u1, u2 (phase 3) -> p (phase 4) -> q."""

from __future__ import annotations

from datetime import date
from typing import Any

from scoperouter.messages.models import Event, Trigger
from scoperouter.processor_registry.compiled import compile_registry
from scoperouter.processor_registry.models import RoutesSpec
from scoperouter.processor_registry.relations import InMemoryRelations
from scoperouter.router.completion_ref import CompletionRef

D = date(2025, 11, 19)
AS_OF = date(2025, 12, 31)
REL = InMemoryRelations({})


def registry(
    barrier: dict[str, Any] | None = None, *, grains: dict[str, str] | None = None, **defaults: Any
) -> Any:
    """The DAG, with ``barrier`` on p and q, ``defaults`` (run_retries...) and ``grains``
    (processor -> granularity instead of player)."""
    procs: dict[str, Any] = {
        "u1": {
            "phase": 3,
            "granularity": "player",
            "inputs": [{"source": "raw.a"}],
            "publishes": "an.u1",
        },
        "u2": {
            "phase": 3,
            "granularity": "player",
            "inputs": [{"source": "raw.a"}],
            "publishes": "an.u2",
            "window": {"quiet": "30s", "max_wait": "1m"},
        },
        "p": {
            "phase": 4,
            "granularity": "player",
            "inputs": [{"source": "an.u1"}, {"source": "an.u2"}],
            "publishes": "pre.p",
        },
        "q": {"phase": 5, "granularity": "player", "inputs": [{"source": "pre.p"}]},
    }
    for name, grain in (grains or {}).items():
        procs[name]["granularity"] = grain
    if barrier is not None:
        procs["p"]["barrier"] = barrier
        procs["q"]["barrier"] = barrier
    doc = {
        "version": 1,
        "entities": {"player": {}},
        "defaults": {"window": {"quiet": "10s", "max_wait": "1m"}, **defaults},
        "processors": procs,
    }
    return compile_registry(RoutesSpec.model_validate(doc))


def event(eid: str, source: str, *ids: str) -> Event:
    return Event(
        event_id=eid,
        source=source,
        game_date=D,
        affected_entities={"players": tuple(ids)} if ids else None,
    )


def done(t: Trigger, outcome: str = "success", **kw: Any) -> CompletionRef:
    return CompletionRef(outcome=outcome, trigger_id=t.trigger_id, **kw)  # type: ignore[arg-type]


def trig(tid: str = "t-1", ids: tuple[str, ...] | None = ("a", "b")) -> Trigger:
    """A trigger of processor ``p`` on D for the ledger's tests: those ids, or the full date."""
    return Trigger(
        trigger_id=tid,
        processor="p",
        game_date=D,
        start_date=D,
        end_date=D,
        scope="entities" if ids else "date",
        entity_type="player" if ids else None,
        entity_ids=ids,
        reason="entity_scope" if ids else "fallback_threshold",
    )

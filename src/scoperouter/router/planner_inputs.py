"""What the planner compiles once per registry: each source's candidate inputs, in
processor order, with everything a decision needs, and the prebuilt skip decisions.

Invariant: construction-time only -- nothing here runs per event; a :class:`PlanInput` is
immutable and holds no reference to the registry (so the planner cache can be weak), and
its ``skips`` are the very :class:`Decision` objects every skip of that input returns.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date

from scoperouter.messages.unchecked import unchecked
from scoperouter.processor_registry.compiled import (
    CompiledInput,
    CompiledProcessor,
    CompiledRegistry,
    resolve_path,
)
from scoperouter.router.decisions import Decision, Reason

_NO_DATES: tuple[date, ...] = ()


def skip_decision(processor: str, reason: Reason) -> Decision:
    """A ``skip`` decision of ``processor`` for ``reason`` (built once, reused per event)."""
    return unchecked(
        Decision,
        {
            "processor": processor,
            "action": "skip",
            "scope": None,
            "entity_type": None,
            "entity_ids": None,
            "dates": _NO_DATES,
            "reason": reason,
        },
    )


@dataclass(frozen=True, slots=True)
class PlanInput:
    """A candidate input with everything the planner needs, compiled once."""

    processor: str
    granularity: str
    date_granularity: bool
    fields: frozenset[str] | None
    ignore_fields: frozenset[str] | None
    paths_of: Callable[[str | None], tuple[tuple[str, ...], ...] | None]  # CompiledInput's
    also_paths: Mapping[str, tuple[str, ...]]  # also_map: ids ALSO mapped along it
    max_entities: int
    lookback_days: int
    lookback_games: int
    via: str | None
    # event entity type -> path to the via relation's from-type (games lookback only):
    # used to keep the later games of the ids an event names when the decision is date scope
    via_paths: Mapping[str, tuple[str, ...] | None]
    skips: Mapping[Reason, Decision]
    ahead_days: int = 0  # the input's ``ahead: {days: N}`` (0: none)


def compile_input(
    registry: CompiledRegistry, proc: CompiledProcessor, ci: CompiledInput
) -> PlanInput:
    """One input ``ci`` of processor ``proc``, compiled for the planner."""
    lb = proc.lookback
    via = lb.via if lb is not None and lb.count else None
    via_paths: Mapping[str, tuple[str, ...] | None] = {}
    if via is not None and via in registry.relations:
        if proc.is_date_granularity:
            via_from = registry.relations[via].from_type
            via_paths = {
                et: resolve_path(et, via_from, None, registry.relations_between)
                for et in registry.entity_types
            }
        else:
            via_paths = ci.paths
    reasons: tuple[Reason, ...] = (
        "upstream_failed",
        "no_data",
        "skip_downstream",
        "irrelevant_fields",
    )
    return PlanInput(
        processor=proc.name,
        granularity=proc.granularity,
        date_granularity=proc.is_date_granularity,
        fields=ci.fields,
        ignore_fields=ci.ignore_fields,
        paths_of=ci.paths_of,
        also_paths=ci.also_paths,
        max_entities=proc.max_entities,
        lookback_days=(lb.days or 0) if lb is not None else 0,
        lookback_games=(lb.count or 0) if lb is not None else 0,
        via=via,
        via_paths=via_paths,
        skips={r: skip_decision(proc.name, r) for r in reasons},
        ahead_days=ci.ahead_days,
    )


def compile_by_source(
    registry: CompiledRegistry, names: tuple[str, ...]
) -> dict[str, tuple[tuple[int, PlanInput], ...]]:
    """Each source's candidate inputs as (position of its processor in ``names``, input),
    in processor order."""
    by_source: dict[str, tuple[tuple[int, PlanInput], ...]] = {}
    index = {n: i for i, n in enumerate(names)}
    for source, inputs in registry.by_source.items():
        by_source[source] = tuple(
            sorted(
                (
                    (
                        index[ci.processor],
                        compile_input(registry, registry.processors[ci.processor], ci),
                    )
                    for ci in inputs
                ),
                key=lambda t: t[0],
            )
        )
    return by_source

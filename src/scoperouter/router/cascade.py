"""The downstream wave of one event, hop by hop: ``explain --cascade`` (a dry run, like
dbt's ``+model`` selection).

Invariant: pure (no I/O, no clock; ``as_of`` is passed in) and built only from the
planner. Hop 1 is the planner's decisions for the event. Every run decision of a processor
that ``publishes`` a source becomes the completion events that processor would publish:
that source, one event per date of the decision (one backfill range for a backfill), the
decision's ids under its entity type (none at date scope), changed fields unknown (so every
``fields`` filter counts it relevant), the event's priority and correlation id. Hop n+1
plans those events. Within a hop, the decisions of one processor merge as a coalescing
window merges them: dates and ids unite, a date-scope decision absorbs the others, and more
ids than the processor's ``max_entities`` make it date scope (``fallback_threshold``).

It is an upper bound of what the update can reach: a real processor publishes only the
ids and fields that changed, so the real wave can be narrower, never wider (same relation
data, same as-of date). ``publishes`` is a DAG (a cycle is a validation error), so the
wave ends after at most one hop per processor.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date

from scoperouter.messages.models import Event
from scoperouter.processor_registry.compiled import CompiledRegistry
from scoperouter.processor_registry.relations import RelationStore
from scoperouter.router.decisions import REASON_ORDER, Decision, Reason
from scoperouter.router.planner import planner_for

EVENT_ORIGIN = "event"
"""``via`` of a hop-1 step: reached by the event itself."""

CASCADE_SHAPE = "cascade"
"""``shape`` of a synthesised completion event."""


@dataclass(frozen=True)
class Step:
    """One processor run at one hop: the merged decision and what reached it."""

    hop: int
    decision: Decision
    via: tuple[str, ...]  # upstream processors whose completions reached it (or "event")
    events: int  # how many of the hop's events made it run

    def to_json(self) -> dict[str, object]:
        return {"hop": self.hop, **self.decision.to_json(), "via": list(self.via)}


@dataclass(frozen=True)
class Hop:
    """The runs of one hop and the sources of the events that reached them."""

    number: int
    sources: tuple[str, ...]  # sorted
    steps: tuple[Step, ...]  # sorted by processor

    def to_json(self) -> dict[str, object]:
        return {
            "hop": self.number,
            "sources": list(self.sources),
            "decisions": [s.to_json() for s in self.steps],
        }


@dataclass(frozen=True)
class Wave:
    """Every run the event reaches, hop by hop (hop 1 first)."""

    event: Event
    as_of: date
    hops: tuple[Hop, ...]
    processors: tuple[str, ...]  # every processor of the registry, sorted

    def steps(self) -> Iterator[Step]:
        for hop in self.hops:
            yield from hop.steps

    def reached(self) -> tuple[str, ...]:
        """Processors that run at some hop, sorted."""
        return tuple(sorted({s.decision.processor for s in self.steps()}))

    def not_reached(self) -> tuple[str, ...]:
        got = set(self.reached())
        return tuple(p for p in self.processors if p not in got)

    def to_json(self) -> dict[str, object]:
        return {
            "as_of": self.as_of.isoformat(),
            "hops": [h.to_json() for h in self.hops],
            "reached": list(self.reached()),
            "not_reached": list(self.not_reached()),
        }


@dataclass
class _Merge:
    """The decisions of one processor within one hop, merged like a window."""

    dates: set[date] = field(default_factory=set)
    ids: set[str] | None = field(default_factory=set)  # None = date scope
    entity_type: str | None = None
    date_reasons: list[Reason] = field(default_factory=list)
    via: set[str] = field(default_factory=set)
    events: int = 0

    def add(self, d: Decision, origin: str) -> None:
        self.dates.update(d.dates)
        self.via.add(origin)
        self.events += 1
        if d.scope != "entities" or d.entity_ids is None:
            self.ids = None
            self.date_reasons.append(d.reason)
        elif self.ids is not None:
            self.ids.update(d.entity_ids)
            self.entity_type = d.entity_type

    def step(self, hop: int, processor: str, max_entities: int) -> Step:
        if self.ids is not None and len(self.ids) > max_entities:
            self.ids = None
            self.date_reasons.append("fallback_threshold")
        dates = tuple(sorted(self.dates))
        if self.ids is None:
            reason = min(self.date_reasons, key=REASON_ORDER.index)
            d = Decision(
                processor=processor,
                action="run",
                scope="date",
                entity_type=None,
                entity_ids=None,
                dates=dates,
                reason=reason,
            )
        else:
            d = Decision(
                processor=processor,
                action="run",
                scope="entities",
                entity_type=self.entity_type,
                entity_ids=tuple(sorted(self.ids)),
                dates=dates,
                reason="entity_scope",
            )
        return Step(hop=hop, decision=d, via=tuple(sorted(self.via)), events=self.events)


def completions(registry: CompiledRegistry, step: Step, root: Event) -> tuple[Event, ...]:
    """The completion events ``step``'s processor would publish (none without
    ``publishes``): one per date, or one backfill range for a backfill decision."""
    proc = registry.processors[step.decision.processor]
    if proc.publishes is None or not step.decision.dates:
        return ()
    d = step.decision
    ents = (
        {d.entity_type: d.entity_ids}
        if d.scope == "entities" and d.entity_type and d.entity_ids
        else None
    )
    if d.reason == "backfill":
        return (
            Event(
                event_id=f"{root.event_id}>{proc.name}",
                source=proc.publishes,
                start_date=d.dates[0],
                end_date=d.dates[-1],
                affected_entities=ents,
                priority=root.priority,
                correlation_id=root.correlation_id,
                shape=CASCADE_SHAPE,
            ),
        )
    return tuple(
        Event(
            event_id=f"{root.event_id}>{proc.name}@{day.isoformat()}",
            source=proc.publishes,
            game_date=day,
            affected_entities=ents,
            priority=root.priority,
            correlation_id=root.correlation_id,
            shape=CASCADE_SHAPE,
        )
        for day in d.dates
    )


def cascade(
    registry: CompiledRegistry, relations: RelationStore, event: Event, as_of: date
) -> Wave:
    """The wave ``event`` starts: every processor it reaches, hop by hop."""
    planner = planner_for(registry)
    hops: list[Hop] = []
    frontier: list[tuple[str, Event]] = [(EVENT_ORIGIN, event)]
    # a DAG's longest path has at most one hop per processor; the bound is only a guard
    for hop in range(1, len(registry.processors) + 1):
        merged: dict[str, _Merge] = {}
        for origin, ev in frontier:
            for d in planner.plan(relations, ev, as_of):
                if d.action == "run":
                    merged.setdefault(d.processor, _Merge()).add(d, origin)
        if not merged:
            break
        steps = tuple(
            merged[name].step(hop, name, registry.processors[name].max_entities)
            for name in sorted(merged)
        )
        hops.append(Hop(hop, tuple(sorted({ev.source for _, ev in frontier})), steps))
        frontier = [
            (s.decision.processor, ev) for s in steps for ev in completions(registry, s, event)
        ]
    return Wave(event=event, as_of=as_of, hops=tuple(hops), processors=registry.processor_names)

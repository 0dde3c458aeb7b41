"""Which dates the router looked at a processor for, from an execution log: the coverage
rule of the rollout report (:mod:`.rollout`; docs/report.md).

Invariant: pure functions of the log's rows, the registry and the relation data; a date
counts as looked at only through a decision of the processor's own -- a run on the dates the
log has a row of it for (one row per date the planner's run named, lookback dates included
only when the planner ran them), or a skip :func:`skip_reason` says it decides itself, on
the dates the planner would have run for that event (:func:`skip_dates`, the planner asked
again, never the ``as_of`` upper bound) -- or an upstream's (:func:`follow_upstreams`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from datetime import date, timedelta

from scoperouter.execution_log.analysis import Run
from scoperouter.execution_log.reader import EventRecord
from scoperouter.messages.models import Event
from scoperouter.processor_registry.compiled import CompiledInput, CompiledRegistry
from scoperouter.processor_registry.relations import RelationStore
from scoperouter.router.decisions import SKIP_REASONS
from scoperouter.router.planner import plan

# skips a processor decides itself, for an event of a source it reads (not_an_input and
# unknown_source say nothing about the processor: the router did not look at it)
EXPLAINED_SKIPS: frozenset[str] = frozenset(SKIP_REASONS - {"not_an_input", "unknown_source"})


def skip_reason(inp: CompiledInput, event: Event) -> str | None:
    """The skip ``inp``'s processor decides for ``event`` (of ``inp.source``), or None when
    it does not skip it: the checks the planner makes first, in its order
    (:meth:`scoperouter.router.planner.Planner._decide`)."""
    if event.status == "failed":
        return "upstream_failed"
    if event.status == "no_data":
        return "no_data"
    if event.skip_downstream:
        return "skip_downstream"
    # both sides are folded already (field_names): the event's names when read, the
    # input's when compiled -- stripped and lower-case, so no per-input work here
    changed = event.changed_fields
    if changed:
        if inp.fields is not None and inp.fields.isdisjoint(changed):
            return "irrelevant_fields"
        if inp.ignore_fields is not None and inp.ignore_fields.issuperset(changed):
            return "irrelevant_fields"
    return None


def own_dates(registry: CompiledRegistry | None, processor: str, event: Event) -> list[date]:
    """The event's own dates and, through an input with ``ahead: {days: A}``, the A days
    after each (past ``as_of``, as the planner's): what a skip covers when the relation
    data is not at hand to re-plan it -- never a lookback date (:func:`skip_dates`)."""
    proc = registry.processors.get(processor) if registry is not None else None
    inp = proc.inputs.get(event.source) if proc is not None else None
    ahead = inp.ahead_days if inp is not None else 0
    return [d0 + timedelta(days=k) for d0 in event.dates() for k in range(ahead + 1)]


def skip_dates(
    registry: CompiledRegistry, relations: RelationStore | None, rec: EventRecord
) -> dict[str, tuple[date, ...]]:
    """Per processor that skips the logged event with a reason of its own
    (:func:`skip_reason`), the dates that skip decided about: the dates the planner's run
    would have named had the event been relevant -- the event re-planned without what made
    it a skip (``status``, ``skip_downstream``, ``changed_fields``) at the event's logged
    ``as_of``, so a lookback reaches exactly the dates the planner's rule gives, never the
    ``as_of`` upper bound. Without ``relations`` (the report did not load the relation
    data), the event's own dates and ahead days only (:func:`own_dates`)."""
    ev = rec.event
    skipping = {
        inp.processor
        for inp in registry.by_source.get(ev.source, ())
        if skip_reason(inp, ev) is not None
    }
    if not skipping:
        return {}
    if relations is None:
        return {name: tuple(own_dates(registry, name, ev)) for name in sorted(skipping)}
    relevant = ev.model_copy(
        update={"status": "success", "skip_downstream": False, "changed_fields": None}
    )
    out: dict[str, tuple[date, ...]] = {}
    for d in plan(registry, relations, relevant, rec.as_of):
        if d.processor in skipping:
            ran = d.dates if d.action == "run" and d.dates else ()
            out[d.processor] = tuple(ran) or tuple(own_dates(registry, d.processor, ev))
    return out


def follow_upstreams(
    looked: dict[str, set[date]],
    runs: Mapping[str, list[Run]],
    registry: CompiledRegistry,
    seen: set[str],
) -> None:
    """Each processor also looked at the dates its upstreams were run or looked at (to a
    fixed point), through every input source that the registry's processors publish and the
    log has events of (so the router receives it): what such an upstream run published was
    planned for the processor, and a date it published nothing for left nothing to run."""
    for name, rs in runs.items():
        looked[name].update(r.game_date for r in rs if r.game_date is not None)
    producer = {p.publishes: n for n, p in registry.processors.items() if p.publishes}
    ups: dict[str, set[str]] = defaultdict(set)
    for src, inputs in registry.by_source.items():
        q = producer.get(src)
        if q is not None and src in seen:
            for inp in inputs:
                if inp.processor != q:
                    ups[inp.processor].add(q)
    changed = True
    while changed:
        changed = False
        for name, qs in ups.items():
            mine = looked[name]
            for q in qs:
                extra = looked.get(q, set()) - mine
                if extra:
                    mine |= extra
                    changed = True

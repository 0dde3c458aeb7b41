"""Which dates the router looked at a processor for, from an execution log: the coverage
rule of the rollout report (:mod:`.rollout`; docs/report.md).

Invariant: pure functions of the log's rows and the registry; a date counts as looked at
only through a decision of the processor's own (a run, or a skip :func:`skip_reason` says it
decides itself), the dates its lookback reaches, or an upstream's (:func:`follow_upstreams`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from datetime import date, timedelta

from scoperouter.execution_log.analysis import Run
from scoperouter.execution_log.reader import EventRecord
from scoperouter.messages.models import Event
from scoperouter.processor_registry.compiled import CompiledInput, CompiledRegistry
from scoperouter.router.decisions import SKIP_REASONS

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


def reach(registry: CompiledRegistry | None, processor: str, rec: EventRecord) -> list[date]:
    """The dates a decision of ``processor`` on the logged event reaches: the event's own
    dates and, through an input with ``ahead: {days: A}``, the A days after each (past
    ``as_of``, as the planner's), plus the later ones (up to its ``as_of``) the lookback may
    reach from each (``days: N``: N days; a games lookback: every later date, as the
    planner's when it knows no game)."""
    proc = registry.processors.get(processor) if registry is not None else None
    lb = proc.lookback if proc is not None else None
    inp = proc.inputs.get(rec.event.source) if proc is not None else None
    ahead = inp.ahead_days if inp is not None else 0
    out: list[date] = []
    for d0 in rec.event.dates():
        for k in range(ahead + 1):
            d = d0 + timedelta(days=k)
            n = (lb.days or 0) if lb is not None else 0
            if lb is not None and not n and lb.count and lb.via is not None:
                n = (rec.as_of - d).days
            out.append(d)
            out += [d + timedelta(days=i) for i in range(1, min(n, (rec.as_of - d).days) + 1)]
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

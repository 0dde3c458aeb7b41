"""The backfill planner: a date range and a selection -> the (processor, date) runs and
the dependency edges between them. Pure: no clock, no I/O (``as_of`` is passed in, and
relation data comes through the planner's pure :class:`RelationStore` lookups).

Invariants:

* Every selected processor runs on every date of ``[start, end]``, plus the later dates
  (up to ``as_of``) whose lookback window reads a date a selected upstream re-runs: a
  processor's dates are always one contiguous range ``[start, last]``. An input with
  ``ahead: {days: A}`` (rows dated up to A days after the event's) makes a re-run of its
  upstream on D a change on D..D+A, as the router routes it: those dates are planned past
  ``as_of`` (so are a downstream's runs on an upstream's dates past it: an event's own date
  is never capped), their lookback dates up to ``as_of``. With ``--from``,
  the processors of its closure that ``--phases`` leaves out count as re-run (elsewhere)
  on the dates they would have had: they have no runs and no edges, but the later dates
  reading them are planned.
* A run (P, D) depends on the runs of each selected *direct* upstream U (a processor
  publishing a source P reads) on the dates P's lookback reads for D -- ``[D - N, D]``
  for ``days: N``; from the N-th previous ``via`` occurrence of every entity occurring on D
  for ``occurrences: N`` (the whole range when relation data does not say); ``[D, D]``
  without a lookback -- moved back by the input's ``ahead`` days (U's run on D - A holds
  rows dated D), clipped to U's planned dates.
* Occurrences follow the router's rule, from the same code
  (:func:`~scoperouter.processor_registry.relations.occurring_on` and its siblings): an
  undated ``via`` row holds on every date; a date without a dated row is unknown. Edges are stored as date intervals
  (:class:`Dep`), never expanded: a season's 5,100 intervals stand for ~237k (run, run)
  edges.
* Runs are sorted by (date, topological index): a valid execution order on one worker.
* A plan whose dates span more than :data:`MAX_PLAN_DAYS` dates -- the range up to
  ``as_of``, or a selected processor's ``[start, last]`` with its lookback dates -- is a
  :class:`PlanError`: a typo'd year (1025 for 2025, in ``--start`` or in both dates) plans
  no millions of runs.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta

from scoperouter.processor_registry.compiled import CompiledProcessor, CompiledRegistry
from scoperouter.processor_registry.relations import (
    RelationStore,
    next_occurrences,
    nth_previous_occurrence,
    occurring_on,
)

_DAY = timedelta(days=1)
# the longest range planned, in dates up to the as-of date (about ten years: the SDK's trigger
# limit, sdk/scope.py MAX_RANGE_DAYS): a typo'd year must be an error, not millions of runs.
# Not normalize.MAX_BACKFILL_DAYS (400): that bounds a backfill *event*, fired in one go
MAX_PLAN_DAYS = 3660


class PlanError(ValueError):
    """A selection that names unknown processors or selects nothing (a usage error)."""


@dataclass(frozen=True, slots=True)
class Dep:
    """Run (P, D) needs ``upstream`` done on every planned date in ``[lo, hi]``."""

    upstream: str
    lo: date
    hi: date


@dataclass(frozen=True, slots=True)
class PlannedRun:
    processor: str
    day: date
    phase: int
    deps: tuple[Dep, ...]

    @property
    def key(self) -> str:
        return f"{self.processor}@{self.day.isoformat()}"


@dataclass(frozen=True)
class Request:
    """What the user asked for (the resume key is derived from it)."""

    start: date
    end: date
    processors: tuple[str, ...] = ()  # explicit list (--processors)
    from_: tuple[str, ...] = ()  # these and everything downstream (--from)
    phases: tuple[int, int] | None = None  # inclusive (--phases 3-6)

    def to_json(self) -> dict[str, object]:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "processors": list(self.processors),
            "from": list(self.from_),
            "phases": list(self.phases) if self.phases else None,
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, object]) -> Request:
        ph = obj.get("phases")
        return cls(
            start=date.fromisoformat(str(obj["start"])),
            end=date.fromisoformat(str(obj["end"])),
            processors=tuple(str(x) for x in obj.get("processors") or ()),  # type: ignore[attr-defined]
            from_=tuple(str(x) for x in obj.get("from") or ()),  # type: ignore[attr-defined]
            phases=(int(ph[0]), int(ph[1])) if isinstance(ph, list) else None,
        )

    def key(self, registry_digest: str) -> str:
        """The resume key: same request on the same registry -> same backfill. The names
        are a set (sorted, once each): their order on the command line selects nothing.
        (A request stored with names out of order gets another key: it is planned anew.)"""
        norm = {
            **self.to_json(),
            "processors": sorted(set(self.processors)),
            "from": sorted(set(self.from_)),
        }
        text = json.dumps({**norm, "registry": registry_digest}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class BackfillPlan:
    request: Request
    as_of: date
    processors: tuple[str, ...]  # selected, upstream first
    last_day: Mapping[str, date]  # per processor: its dates are [request.start, last_day]
    runs: tuple[PlannedRun, ...]  # sorted by (date, topological index)
    index: Mapping[str, int] = field(default_factory=dict)  # run key -> position

    def lookback_runs(self) -> int:
        """Runs on dates after the requested end (the dates lookbacks add)."""
        return sum(1 for r in self.runs if r.day > self.request.end)


def registry_digest(registry: CompiledRegistry) -> str:
    """A digest of what the plan depends on: processors, phases, inputs, outputs, lookbacks
    and the inputs' ``ahead`` days (named only when a processor has one: the digest of a
    registry without any is what it was before ``ahead``, and its stored plans resume)."""
    parts = []
    for name in registry.processor_names:
        p = registry.processors[name]
        lb = p.lookback.model_dump(exclude_none=True) if p.lookback is not None else None
        part: list[object] = [name, p.phase, sorted(p.inputs), p.publishes, lb]
        ahead = {src: inp.ahead_days for src, inp in p.inputs.items() if inp.ahead_days}
        if ahead:
            part.append({"ahead": ahead})
        parts.append(part)
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def select(registry: CompiledRegistry, request: Request) -> tuple[str, ...]:
    """The selected processors, upstream first (topological order of the registry)."""
    chosen = _named(registry, request)
    if request.phases is not None:
        lo, hi = request.phases
        chosen = {n for n in chosen if lo <= registry.processors[n].phase <= hi}
    out = tuple(n for n in registry.topo_order if n in chosen)
    if not out:
        raise PlanError("the selection names no processor")
    return out


def _named(registry: CompiledRegistry, request: Request) -> set[str]:
    """The processors the request names, before ``--phases`` filters them."""
    named = set(request.processors) | set(request.from_)
    unknown = sorted(named - set(registry.processor_names))
    if unknown:
        raise PlanError(f"unknown processor(s): {', '.join(unknown)}")
    if request.processors and request.from_:
        raise PlanError("--processors and --from are exclusive")
    if request.processors:
        chosen = set(request.processors)
    elif request.from_:
        chosen = set()
        todo = list(request.from_)
        while todo:
            n = todo.pop()
            if n not in chosen:
                chosen.add(n)
                todo.extend(registry.downstream_of.get(n, ()))
    else:
        chosen = set(registry.processor_names)
    return chosen


def plan_backfill(
    registry: CompiledRegistry,
    request: Request,
    *,
    as_of: date,
    relations: RelationStore | None = None,
) -> BackfillPlan:
    """The runs and edges of ``request`` (module docstring)."""
    if request.end < request.start:
        raise PlanError("--end is before --start")
    if request.start > as_of:
        raise PlanError(f"--start {request.start} is after the as-of date {as_of}")
    start, end = request.start, min(request.end, as_of)
    if (end - start).days + 1 > MAX_PLAN_DAYS:
        raise PlanError(
            f"{start} .. {end} spans more than {MAX_PLAN_DAYS} days (the range up to "
            "the as-of date): split it into several backfills"
        )
    try:
        return _plan(registry, request, start, end, as_of, relations)
    except OverflowError:  # a lookback or ahead day past date.min / date.max
        raise PlanError(
            f"{start} .. {end}: a date its runs read or change (a lookback or an ahead "
            "day) is outside the calendar (years 1-9999): check the dates (a typo'd year?)"
        ) from None


def _plan(
    registry: CompiledRegistry,
    request: Request,
    start: date,
    end: date,
    as_of: date,
    relations: RelationStore | None,
) -> BackfillPlan:
    chosen = select(registry, request)
    selected = set(chosen)
    # what changes on the range: the selection; with --from, its whole closure -- the
    # processors --phases leaves out were re-run elsewhere (why else name them), and the
    # later dates whose lookbacks read them are re-run all the same (no runs of their own)
    changed = _named(registry, request) if request.from_ else selected
    last: dict[str, date] = {}
    for name in registry.topo_order:  # upstream first: every upstream's last day is known
        if name not in changed:
            continue
        proc = registry.processors[name]
        reach = end  # <= as_of
        for up in registry.upstream_of.get(name, ()):
            if up in changed:
                # the dates the upstream's re-run dates change, ahead days and all (never
                # capped), then the later dates whose lookbacks read them (capped)
                changes = last[up] + timedelta(days=ahead_days(registry, name, up))
                looks = min(_reach(proc, start, changes, as_of, relations), as_of)
                reach = max(reach, changes, looks)
        last[name] = reach
        if name in selected and (last[name] - start).days + 1 > MAX_PLAN_DAYS:
            # checked before the runs are made (and before a downstream's lookback scans
            # these dates): a typo'd year in --start and --end alike is a short range whose
            # lookback dates reach the as-of date
            raise PlanError(
                f"{start} .. {last[name]} ({name}'s dates: the range and the later dates "
                f"lookbacks read it on, up to the as-of date {as_of}) spans more than {MAX_PLAN_DAYS} days: check "
                "the dates (a typo'd year?)"
            )
    topo = {n: i for i, n in enumerate(chosen)}
    runs: list[PlannedRun] = []
    for name in chosen:
        proc = registry.processors[name]
        ups = [u for u in registry.upstream_of.get(name, ()) if u in selected]
        back = {u: timedelta(days=ahead_days(registry, name, u)) for u in ups}
        d = start
        while d <= last[name]:
            lo = _window_start(proc, d, start, relations)
            deps = tuple(
                Dep(u, max(lo - back[u], start), min(d, last[u]))
                for u in ups
                if max(lo - back[u], start) <= last[u]
            )
            runs.append(PlannedRun(name, d, proc.phase, deps))
            d += _DAY
    runs.sort(key=lambda r: (r.day, topo[r.processor]))
    return BackfillPlan(
        request=request,
        as_of=as_of,
        processors=chosen,
        last_day={n: last[n] for n in chosen},
        runs=tuple(runs),
        index={r.key: i for i, r in enumerate(runs)},
    )


def ahead_days(registry: CompiledRegistry, name: str, upstream: str) -> int:
    """The ``ahead`` days of ``name``'s input from what ``upstream`` publishes (0: none)."""
    src = registry.processors[upstream].publishes
    inp = registry.processors[name].inputs.get(src) if src is not None else None
    return inp.ahead_days if inp is not None else 0


def _reach(
    proc: CompiledProcessor,
    start: date,
    up_last: date,
    as_of: date,
    relations: RelationStore | None,
) -> date:
    """The last date whose lookback window reads one of the upstream's dates [start, up_last]."""
    lb = proc.lookback
    if lb is None:
        return up_last
    if lb.days:
        return up_last + timedelta(days=lb.days)
    n, via = lb.count, lb.via
    if not n or via is None or relations is None:
        return as_of
    reach = up_last
    d = start
    while d <= up_last:
        ids = occurring_on(relations, via, d)
        if ids is None:  # who played is unknown: any later date may read it
            return as_of
        for eid in ids:
            nxt = next_occurrences(relations, via, eid, d, n)
            if len(nxt) < n:
                return as_of  # fewer than N later games known: up to as_of
            reach = max(reach, nxt[-1])
        d += _DAY
    return reach


def _window_start(
    proc: CompiledProcessor, d: date, start: date, relations: RelationStore | None
) -> date:
    """The first date run (proc, d) reads (module docstring)."""
    lb = proc.lookback
    if lb is None:
        return d
    if lb.days:
        return d - timedelta(days=lb.days)
    n, via = lb.count, lb.via
    if not n or via is None or relations is None:
        return start
    ids = occurring_on(relations, via, d)
    if ids is None:
        return start
    lo = d
    for eid in ids:
        first = nth_previous_occurrence(relations, via, eid, d, n)
        if first is None:
            return start  # fewer than N earlier games: the window reaches back to the start
        lo = min(lo, first)
    return lo


def plan_summary(plan: BackfillPlan) -> dict[str, object]:
    """Counts for display: runs per processor and the lookback runs past the end."""
    per: dict[str, int] = {}
    for r in plan.runs:
        per[r.processor] = per.get(r.processor, 0) + 1
    return {
        "runs": len(plan.runs),
        "edges": sum(len(r.deps) for r in plan.runs),
        "lookback_runs": plan.lookback_runs(),
        "per_processor": per,
        "last_day": {k: v.isoformat() for k, v in plan.last_day.items()},
    }

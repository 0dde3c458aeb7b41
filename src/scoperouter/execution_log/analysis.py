"""Waste, savings and recommendations from an execution log (``scoperouter report``).

Definitions (docs/report.md has the long form):

* A **run** is one dispatched trigger (the final outcome of its dispatch rows). A log with
  no dispatch rows (e.g. a dry run) counts every ``run`` decision as a run, uncoalesced.
* **processed**: entity rows a run processed -- the completion's ``records_processed``
  when the processor reported one, else the ids requested (entity scope) or the entity
  universe of the date (date scope).
* **needed**: entity rows that had to be processed -- the completion's
  ``entities_changed`` when reported, else the ids the causing events reached after
  mapping (entity scope: the requested ids; date scope after ``fallback_threshold``: the
  mapped count). Unknown (no entities in the event, unmapped types) -> the run is not
  measurable and is left out of the waste figures.
* **waste %** (as run) = (processed - needed) / processed, over measurable runs.
* **date-level waste %** = (universe - needed) / universe: what full-date runs would have
  wasted. The recommendation rule uses this (it is the question "does entity-level pay
  here?"), with the wasted hours per week it represents and the payback of the
  processor's ``engineering_hours``.
* **full-date baseline**: the rows a full-date run of the processor processes on that
  date -- measured (median ``records_processed`` of its date-scope runs' completions for
  that date) when there is one, else the date's entity universe.
* **failed runs** (``dispatch_status`` in :data:`FAILED_STATUSES`) did not run: they count
  in ``failed_runs`` but not in processed rows, average entities, waste or savings.
* **time**: a run costs ``overhead_s + seconds_per_entity x records``, fitted per
  processor by ordinary least squares over its completions (``duration_s > 0``) when they
  have at least two distinct record counts (both coefficients clamped >= 0); else
  ``report.seconds_per_entity`` from routes.yaml, else 30 s / 450 (Phase 3's full-date run
  today), with no overhead. Waste and savings are rows x ``seconds_per_entity`` only: the
  fixed overhead is paid by the same runs either way.
* **per week**: totals / distinct days with decisions (UTC) x 7.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from scoperouter.execution_log.reader import (
    CompletionRow,
    LogData,
    decision_event_keys,
    event_key,
)
from scoperouter.execution_log.runs import (
    DEFAULT_SECONDS_PER_ENTITY,
    CostModel,
    Run,
    attach_completions,
    build_runs,
    fit_cost,
    full_date_sizes,
    measured_runs,
)
from scoperouter.processor_registry.compiled import DATE_GRANULARITY
from scoperouter.processor_registry.models import ReportSpec

__all__ = [
    "DATE_LEVEL",
    "DEFAULT_SECONDS_PER_ENTITY",
    "ENTITY_LEVEL",
    "INSUFFICIENT",
    "CostModel",
    "ProcessorInfo",
    "ProcessorReport",
    "Report",
    "Run",
    "attach_completions",
    "build_report",
    "build_runs",
    "fit_cost",
    "full_date_sizes",
    "recommend",
    "timeline",
]


ENTITY_LEVEL = "entity-level"
DATE_LEVEL = "date-level"
INSUFFICIENT = "insufficient-data"

DATE_GRANULARITY_WHY = (
    "granularity is date: routes.yaml declares that its output can only be computed for the "
    "whole date (e.g. league-wide percentiles, a daily export file), so an entity-scoped run "
    "would be wrong, never cheaper"
)


@dataclass(frozen=True)
class ProcessorInfo:
    """What the report needs from routes.yaml about one processor (None -> from the log)."""

    phase: int | None
    granularity: str | None
    engineering_hours: float | None = None


@dataclass
class ProcessorReport:
    processor: str
    phase: int | None
    granularity: str | None
    runs: int = 0
    runs_per_day: float = 0.0
    entity_runs: int = 0
    date_runs: int = 0
    failed_runs: int = 0
    measured_runs: int = 0
    runs_with_completion: int = 0
    avg_entities_per_run: float | None = None
    entity_rows_processed: int = 0
    entity_rows_needed: int = 0
    # the headline's comparison: the measured runs whose full-date baseline is known, the
    # entity rows they processed as routed, and the rows had each been a full-date run
    baseline_runs: int = 0
    baseline_runs_processed: int = 0
    date_level_rows: int = 0
    waste_pct: float | None = None
    wasted_hours_per_week: float | None = None
    date_level_waste_pct: float | None = None
    date_level_wasted_hours_per_week: float | None = None
    saved_hours: float = 0.0
    saved_hours_per_week: float = 0.0
    seconds_per_entity: float = DEFAULT_SECONDS_PER_ENTITY
    overhead_s: float = 0.0
    seconds_per_entity_source: str = "default"
    engineering_hours: float = 0.0
    payback_weeks: float | None = None
    avg_dispatch_latency_ms: float | None = None
    recommendation: str = INSUFFICIENT
    why: str = ""

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        for k, v in out.items():
            if isinstance(v, float):
                out[k] = None if math.isinf(v) or math.isnan(v) else round(v, 4)
        return out


@dataclass
class Report:
    processors: list[ProcessorReport]
    days_observed: int
    first_decision: datetime | None
    last_decision: datetime | None
    decisions: int
    events: int
    runs: int
    coalesced: bool  # runs are dispatched triggers (False: decisions, no dispatch rows)
    unmatched_completions: int
    thresholds: ReportSpec
    timeline: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "summary": {
                "days_observed": self.days_observed,
                "first_decision": self.first_decision.isoformat() if self.first_decision else None,
                "last_decision": self.last_decision.isoformat() if self.last_decision else None,
                "events": self.events,
                "decisions": self.decisions,
                "runs": self.runs,
                "runs_are": "dispatched triggers"
                if self.coalesced
                else "run decisions (no dispatch rows)",
                "unmatched_completions": self.unmatched_completions,
                "saved_hours": round(sum(p.saved_hours for p in self.processors), 4),
            },
            "thresholds": self.thresholds.model_dump(),
            "processors": [p.to_json() for p in self.processors],
            "timeline": self.timeline,
        }


# ---------------------------------------------------------------------------- runs
def _rate(num: float, den: float) -> float | None:
    return 100.0 * num / den if den > 0 else None


def build_report(
    data: LogData,
    *,
    thresholds: ReportSpec | None = None,
    processors: Mapping[str, ProcessorInfo] | None = None,
) -> Report:
    """Per-processor figures and a recommendation for every processor seen in the log or
    named in ``processors`` (the registry)."""
    th = thresholds or ReportSpec()
    info = dict(processors or {})
    runs, coalesced, unmatched = measured_runs(data)

    times = [d.decided_at for d in data.decisions if d.decided_at is not None]
    times += [e.decided_at for e in data.events if e.skips]  # events with aggregated skips
    days = max(1, len({t.date() for t in times}))
    weeks = days / 7.0

    names = set(info) | {d.processor for d in data.decisions} | {r.processor for r in runs}
    per: dict[str, list[Run]] = defaultdict(list)
    for r in runs:
        per[r.processor].append(r)
    seen_meta: dict[str, tuple[int | None, str | None]] = {}
    for d in (*data.decisions, *data.dispatches):
        if d.processor not in seen_meta or seen_meta[d.processor] == (None, None):
            seen_meta[d.processor] = (d.phase, d.granularity)
    comps_by_proc: dict[str, list[CompletionRow]] = defaultdict(list)
    for c in data.completions:
        comps_by_proc[c.processor].append(c)

    out: list[ProcessorReport] = []
    for name in sorted(names):
        pi = info.get(name)
        phase = pi.phase if pi and pi.phase is not None else seen_meta.get(name, (None, None))[0]
        gran = pi.granularity if pi and pi.granularity else seen_meta.get(name, (None, None))[1]
        pr = ProcessorReport(processor=name, phase=phase, granularity=gran)
        pr.engineering_hours = (
            pi.engineering_hours
            if pi and pi.engineering_hours is not None
            else th.engineering_hours
        )
        cost = fit_cost(comps_by_proc.get(name, ()), th.seconds_per_entity)
        pr.seconds_per_entity = cost.seconds_per_entity
        pr.overhead_s = cost.overhead_s
        pr.seconds_per_entity_source = cost.source
        spe = (
            pr.seconds_per_entity
        )  # waste/savings: per-entity seconds only (overhead paid either way)
        all_runs = per.get(name, [])
        pr.runs = len(all_runs)
        pr.runs_per_day = len(all_runs) / days
        pr.entity_runs = sum(1 for r in all_runs if r.scope == "entities")
        pr.date_runs = sum(1 for r in all_runs if r.scope == "date")
        pr.failed_runs = sum(1 for r in all_runs if r.failed)
        pr.runs_with_completion = sum(1 for r in all_runs if r.completion is not None)
        rs = [r for r in all_runs if not r.failed]  # failed dispatches processed nothing
        processed = [r.processed for r in rs if r.processed is not None]
        pr.avg_entities_per_run = sum(processed) / len(processed) if processed else None
        lat = [r.latency_ms for r in rs if r.latency_ms is not None]
        pr.avg_dispatch_latency_ms = sum(lat) / len(lat) if lat else None

        proc_sum = need_sum = base_sum = 0
        wasted = base_wasted = 0
        saved_rows = 0
        for r in rs:
            p, u, b = r.processed, r.useful, r.baseline
            if b is not None and p is not None and r.scope == "entities":
                saved_rows += max(0, b - p)
            if p is None or u is None:
                continue
            u = min(u, p)
            pr.measured_runs += 1
            proc_sum += p
            need_sum += u
            wasted += max(0, p - u)
            if b is not None:
                pr.baseline_runs += 1
                pr.baseline_runs_processed += p
                base_sum += b
                base_wasted += max(0, b - u)
        pr.entity_rows_processed = proc_sum
        pr.entity_rows_needed = need_sum
        pr.date_level_rows = base_sum
        pr.waste_pct = _rate(wasted, proc_sum)
        pr.date_level_waste_pct = _rate(base_wasted, base_sum)
        if pr.measured_runs:
            pr.wasted_hours_per_week = wasted * spe / 3600.0 / weeks
            pr.date_level_wasted_hours_per_week = base_wasted * spe / 3600.0 / weeks
        pr.saved_hours = saved_rows * spe / 3600.0
        pr.saved_hours_per_week = pr.saved_hours / weeks
        wh = pr.date_level_wasted_hours_per_week
        if wh is not None and gran != DATE_GRANULARITY:  # never entity-level: no payback
            pr.payback_weeks = pr.engineering_hours / wh if wh > 0 else math.inf
        pr.recommendation, pr.why = recommend(pr, th)
        out.append(pr)

    out.sort(key=lambda p: (p.phase if p.phase is not None else 99, p.processor))  # pipeline order
    return Report(
        processors=out,
        days_observed=days,
        first_decision=min(times) if times else None,
        last_decision=max(times) if times else None,
        decisions=data.decision_count,
        events=len(  # by date and id, as the log keeps them
            {k for k in decision_event_keys(data) if k is not None}
            | {event_key(e) for e in data.events if e.skips}
        ),
        runs=len(runs),
        coalesced=coalesced,
        unmatched_completions=unmatched,
        thresholds=th,
        timeline=timeline(runs),
    )


def recommend(pr: ProcessorReport, th: ReportSpec) -> tuple[str, str]:
    """The production rule: entity-level pays when date-level waste > waste_pct, wasted
    hours/week > wasted_hours_per_week and payback < payback_weeks (all three)."""
    if pr.granularity == DATE_GRANULARITY:
        return DATE_LEVEL, DATE_GRANULARITY_WHY
    if pr.measured_runs == 0 or pr.date_level_waste_pct is None:
        if pr.runs == 0:
            return INSUFFICIENT, "no runs in the log"
        return INSUFFICIENT, (
            "no measurable run: events named no mappable entities (or joined a window past "
            "1,000 events) and no completion reported entities_changed"
        )
    waste = pr.date_level_waste_pct
    hours = pr.date_level_wasted_hours_per_week or 0.0
    payback = pr.payback_weeks if pr.payback_weeks is not None else math.inf
    checks = [
        (
            waste > th.waste_pct,
            f"date-level waste {waste:.0f}% {'>' if waste > th.waste_pct else '<='} {th.waste_pct:g}%",
        ),
        (
            hours > th.wasted_hours_per_week,
            f"{hours:.2f} wasted h/week {'>' if hours > th.wasted_hours_per_week else '<='} {th.wasted_hours_per_week:g}",
        ),
        (
            payback < th.payback_weeks,
            f"payback {_fmt_weeks(payback)} {'<' if payback < th.payback_weeks else '>='} {th.payback_weeks:g} weeks"
            f" ({pr.engineering_hours:g} engineering h)",
        ),
    ]
    if all(ok for ok, _ in checks):
        return ENTITY_LEVEL, "entity-level pays: " + "; ".join(t for _, t in checks)
    return DATE_LEVEL, "entity-level does not repay its engineering cost: " + "; ".join(
        t for ok, t in checks if not ok
    )


def _fmt_weeks(w: float) -> str:
    return "never" if math.isinf(w) else f"{w:.1f}"


def timeline(runs: list[Run]) -> list[dict[str, Any]]:
    """Waste per time bucket (hour when the log spans <= 2 days, else day), all processors."""
    timed = [r for r in runs if r.at is not None]
    if not timed:
        return []
    lo = min(r.at for r in timed if r.at is not None)
    hi = max(r.at for r in timed if r.at is not None)
    hourly = (hi - lo).total_seconds() <= 2 * 86400
    buckets: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0, 0])
    for r in timed:
        assert r.at is not None
        key = r.at.strftime("%Y-%m-%dT%H:00") if hourly else r.at.strftime("%Y-%m-%d")
        b = buckets[key]
        b[4] += 1 if r.scope == "entities" else 0
        b[5] += 1 if r.scope == "date" else 0
        p, u, base = r.processed, r.useful, r.baseline
        if p is None or u is None or r.failed:
            continue
        u = min(u, p)
        b[0] += p
        b[1] += max(0, p - u)
        if base is not None:
            b[2] += base
            b[3] += max(0, base - u)
    return [
        {
            "bucket": k,
            "entity_runs": v[4],
            "date_runs": v[5],
            "processed": v[0],
            "waste_pct": _rate(v[1], v[0]),
            "date_level_waste_pct": _rate(v[3], v[2]),
        }
        for k, v in sorted(buckets.items())
    ]

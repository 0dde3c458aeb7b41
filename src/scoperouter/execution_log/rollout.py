"""Rollout figures: shadow vs live, the measured baseline, and go / no-go per processor.

Invariant: every figure is per processor and per mode, and says where its baseline comes
from. For a (processor, game date) that the pipeline's run history covers
(:mod:`.run_history`), the date-level cost is the **recorded** ``duration_seconds`` of the
finished date-level runs on that date, and the routed cost is each routed run's own
completion duration when it reported one (live), else ``overhead_s + rate x processed``,
with ``rate`` the recorded seconds per record of that processor's date-level runs beyond
the fitted overhead (so a routed run as large as the full date costs exactly the recorded
mean). Where the history is missing for a processor and date, the figures for that date
fall back to the fitted cost model of :mod:`.analysis` (``saved rows x seconds_per_entity``)
and the processor's ``baseline`` says so (``run_history``, ``fitted_model`` or both).

A compared date on which the run history has date-level runs of the processor is
**covered** when the router looked at the processor for it: a run of it there (the log has
a row per date the planner's run named: a lookback date counts only when the planner ran
it), or a skip of its own that says why (``upstream_failed``, ``no_data``,
``skip_downstream``, ``irrelevant_fields``, for an event of a source it reads;
:func:`.rollout_coverage.skip_reason` re-derives it from the registry, the log keeps only
skip counts) whose event the planner would have run on that date
(:func:`.rollout_coverage.skip_dates`: re-planned at the event's logged ``as_of``, never
every date up to it), or an upstream whose output it reads (a source the log has events of)
is covered there (a date the upstream published nothing for left nothing to run). Else the
date is **uncovered** (its topic not subscribed, say): production's work there is not
saved -- moving the processor live would stop it -- so the date saves nothing and blocks
go. An input source of the processor with no event in the log at all (``unseen_sources``)
blocks go too: coverage is per date, so another source's events can cover every date while
that topic's changes would trigger nothing live. A processor is observed on the days it
decided an event of its own (a run, or such a skip). With the registry, a processor only
the log names (renamed or removed since) is listed as ``not-in-routes``, never judged.

A run is ``shadow`` when its dispatch status is ``shadow`` (the router planned and logged
it and called no target), ``replayed`` runs (``scoperouter replay``: nothing sent) take
routes.yaml's mode of their processor (``unknown`` without it), the others are ``live``.
A processor's mode is the one its runs show when
they agree, else the one the daemon logged for it at its last start (``serve --shadow``
included: it is not in routes.yaml; only the SQLite log keeps it), else, with runs of both
modes, routes.yaml's, else ``unknown``. Go / no-go: a processor not live is **go** when it
was routed at least once, has no uncovered day and no unseen input source, was observed on at least ``report.shadow_days`` days, saves more than
``report.wasted_hours_per_week`` hours a week, pays back its ``engineering_hours`` within
``report.payback_weeks`` weeks and (entity processors) wastes more than ``report.waste_pct``
at date level; the next processor to move live is the go processor saving the most.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

from scoperouter.execution_log.analysis import (
    ProcessorReport,
    Report,
    Run,
)
from scoperouter.execution_log.reader import EventRecord, LogData
from scoperouter.execution_log.rollout_coverage import (
    EXPLAINED_SKIPS,
    follow_upstreams,
    skip_dates,
)
from scoperouter.execution_log.run_history import History
from scoperouter.execution_log.runs import measured_runs
from scoperouter.processor_registry.compiled import CompiledRegistry
from scoperouter.processor_registry.models import ReportSpec
from scoperouter.processor_registry.relations import RelationStore

# The compared days of a processor: the game dates the router decided on for it, plus the
# dates in the log's game-date range on which the date-level pipeline ran it. Such a date
# the router did not run it for is work saved only when the router logged a skip of it
# saying why; else it is uncovered (the router never saw what made production run it).

SHADOW = "shadow"
LIVE = "live"
UNKNOWN = "unknown"
SHOWN_DAYS = 3  # uncovered days named in ``why`` (all are in ``uncovered_days``)
RUN_HISTORY = "run_history"
NOT_IN_ROUTES = "not-in-routes"  # a name only the log has: listed, never judged
FITTED = "fitted_model"


REPLAYED = "replayed"  # the status ``scoperouter replay`` writes: nothing was sent


def run_mode(r: Run, configured: str | None = None) -> str:
    """``shadow`` (status shadow), a ``replayed`` run's ``configured`` mode (routes.yaml's;
    else ``unknown``: nothing was sent, so it is not live), else ``live``."""
    if r.status == REPLAYED:
        return configured or UNKNOWN
    return SHADOW if r.status == SHADOW else LIVE


@dataclass
class RolloutProcessor:
    processor: str
    mode: str  # its runs' when they agree, else logged at the daemon's start (module doc)
    days_observed: int = 0
    runs: int = 0
    runs_shadow: int = 0
    runs_live: int = 0
    baseline: str = FITTED
    history_days: list[str] = field(default_factory=list)
    missing_history_days: list[str] = field(default_factory=list)
    uncovered_days: list[str] = field(default_factory=list)  # history runs, no decision
    unseen_sources: list[str] = field(default_factory=list)  # inputs without a logged event
    date_level_runs: int = 0  # recorded in the run history on the compared days
    date_level_hours: float = 0.0  # their recorded duration
    routed_hours: float = 0.0  # the routed runs on those days (measured or estimated)
    saved_hours: float = 0.0  # recorded days: date_level - routed (uncovered: 0); else fitted
    saved_hours_per_week: float = 0.0
    wasted_hours_per_week: float | None = None
    payback_weeks: float | None = None
    decision: str = "no-go"
    why: str = ""

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        for k, v in out.items():
            if isinstance(v, float):
                out[k] = None if math.isinf(v) or math.isnan(v) else round(v, 4)
        return out


@dataclass
class Rollout:
    processors: list[RolloutProcessor]
    by_mode: dict[str, dict[str, Any]]
    next_live: str | None
    next_live_why: str
    history: dict[str, Any] | None

    def to_json(self) -> dict[str, Any]:
        return {
            "by_mode": self.by_mode,
            "next_live": self.next_live,
            "next_live_why": self.next_live_why,
            "history": self.history,
            "processors": [p.to_json() for p in self.processors],
        }


def _routed_seconds(r: Run, overhead: float, rate: float, full: float) -> float:
    c = r.completion
    if c is not None and c.duration_s > 0:
        return c.duration_s
    p = r.processed
    return full if p is None else overhead + rate * p


def build_rollout(
    data: LogData,
    report: Report,
    *,
    modes: Mapping[str, str] | None = None,
    history: History | None = None,
    registry: CompiledRegistry | None = None,
    relations: RelationStore | None = None,
) -> Rollout:
    """Per processor: mode, measured (or fitted) savings, go / no-go; and the next to go live.
    ``registry`` says which processors skipped a logged event and why (without it, every
    processor counts as observed on every event day and no skip explains a day);
    ``relations`` lets a skip cover the lookback dates the planner would have run for its
    event (without them, its event's own dates and ahead days only)."""
    th: ReportSpec = report.thresholds
    weeks = report.days_observed / 7.0
    runs, _, _ = measured_runs(data)  # full-date sizes as the report's: the same savings
    per_runs: dict[str, list[Run]] = defaultdict(list)
    for r in runs:
        per_runs[r.processor].append(r)
    days_seen: dict[str, set[date]] = defaultdict(set)
    game_dates: dict[str, set[date]] = defaultdict(set)
    # the dates the router looked at for a processor: those its own decisions decided about
    # -- a run's rows (one per date the planner's run named, its lookback dates included
    # only when the planner ran them), an explaining skip's the dates the planner would have
    # run for its event (:func:`.rollout_coverage.skip_dates`) -- never a date merely below
    # the lookback's ``as_of`` upper bound (production's own work there is not covered)
    looked: dict[str, set[date]] = defaultdict(set)
    by_id = {rec.event.event_id: rec for rec in data.events} if registry is not None else {}
    skipped: dict[str, dict[str, tuple[date, ...]]] = {}  # event id -> processor -> dates

    def skip_of(rec: EventRecord) -> dict[str, tuple[date, ...]]:
        got = skipped.get(rec.event.event_id)
        if got is None:
            assert registry is not None
            got = skipped[rec.event.event_id] = skip_dates(registry, relations, rec)
        return got

    for d in data.decisions:
        if d.action != "run" and d.reason not in EXPLAINED_SKIPS:
            continue  # a skip row (logs before skips were aggregated) of a source it ignores
        if d.decided_at is not None:
            days_seen[d.processor].add(d.decided_at.date())
        if d.game_date is not None:
            game_dates[d.processor].add(d.game_date)
            looked[d.processor].add(d.game_date)
        rec = by_id.get(d.event_id) if d.event_id is not None else None
        if d.action != "run" and rec is not None:  # a skip row: the planner's dates of it
            looked[d.processor].update(skip_of(rec).get(d.processor, ()))
    # skips are aggregated on the event row (counts per reason): the registry says whose
    names = [pr.processor for pr in report.processors]
    for rec in data.events:
        ev = rec.event
        if registry is None:  # unknown whose: every processor decided on it, none explains
            if rec.skips:
                on = ev.game_date or ev.start_date
                for name in names:
                    days_seen[name].add(rec.decided_at.date())
                    if on is not None:
                        game_dates[name].add(on)
            continue
        for name, dates in skip_of(rec).items():
            days_seen[name].add(rec.decided_at.date())
            game_dates[name].update(ev.dates())
            looked[name].update(dates)
    seen = {rec.event.source for rec in data.events}
    if registry is not None:
        follow_upstreams(looked, per_runs, registry, seen)
    all_dates = [d.game_date for d in data.decisions if d.game_date is not None]
    all_dates += [on for rec in data.events if (on := rec.event.game_date or rec.event.start_date)]
    hist_by_proc: dict[str, list[tuple[float, int]]] = defaultdict(list)
    if history is not None and all_dates:
        lo, hi = min(all_dates), max(all_dates)
        for (name, day), hr in history.runs.items():
            hist_by_proc[name] += [(h.duration_s, h.records_processed) for h in hr]
            if lo <= day <= hi:  # the date-level pipeline ran it in the compared range
                game_dates[name].add(day)

    out: list[RolloutProcessor] = []
    for pr in report.processors:
        proc = registry.processors.get(pr.processor) if registry is not None else None
        unseen = sorted(set(proc.inputs) - seen) if proc is not None else []
        out.append(
            _one(
                unseen,
                pr,
                per_runs.get(pr.processor, []),
                looked.get(pr.processor, set()),
                days_seen,
                game_dates,
                hist_by_proc,
                history,
                modes,
                data.modes,
                th,
                weeks,
            )
        )
    for p in out:
        if registry is not None and p.processor not in registry.processors:
            p.decision = NOT_IN_ROUTES
            p.why = (
                "not in routes.yaml (renamed or removed since it was logged): not judged; "
                "its runs and skips are not the registry processor's evidence"
            )
    judged = [p for p in out if p.decision != NOT_IN_ROUTES]
    go = [p for p in judged if p.decision == "go"]
    nxt = max(go, key=lambda p: p.saved_hours_per_week) if go else None
    if nxt is not None:
        why = (
            f"{nxt.processor}: {nxt.days_observed} day(s) observed, {nxt.runs} runs, "
            f"{nxt.saved_hours_per_week:.2f} h saved/week ({nxt.baseline}), payback "
            f"{_weeks(nxt.payback_weeks)} weeks; thresholds: >= {th.shadow_days} days, "
            f"> {th.wasted_hours_per_week:g} h/week, payback < {th.payback_weeks:g} weeks"
        )
    else:
        why = "no processor in shadow passes the thresholds yet"
    by_mode: dict[str, dict[str, Any]] = {}
    present = {p.mode for p in judged}
    for mode in (SHADOW, LIVE, *sorted(present - {SHADOW, LIVE})):  # unknown when there is one
        ps = [p for p in judged if p.mode == mode]
        by_mode[mode] = {
            "processors": [p.processor for p in ps],
            "runs": sum(
                p.runs_shadow if mode == SHADOW else p.runs_live if mode == LIVE else 0
                for p in judged
            ),
            "saved_hours": round(sum(p.saved_hours for p in ps), 4),
            "saved_hours_per_week": round(sum(p.saved_hours_per_week for p in ps), 4),
        }
    return Rollout(
        out,
        by_mode,
        nxt.processor if nxt else None,
        why,
        history.to_json() if history is not None else None,
    )


def _one(
    unseen: list[str],
    pr: ProcessorReport,
    runs: list[Run],
    looked: set[date],
    days_seen: Mapping[str, set[date]],
    game_dates: Mapping[str, set[date]],
    hist_by_proc: Mapping[str, list[tuple[float, int]]],
    history: History | None,
    modes: Mapping[str, str] | None,
    logged_modes: Mapping[str, str] | None,
    th: ReportSpec,
    weeks: float,
) -> RolloutProcessor:
    name = pr.processor
    configured = (modes or {}).get(name)
    run_modes = [run_mode(r, configured) for r in runs]
    shadow, live = run_modes.count(SHADOW), run_modes.count(LIVE)
    logged = (logged_modes or {}).get(name)
    if runs and len(set(run_modes)) == 1 and UNKNOWN not in run_modes:  # one mode in the log
        mode = run_modes[0]  # (serve --shadow included; replayed runs: routes.yaml's)
    elif logged is not None:  # the daemon's at its last start (serve --shadow included)
        mode = logged
    elif runs:  # both modes in the log (a processor moved): routes.yaml says
        mode = configured or (LIVE if live else UNKNOWN)
    else:  # no run and no logged mode: routes.yaml cannot know serve --shadow
        mode = UNKNOWN
    rp = RolloutProcessor(
        processor=name,
        mode=mode,
        days_observed=len(days_seen.get(name, ())),
        runs=len(runs),
        runs_shadow=shadow,
        runs_live=live,
        unseen_sources=unseen,
    )
    hp = hist_by_proc.get(name, [])
    mean_dur = sum(d for d, _ in hp) / len(hp) if hp else 0.0
    mean_rec = sum(n for _, n in hp) / len(hp) if hp else 0.0
    overhead = min(pr.overhead_s, mean_dur)
    rate = (mean_dur - overhead) / mean_rec if mean_rec > 0 else 0.0
    spe = pr.seconds_per_entity
    by_date: dict[date | None, list[Run]] = defaultdict(list)
    for r in runs:
        if not r.failed:
            by_date[r.game_date].append(r)
    covered = looked | {r.game_date for r in runs if r.game_date is not None}
    saved_s = date_s = routed_s = 0.0
    measured = fitted = False
    for d in sorted(game_dates.get(name, set()) | {k for k in by_date if k is not None}):
        hr = history.runs.get((name, d)) if history is not None else None
        rs = by_date.get(d, [])
        if hr:
            measured = True
            rp.history_days.append(d.isoformat())
            rp.date_level_runs += len(hr)
            ds = sum(h.duration_s for h in hr)
            date_s += ds
            if d not in covered:  # production ran it, the router never looked: not saved
                rp.uncovered_days.append(d.isoformat())
                continue
            rt = sum(_routed_seconds(r, overhead, rate, mean_dur) for r in rs)
            routed_s += rt
            saved_s += ds - rt
        elif rs:
            fitted = True
            rp.missing_history_days.append(d.isoformat())
            saved_s += spe * sum(
                max(0, r.baseline - r.processed)
                for r in rs
                if r.scope == "entities" and r.baseline is not None and r.processed is not None
            )
    rp.baseline = "+".join(s for s, on in ((RUN_HISTORY, measured), (FITTED, fitted)) if on) or (
        FITTED
    )
    rp.date_level_hours = date_s / 3600.0
    rp.routed_hours = routed_s / 3600.0
    rp.saved_hours = saved_s / 3600.0
    rp.saved_hours_per_week = rp.saved_hours / weeks if weeks > 0 else 0.0
    if measured and pr.date_level_waste_pct is not None:
        rp.wasted_hours_per_week = rp.date_level_hours * pr.date_level_waste_pct / 100.0 / weeks
    elif pr.date_level_wasted_hours_per_week is not None:
        rp.wasted_hours_per_week = pr.date_level_wasted_hours_per_week
    if rp.saved_hours_per_week > 0:
        rp.payback_weeks = pr.engineering_hours / rp.saved_hours_per_week
    else:
        rp.payback_weeks = math.inf
    rp.decision, rp.why = _go(rp, pr, th)
    return rp


def _weeks(w: float | None) -> str:
    return "never" if w is None or math.isinf(w) else f"{w:.1f}"


def _uncovered(days: list[str]) -> str:
    """The uncovered days for ``why``: how many, the first :data:`SHOWN_DAYS` by date."""
    if not days:
        return "no day uncovered"
    more = len(days) - SHOWN_DAYS
    return (
        f"{len(days)} day(s) uncovered (production ran it; the router neither routed it nor "
        f"logged a skip of it): {', '.join(days[:SHOWN_DAYS])}"
        + (f" and {more} more" if more > 0 else "")
    )


def _unseen(sources: list[str]) -> str:
    """The input sources the log has no event of, for ``why``."""
    if not sources:
        return "every input source seen"
    return (
        f"no event of input{'s' if len(sources) > 1 else ''} {', '.join(sources)} in the log "
        "(topic not subscribed?): live, nothing would route its changes, and its runs count "
        "as saved"
    )


def _go(rp: RolloutProcessor, pr: ProcessorReport, th: ReportSpec) -> tuple[str, str]:
    if rp.mode == LIVE:
        return "live", "already live"
    if rp.runs == 0 and rp.date_level_runs == 0:
        return "no-go", "no runs observed"
    payback = rp.payback_weeks if rp.payback_weeks is not None else math.inf
    checks = [
        (rp.runs > 0, f"{rp.runs} routed runs" if rp.runs else "no routed run"),
        (not rp.uncovered_days, _uncovered(rp.uncovered_days)),
        (not rp.unseen_sources, _unseen(rp.unseen_sources)),
        (
            rp.days_observed >= th.shadow_days,
            f"{rp.days_observed} day(s) observed {'>=' if rp.days_observed >= th.shadow_days else '<'} {th.shadow_days}",
        ),
        (
            rp.saved_hours_per_week > th.wasted_hours_per_week,
            f"{rp.saved_hours_per_week:.2f} h saved/week {'>' if rp.saved_hours_per_week > th.wasted_hours_per_week else '<='} {th.wasted_hours_per_week:g}",
        ),
        (
            payback < th.payback_weeks,
            f"payback {_weeks(payback)} {'<' if payback < th.payback_weeks else '>='} {th.payback_weeks:g} weeks",
        ),
    ]
    waste = pr.date_level_waste_pct
    if pr.granularity != "date" and waste is not None:
        checks.append(
            (
                waste > th.waste_pct,
                f"date-level waste {waste:.0f}% {'>' if waste > th.waste_pct else '<='} {th.waste_pct:g}%",
            )
        )
    src = f" [{rp.baseline}]"
    if all(ok for ok, _ in checks):
        return "go", "; ".join(t for _, t in checks) + src
    return "no-go", "; ".join(t for ok, t in checks if not ok) + src

"""Run a game day twice -- date level and routed -- and compare the warehouses row by row.

* **Date level** (today's behaviour): every message re-runs every processor that reads its
  source for the whole date (plus the later dates its lookback covers, so the baseline is
  correct), and every run publishes a date-level completion message, which cascades the
  same way. A run whose inputs are unchanged since its previous identical run is not
  re-executed (its output is provably the same) but its cost is still counted.
* **Routed**: every message goes through :func:`scoperouter.router.planner.plan` and a
  :class:`scoperouter.router.windows.WindowBook` on a virtual clock; fired triggers are
  executed by the reference processors, which publish only what changed (sender-side
  change detection); those completion events are planned again (the cascade).

Both modes start from the same overnight warehouse and see the same Phase 2 updates.
:func:`minimum_work` measures the work neither mode can avoid from ground truth (a full
recompute after every update), independently of both runs.
Costs use :class:`CostModel`: ``overhead_s`` per run plus ``seconds_per_row`` per entity row
processed (a full Phase 3 run of 450 players takes 30 s). Runs execute when they start
(reading the state at that instant); their completion events arrive ``duration`` later.
"""

from __future__ import annotations

import heapq
import itertools
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import cached_property
from typing import Any, Literal, Protocol

from scoperouter.errors import EventError
from scoperouter.examples.nba.processors import (
    BY_NAME,
    ORDER,
    OUTPUT_SOURCES,
    build_all,
    new_warehouse,
    run,
)
from scoperouter.examples.nba.season import Season, generate_season
from scoperouter.examples.nba.stream import Update, apply_update, game_day_stream, produced_at
from scoperouter.examples.nba.warehouse import Warehouse, diff_dumps
from scoperouter.execution_log.api import ExecutionLog
from scoperouter.messages.models import Event, Trigger
from scoperouter.messages.normalize import normalize_event
from scoperouter.processor_registry.compiled import CompiledProcessor, CompiledRegistry
from scoperouter.processor_registry.relations import InMemoryRelations
from scoperouter.router.planner import plan
from scoperouter.router.windows import WindowBook
from scoperouter.sdk.change_detection import ChangeDetector

FULL_PHASE3_PLAYERS = 450
FULL_PHASE3_SECONDS = 30.0


@dataclass(frozen=True)
class CostModel:
    seconds_per_row: float = FULL_PHASE3_SECONDS / FULL_PHASE3_PLAYERS
    overhead_s: float = 0.5

    def seconds(self, rows: int) -> float:
        return self.overhead_s + rows * self.seconds_per_row


@dataclass(frozen=True)
class Job:
    """One processor run: dates and scope (``ids=None`` = full date)."""

    processor: str
    dates: tuple[date, ...]
    ids: tuple[str, ...] | None
    priority: Literal["normal", "critical"] = "normal"
    correlation_id: str | None = None
    run_id: str = ""


@dataclass
class ModeStats:
    processor_runs: int = 0
    entity_rows: int = 0
    simulated_seconds: float = 0.0
    changed_rows: int = 0  # rows this mode's runs changed (a date-granularity run: its date)
    by_processor: dict[str, list[int]] = field(default_factory=dict)  # name -> [runs, rows]
    rejected_events: int = 0
    end_time: float = 0.0

    def entity_processor_rows(self) -> int:
        """Entity rows processed by processors whose granularity is not ``date``."""
        return sum(
            v[1] for name, v in self.by_processor.items() if BY_NAME[name].granularity != "date"
        )

    def to_json(self) -> dict[str, object]:
        return {
            "processor_runs": self.processor_runs,
            "entity_rows": self.entity_rows,
            "simulated_seconds": round(self.simulated_seconds, 1),
        }


class Router(Protocol):
    def route(self, raw: Mapping[str, Any], now: float) -> list[Job]: ...
    def due(self, now: float) -> list[Job]: ...
    def next_deadline(self) -> float | None: ...


def _date_range(start: date, end: date) -> tuple[date, ...]:
    return tuple(start + timedelta(days=i) for i in range((end - start).days + 1))


def lookback_dates(
    proc: CompiledProcessor, relations: InMemoryRelations, day: date, as_of: date
) -> tuple[date, ...]:
    """Later dates a date-level run of ``proc`` on ``day`` must also cover (capped at as_of)."""
    lb = proc.lookback
    if lb is None:
        return ()
    if lb.days is not None:
        return tuple(
            d
            for d in _date_range(day + timedelta(days=1), day + timedelta(days=lb.days))
            if d <= as_of
        )
    assert lb.count is not None and lb.via is not None
    later: set[date] = set()
    for eid in relations.sources_on(lb.via, day):
        later.update(d for d in relations.next_dates(lb.via, eid, day, lb.count) if d <= as_of)
    return tuple(sorted(later))


class DateLevelRouter:
    """Today's behaviour: every consumer of the source, full date, at once."""

    def __init__(
        self,
        registry: CompiledRegistry,
        relations: InMemoryRelations,
        as_of: date,
        *,
        rerun_lookback: bool = True,
    ) -> None:
        self.registry, self.relations, self.as_of = registry, relations, as_of
        self.rerun_lookback = rerun_lookback
        self.rejected = 0
        self._later: dict[tuple[str, date], tuple[date, ...]] = {}  # lookback_dates, memoised

    def route(self, raw: Mapping[str, Any], now: float) -> list[Job]:
        try:
            ev = normalize_event(dict(raw), self.registry)
        except EventError:
            self.rejected += 1
            return []
        if ev.status not in ("success", "partial") or ev.game_date is None:
            return []
        jobs = []
        for ci in self.registry.by_source.get(ev.source, ()):
            proc = self.registry.processors[ci.processor]
            key = (ci.processor, ev.game_date)
            if self.rerun_lookback and key not in self._later:
                self._later[key] = lookback_dates(proc, self.relations, ev.game_date, self.as_of)
            later = self._later[key] if self.rerun_lookback else ()
            dates = (ev.game_date, *later)
            jobs.append(Job(ci.processor, dates, None, ev.priority, ev.correlation_id, ev.event_id))
        return jobs

    def due(self, now: float) -> list[Job]:
        return []

    def next_deadline(self) -> float | None:
        return None


class PlannedRouter:
    """The router: planner + coalescing windows on the caller's clock. With ``log``, every
    decision, dispatch and completion goes to the execution log (virtual timestamps)."""

    def __init__(
        self,
        registry: CompiledRegistry,
        relations: InMemoryRelations,
        as_of: date,
        log: ExecutionLog | None = None,
    ) -> None:
        self.registry, self.relations, self.as_of = registry, relations, as_of
        self.book = WindowBook(registry)
        self.rejected = 0
        self.decisions = 0
        self.log = log

    def _job(self, t: Trigger, now: float) -> Job:
        if self.log is not None:
            at = produced_at(self.as_of, now)
            self.log.record_dispatch(
                t.model_copy(update={"fired_at": at}),
                status="ok",
                attempts=1,
                latency_ms=0.0,
                dispatched_at=at,
            )
        return Job(
            t.processor,
            _date_range(t.start_date, t.end_date),
            t.entity_ids if t.scope == "entities" else None,
            t.priority,
            t.correlation_id,
            t.trigger_id,
        )

    def route(self, raw: Mapping[str, Any], now: float) -> list[Job]:
        try:
            ev: Event = normalize_event(dict(raw), self.registry)
        except EventError:
            self.rejected += 1
            return []
        decisions = plan(self.registry, self.relations, ev, self.as_of)
        if self.log is not None:
            self.log.record_decisions(
                ev,
                decisions,
                produced_at(self.as_of, now),
                registry=self.registry,
                relations=self.relations,
                as_of=self.as_of,
            )
        fired: list[Trigger] = []
        for d in decisions:
            if d.action == "run":
                self.decisions += 1
            fired.extend(self.book.add(ev, d, now))
        return [self._job(t, now) for t in fired]

    def due(self, now: float) -> list[Job]:
        return [self._job(t, now) for t in self.book.due(now)]

    def next_deadline(self) -> float | None:
        return self.book.next_deadline()

    def completed(self, job: Job, rows: int, changed: int, duration_s: float) -> None:
        """What the processor reports after the run (the SDK's completion report)."""
        if self.log is not None:
            for day in job.dates:
                self.log.record_completion(
                    job.processor,
                    day,
                    trigger_id=job.run_id,
                    records_processed=rows,
                    entities_changed=changed,
                    duration_s=duration_s,
                )


def simulate(
    wh: Warehouse,
    updates: Iterable[Update],
    router: Router,
    registry: CompiledRegistry,
    game_date: date,
    cost: CostModel,
    *,
    date_level: bool = False,
    on_run: Callable[[Job, float, float, int, frozenset[str]], None] | None = None,
) -> ModeStats:
    """Drive ``updates`` through ``router`` on a virtual clock, executing every job."""
    stats = ModeStats()
    seq = itertools.count()
    heap: list[tuple[float, int, str, Any]] = []
    for u in updates:
        heapq.heappush(heap, (u.at, next(seq), "update", u))
    # source -> dates of the writes that changed it. Processors read their inputs on dates
    # <= the date they compute, so (processor, d) is unchanged while no input changed on or
    # before d: that is the date-level memo key.
    changes_at: dict[str, list[date]] = {}

    def version(sources: Iterable[str], d: date) -> tuple[int, ...]:
        return tuple(sum(1 for x in changes_at.get(s, ()) if x <= d) for s in sources)

    memo: dict[tuple[str, date], tuple[tuple[int, ...], int]] = {}

    def execute(job: Job, now: float) -> None:
        ref = BY_NAME[job.processor]
        proc = registry.processors.get(job.processor)
        publishes = proc.publishes if proc is not None and proc.publishes else ref.publishes
        detector = ChangeDetector(publishes, ref.entity_type)
        rows = changed = 0
        changed_ids: set[str] = set()
        ids = frozenset(job.ids) if job.ids is not None else None
        for day in job.dates:
            key = (job.processor, day)
            watched = (*sorted(ref.reads), ref.publishes)
            vkey = version(watched, day)
            if date_level and key in memo and memo[key][0] == vkey:
                rows += memo[key][1]  # inputs unchanged since the last run: same output
                continue
            res = run(wh, ref, day, ids, detector)
            rows += res.rows
            changed_ids.update(res.changes.entities)
            if res.changes.entities:
                changes_at.setdefault(ref.publishes, []).append(day)
                changed += res.rows if ref.granularity == "date" else len(res.changes.entities)
            if ids is None:
                memo[key] = (version(watched, day), res.rows)
        dur = cost.seconds(rows)
        stats.processor_runs += 1
        stats.entity_rows += rows
        stats.changed_rows += changed
        stats.simulated_seconds += dur
        stats.end_time = max(stats.end_time, now + dur)
        agg = stats.by_processor.setdefault(job.processor, [0, 0])
        agg[0] += 1
        agg[1] += rows
        if on_run is not None:
            on_run(job, now, dur, rows, frozenset(changed_ids))
        if isinstance(router, PlannedRouter):
            router.completed(job, rows, len(changed_ids), dur)
        done = produced_at(game_date, now + dur)
        if date_level:  # date level: every run announces the whole date, changed or not
            for day in job.dates:
                ev: dict[str, Any] = {
                    "event_id": f"dl-{next(seq)}",
                    "source": publishes,
                    "game_date": day.isoformat(),
                    "status": "success",
                    "priority": job.priority,
                    "produced_at": done.isoformat(),
                }
                if job.correlation_id is not None:
                    ev["correlation_id"] = job.correlation_id
                heapq.heappush(heap, (now + dur, next(seq), "event", ev))
            return
        for ev in detector.events(
            run_id=job.run_id,
            priority=job.priority,
            correlation_id=job.correlation_id,
            produced_at=done,
        ):
            heapq.heappush(heap, (now + dur, next(seq), "event", ev))

    while True:
        t_ev = heap[0][0] if heap else None
        t_dl = router.next_deadline()
        if t_ev is None and t_dl is None:
            break
        if t_dl is not None and (t_ev is None or t_dl <= t_ev):
            now = t_dl
            jobs = router.due(now)
        else:
            now, _, kind, payload = heapq.heappop(heap)
            if kind == "update":
                msg = apply_update(wh, payload, game_date)
                changes_at.setdefault(payload.source, []).append(payload.day)
                if msg is None:
                    continue
                jobs = router.route(msg, now)
            else:
                jobs = router.route(payload, now)
        for job in sorted(jobs, key=lambda j: (j.processor, j.dates)):
            execute(job, now)
    return stats


@dataclass
class GameDay:
    """The inputs of one run: season, overnight warehouse, stream, registry, relations."""

    season: Season
    overnight: Warehouse
    updates: tuple[Update, ...]
    registry: CompiledRegistry
    relations: InMemoryRelations

    @property
    def game_date(self) -> date:
        return self.season.game_date


def prepare(season: Season, registry: CompiledRegistry, relations: InMemoryRelations) -> GameDay:
    missing = sorted(set(registry.processor_names) - set(BY_NAME))
    if missing:
        from scoperouter.errors import ConfigError

        raise ConfigError(
            f"no reference processor for: {', '.join(missing)} (the demo runs the NBA "
            "reference pipeline; it reads ./routes.yaml when present: run it from another "
            "directory to use the NBA registry shipped with scoperouter)"
        )
    wh = new_warehouse(season.rosters)
    wh.load_season(season)
    build_all(wh, season.dates())
    return GameDay(season, wh, game_day_stream(season, wh), registry, relations)


Dump = Mapping[str, Mapping[tuple[str, str], tuple[object, ...]]]
_PUBLISHER = {BY_NAME[n].publishes: n for n in ORDER}


@dataclass(frozen=True)
class MinimumWork:
    """Entity rows that no correct pipeline can avoid, per processor, from ground truth.

    ``per_update``: the stream's updates are applied one at a time, in arrival order, and
    after each one every date it can reach is rebuilt from the raw tables (a full recompute,
    independent of both runs). Every output row that differs from before the update counts
    once. A date-granularity processor can only recompute its whole date, so it counts the
    whole date (every row it has on that date) for each update that changed any row of it.
    This is the least work of a pipeline that brings every output up to date after every
    update; coalescing updates in a window can go below it.

    ``per_day``: the same between the overnight state and the end of the day -- each changed
    row once, a date-granularity processor's date once. Only a pipeline that held every
    update until the end of the day (stale outputs all day) could reach it; reported for
    transparency, not as a target.

    ``dag_date_level_rows`` is not a minimum but a second baseline, for comparison: the rows
    an orchestrator would process if it ran the registry's DAG once per update at date
    level -- every (processor, date) reachable from the update's message (consumers,
    their lookback dates, and so on downstream), each once, for the whole date. Today's
    pipeline is worse: it re-runs a consumer for every completion message it receives.
    """

    per_update: Mapping[str, int]
    per_day: Mapping[str, int]
    dag_date_level_rows: int = 0

    def rows(self, *, per_day: bool = False, entity_processors_only: bool = False) -> int:
        counts = self.per_day if per_day else self.per_update
        return sum(
            n
            for name, n in counts.items()
            if not (entity_processors_only and BY_NAME[name].granularity == "date")
        )


def _count_changes(before: Dump, after: Dump, into: Counter[str]) -> None:
    """Add the rows that differ between two dumps to ``into``, per processor (a
    date-granularity processor: all of its rows on every date with a difference)."""
    for source, keys in diff_dumps(before, after).items():
        name = _PUBLISHER[source]
        if BY_NAME[name].granularity != "date":
            into[name] += len(keys)
            continue
        for day in {d for d, _ in keys}:
            into[name] += _rows_on(before, after, source, day)


def _rows_on(before: Dump, after: Dump, source: str, day: str) -> int:
    """Rows ``source`` has on ``day`` (ISO) before or after: what a whole-date run processes."""
    return len({k for k in (*before[source], *after[source]) if k[0] == day})


def minimum_work(day: GameDay) -> MinimumWork:
    """Ground-truth minimum work of ``day`` (see :class:`MinimumWork`)."""
    wh = day.overnight.copy()
    dates = day.season.dates()
    per_update: Counter[str] = Counter()
    dag_rows = 0
    start = wh.dump(OUTPUT_SOURCES)
    for u in sorted(day.updates, key=lambda u: u.at):  # the order simulate() applies them
        before = wh.dump(OUTPUT_SOURCES, since=u.day)
        msg = apply_update(wh, u, day.game_date)
        # processors read dates <= the date they compute: dates before u.day cannot change
        build_all(wh, tuple(d for d in dates if d >= u.day))
        after = wh.dump(OUTPUT_SOURCES, since=u.day)
        _count_changes(before, after, per_update)
        for name, d in _dag_reach(day, msg):
            dag_rows += _rows_on(before, after, BY_NAME[name].publishes, d.isoformat())
    per_day: Counter[str] = Counter()
    _count_changes(start, wh.dump(OUTPUT_SOURCES), per_day)
    wh.close()
    return MinimumWork(dict(per_update), dict(per_day), dag_rows)


def _dag_reach(day: GameDay, msg: Mapping[str, Any] | None) -> set[tuple[str, date]]:
    """Every (processor, date) a date-level DAG run for ``msg`` executes (see MinimumWork)."""
    if msg is None:
        return set()
    try:
        ev = normalize_event(dict(msg), day.registry)
    except EventError:
        return set()
    if ev.status not in ("success", "partial") or ev.game_date is None:
        return set()
    seen: set[tuple[str, date]] = set()
    frontier = [(ev.source, ev.game_date)]
    while frontier:
        source, d = frontier.pop()
        for ci in day.registry.by_source.get(source, ()):
            proc = day.registry.processors[ci.processor]
            for dd in (d, *lookback_dates(proc, day.relations, d, day.game_date)):
                if (ci.processor, dd) not in seen:
                    seen.add((ci.processor, dd))
                    frontier.append((BY_NAME[ci.processor].publishes, dd))
    return seen


@dataclass
class Comparison:
    day: GameDay
    seed: int
    game_date: date
    events: int
    outputs_identical: bool
    missed_updates: int
    date_level: ModeStats
    routed: ModeStats
    differing: dict[str, list[tuple[str, str]]]
    routed_wh: Warehouse
    date_wh: Warehouse

    @property
    def work_ratio(self) -> float:
        return self.date_level.entity_rows / max(1, self.routed.entity_rows)

    @cached_property
    def minimum(self) -> MinimumWork:
        """Ground truth, computed on first use (a full recompute after every update)."""
        return minimum_work(self.day)

    @property
    def routed_vs_minimum(self) -> float:
        """Routed entity rows / the per-update minimum (every processor)."""
        return self.routed.entity_rows / max(1, self.minimum.rows())

    @property
    def routed_vs_minimum_entity_processors(self) -> float:
        """The same ratio over processors of entity granularity (``date`` ones excluded)."""
        return self.routed.entity_processor_rows() / max(
            1, self.minimum.rows(entity_processors_only=True)
        )

    @property
    def work_ratio_vs_dag_date_level(self) -> float:
        """DAG-orchestrated date-level rows (once per reachable pair per update) / routed."""
        return self.minimum.dag_date_level_rows / max(1, self.routed.entity_rows)

    @property
    def routed_vs_day_minimum(self) -> float:
        """Routed entity rows / the end-of-day lower bound (not reachable online)."""
        return self.routed.entity_rows / max(1, self.minimum.rows(per_day=True))


def run_date_level(
    day: GameDay,
    *,
    cost: CostModel | None = None,
    registry: CompiledRegistry | None = None,
    rerun_lookback: bool = True,
) -> tuple[ModeStats, Warehouse]:
    """Today's behaviour on a copy of the overnight warehouse. ``rerun_lookback=False``
    re-runs only the message's date (cheaper, but misses lookback dates: not correct)."""
    reg = registry or day.registry
    wh = day.overnight.copy()
    router = DateLevelRouter(reg, day.relations, day.game_date, rerun_lookback=rerun_lookback)
    stats = simulate(
        wh, day.updates, router, reg, day.game_date, cost or CostModel(), date_level=True
    )
    stats.rejected_events = router.rejected
    return stats, wh


def run_routed(
    day: GameDay,
    *,
    cost: CostModel | None = None,
    registry: CompiledRegistry | None = None,
    log: ExecutionLog | None = None,
) -> tuple[ModeStats, Warehouse]:
    """The router (planner + windows) on a copy of the overnight warehouse."""
    reg = registry or day.registry
    wh = day.overnight.copy()
    router = PlannedRouter(reg, day.relations, day.game_date, log)
    stats = simulate(wh, day.updates, router, reg, day.game_date, cost or CostModel())
    stats.rejected_events = router.rejected
    return stats, wh


def compare(
    day: GameDay,
    *,
    cost: CostModel | None = None,
    baseline_registry: CompiledRegistry | None = None,
    baseline: tuple[ModeStats, Warehouse] | None = None,
    log: ExecutionLog | None = None,
) -> Comparison:
    """Run the day date level (with ``baseline_registry``, default the same registry; or
    reuse ``baseline``) and routed (with ``day.registry``); compare every output table row
    by row. With ``log``, the routed run's decisions, dispatches and completions are logged."""
    dstats, date_wh = baseline or run_date_level(day, cost=cost, registry=baseline_registry)
    rstats, routed_wh = run_routed(day, cost=cost, log=log)
    diff = diff_dumps(date_wh.dump(OUTPUT_SOURCES), routed_wh.dump(OUTPUT_SOURCES))
    return Comparison(
        day=day,
        seed=day.season.seed,
        game_date=day.game_date,
        events=len(day.updates),
        outputs_identical=not diff,
        missed_updates=sum(len(v) for v in diff.values()),
        date_level=dstats,
        routed=rstats,
        differing=diff,
        routed_wh=routed_wh,
        date_wh=date_wh,
    )


def truth(day: GameDay, wh: Warehouse) -> dict[str, list[tuple[str, str]]]:
    """Rows of ``wh`` that differ from a full rebuild of every date from its raw tables."""
    fresh = wh.copy()
    build_all(fresh, day.season.dates())
    return diff_dumps(fresh.dump(OUTPUT_SOURCES), wh.dump(OUTPUT_SOURCES))


@dataclass(frozen=True)
class SingleUpdate:
    """Latency of one player's change, date level and routed (simulated seconds from t=0).

    ``*_s`` (reaches every phase): per phase 3-6 the end of the FIRST run that rewrote the
    player's row; the slowest phase counts. ``*_all_s`` (every consumer done): the end of the
    LAST run, of any processor, that rewrote the player's row -- including date-granularity
    processors such as ``daily_predictions_exporter``; ``*_slowest`` names that processor."""

    player: str
    date_level_s: float
    routed_s: float
    date_level_all_s: float
    routed_all_s: float
    date_level_slowest: str
    routed_slowest: str


def single_update(day: GameDay, cost: CostModel | None = None) -> SingleUpdate:
    """One player's injury change (critical, just before tip-off) through every phase,
    run date level and routed on copies of the overnight warehouse."""
    cost = cost or CostModel()
    gd = day.game_date
    wh0 = day.overnight
    players = sorted(
        p
        for p in wh0.rows("nba_analytics.upcoming_player_game_context", gd)
        if p in wh0.rows("nba_predictions.ml_feature_store_v2", gd)
    )
    inj = wh0.rows("nba_raw.nbac_injury_report", gd)
    player = players[0]
    status = "out" if inj.get(player, {}).get("injury_status") != "out" else "questionable"
    upd = Update(
        0.0,
        f"single injury {player}",
        "nba_raw.nbac_injury_report",
        gd,
        (
            (
                player,
                (
                    ("injury_reason", "Ankle sprain"),
                    ("injury_status", status),
                    ("team", wh0.player_team[player]),
                ),
            ),
        ),
        "player",
        priority="critical",
    )
    results: list[tuple[float, float, str]] = []
    for router in (
        DateLevelRouter(day.registry, day.relations, gd),
        PlannedRouter(day.registry, day.relations, gd),
    ):
        reached: dict[int, float] = {}  # phase -> end of its first run that rewrote the row
        last: dict[str, float] = {}  # processor -> end of its last run that rewrote the row

        def on_run(
            job: Job,
            now: float,
            dur: float,
            rows: int,
            changed: frozenset[str],
            reached: dict[int, float] = reached,
            last: dict[str, float] = last,
        ) -> None:
            if player in changed:
                phase = BY_NAME[job.processor].phase
                reached[phase] = min(reached.get(phase, now + dur), now + dur)
                last[job.processor] = max(last.get(job.processor, 0.0), now + dur)

        simulate(
            wh0.copy(),
            (upd,),
            router,
            day.registry,
            gd,
            cost,
            date_level=isinstance(router, DateLevelRouter),
            on_run=on_run,
        )
        slowest = max(sorted(last), key=lambda n: last[n]) if last else ""
        results.append(
            (max(reached.values()) if reached else 0.0, last[slowest] if last else 0.0, slowest)
        )
    (dl_s, dl_all, dl_slow), (ro_s, ro_all, ro_slow) = results
    return SingleUpdate(player, dl_s, ro_s, dl_all, ro_all, dl_slow, ro_slow)


def default_day(
    seed: int, game_date: date, registry: CompiledRegistry, relations: InMemoryRelations
) -> GameDay:
    return prepare(generate_season(seed, game_date), registry, relations)

"""One backfill from a request to its end, shared by the CLI and ``POST /backfills``:
plan (or resume), policies from the registry, run, summarise.

Invariant: the resume key is the request plus the registry digest; everything else
(as-of, relations) is fixed when the backfill is first planned and stored with it. A
finished backfill is resumed too (nothing to run, :attr:`Prepared.finished` says so); only
``rerun`` plans the same request again, as a new backfill, and never while the stored one
runs. Resumed
as of a later date, every date the stored plan leaves out is named
(:attr:`Prepared.stale_after`): the requested dates its as-of cut off and, with lookbacks,
the later dates that read the re-run dates. Planned new with ``--end`` past the as-of date,
the requested dates after it are named too (:attr:`Prepared.cut_off`): no date asked for
is left out silently.
"""

from __future__ import annotations

import contextlib
import time
from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from scoperouter.backfill.executor import RunExecutor
from scoperouter.backfill.plan import BackfillPlan, Request, plan_backfill, registry_digest
from scoperouter.backfill.runner import Summary, open_backfill, run_backfill
from scoperouter.backfill.schedule import Policy
from scoperouter.backfill.shadow_reads import shadow_reads, shadow_warning
from scoperouter.backfill.store import AlreadyRunning, BackfillStore
from scoperouter.processor_registry.compiled import CompiledRegistry
from scoperouter.processor_registry.relations import RelationStore

STORE_FILE = "backfills.sqlite"


def store_path(state_dir: Path) -> Path:
    return state_dir / STORE_FILE


def policies(registry: CompiledRegistry, max_attempts: int | None = None) -> dict[str, Policy]:
    """Per processor: its target's ``max_attempts`` (or the override) and ``concurrency``."""
    return {
        n: Policy(
            # a target without max_attempts retries for its retry_horizon; a backfill
            # run keeps the former default of 5 attempts (issue 18)
            max_attempts=max_attempts or p.target.max_attempts or 5,
            concurrency=p.target.concurrency,
        )
        for n, p in registry.processors.items()
    }


def queued_targets(
    registry: CompiledRegistry, shadow: frozenset[str] = frozenset()
) -> frozenset[str]:
    """The processors sent a trigger (not ``shadow``) whose target only queues it (Pub/Sub,
    outbox): acknowledged is not run. Under ``completion: ack`` each of their runs counts
    done once its trigger is queued, before the processor ran."""
    return frozenset(
        n for n, p in registry.processors.items() if n not in shadow and p.target.http is None
    )


def ack_warning(plan: BackfillPlan, queued: frozenset[str]) -> str | None:
    """What to tell a backfill run with ``completion: ack`` whose plan has processors in
    ``queued`` (:func:`queued_targets`), else None."""
    names = [p for p in plan.processors if p in queued]
    if not names:
        return None
    return (
        "warning: completion 'ack' with targets that only queue the trigger (Pub/Sub or "
        f"outbox: {', '.join(names)}): each of their runs counts done once its trigger is "
        "queued, before the processor ran -- the runs that read it are sent before it has "
        "run, and 'done' means sent, not run. Use HTTP targets that run the processor "
        "before they answer (/process-date-range), or completion 'event'"
    )


@dataclass
class Prepared:
    store: BackfillStore
    backfill_id: str
    plan: BackfillPlan
    resumed: bool
    # a resumed plan's as-of is its first run's; asked as of a later date, the dates after
    # it are in no plan -- requested dates its as-of cut off (--end past it), and the dates
    # whose lookbacks read the backfill's re-run dates: (first, last)
    stale_after: tuple[date, date] | None = None
    # the stored backfill of the same request a rerun took the key from (its record stays)
    replaced: str | None = None
    # planned new (not resumed) with --end past its as-of: the requested dates the as-of
    # cut off, (as_of + 1, end); a resumed plan names them in stale_after
    cut_off: tuple[date, date] | None = None
    # resumed with every run already done: nothing to run (the same request after a fix of
    # a processor's code runs again only with rerun)
    finished: bool = False

    def finished_note(self, how: str = "--rerun") -> str | None:
        """What to tell the user when the backfill resumed has nothing left to run."""
        if not self.finished:
            return None
        return (
            f"note: backfill {self.backfill_id} of this request already finished (every run "
            f"done): nothing runs again. {how} plans it again as a new backfill and runs every "
            "run (after a fix of a processor's code, say)"
        )

    def stale_after_json(self) -> dict[str, str] | None:
        s = self.stale_after
        return None if s is None else {"start": s[0].isoformat(), "end": s[1].isoformat()}

    def cut_off_json(self) -> dict[str, str] | None:
        c = self.cut_off
        return None if c is None else {"start": c[0].isoformat(), "end": c[1].isoformat()}

    def cut_off_warning(self) -> str | None:
        """What to tell the user about :attr:`cut_off` (None: nothing cut off)."""
        if self.cut_off is None:
            return None
        first, last = self.cut_off
        return (
            f"warning: --end {last} is after the as-of date {self.plan.as_of}: backfill "
            f"{self.backfill_id}'s range stops at the as-of date, the requested dates "
            f"{first} .. {last} are not in it (they are in the future as of it); once their "
            f"data is in, run them with: scoperouter backfill --start {first} --end {last}"
            f"{self._selection()} --as-of {last}"
        )

    def _selection(self) -> str:
        """The request's selection as command-line options (after a space), or ''."""
        r = self.plan.request
        return "".join(
            [
                f" --processors {' '.join(r.processors)}" if r.processors else "",
                f" --from {' '.join(r.from_)}" if r.from_ else "",
                f" --phases {r.phases[0]}-{r.phases[1]}" if r.phases else "",
            ]
        )

    def stale_after_warning(self) -> str | None:
        """What to tell the user about :attr:`stale_after` (None: nothing left out)."""
        if self.stale_after is None:
            return None
        first, last = self.stale_after
        r = self.plan.request
        sel = self._selection()
        what = []
        if r.end > self.plan.as_of:
            what.append(f"requested dates up to --end {r.end} that its as-of cut off")
        if last > r.end or r.end <= self.plan.as_of:
            what.append(
                "dates whose lookbacks read its re-run dates (the pipeline processed them "
                "against the data before this backfill)"
            )
        return (
            f"warning: backfill {self.backfill_id} resumes its stored plan, as of "
            f"{self.plan.as_of}: dates after it ({first} .. {last}) are not in it -- "
            f"{' and '.join(what)}; once it is done, bring them up to date with: "
            f"scoperouter backfill --start {first} --end {last}{sel} --as-of {last}"
        )


def prepare(
    registry: CompiledRegistry,
    relations: RelationStore | None,
    request: Request,
    *,
    state_dir: Path,
    as_of: date,
    rerun: bool = False,
) -> Prepared:
    """Find the stored backfill of this request, else plan and store a new one. ``rerun``:
    plan a new one even when one is stored (taken off the key, its record kept); raises
    :class:`AlreadyRunning` while the stored one runs."""
    store = BackfillStore(store_path(state_dir))
    key = request.key(registry_digest(registry))
    replaced = store.find(key) if rerun else None
    if replaced is not None:
        if store.locked(replaced):
            store.close()
            raise AlreadyRunning(
                f"backfill {replaced} of this request is running: a rerun starts only once it "
                "has ended (or was stopped)"
            )
        # a process resuming it meanwhile still holds its claim: the new backfill's claim
        # (scoperouter.backfill.claim) is then refused as overlapping it
        store.retire(replaced, time.time())
    bid, plan, resumed = open_backfill(
        store,
        key,
        lambda: plan_backfill(registry, request, as_of=as_of, relations=relations),
        time.time(),
    )
    stale = None
    if resumed and plan.as_of < as_of:
        first = plan.as_of + timedelta(days=1)
        # a later date reads the re-run dates only where the plan's changes reached its
        # as-of: its last dates stop short of it when no lookback reads them further (the
        # planner caps them at the as-of date, and an unbounded reach ends there too)
        looks = any(
            registry.processors[p].lookback is not None and plan.last_day[p] >= plan.as_of
            for p in plan.processors
        )
        if looks:  # a later date may read the re-run dates
            stale = (first, as_of)
        elif plan.request.end > plan.as_of:  # the requested dates its as-of cut off
            stale = (first, min(plan.request.end, as_of))
    finished = resumed and store.status(bid) == "done"
    cut = None
    if not resumed and request.end > plan.as_of:
        cut = (plan.as_of + timedelta(days=1), request.end)
    return Prepared(store, bid, plan, resumed, stale, replaced, finished=finished, cut_off=cut)


async def execute(
    prep: Prepared,
    registry: CompiledRegistry,
    executor: RunExecutor,
    *,
    max_attempts: int | None = None,
    max_running: int = 8,
    on_event: Callable[[dict[str, Any]], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    lock: bool = True,
) -> Summary:
    """Run the backfill while holding its run lock (raises ``AlreadyRunning``); ``lock=False``
    when the caller holds it."""
    with prep.store.running(prep.backfill_id) if lock else contextlib.nullcontext():
        return await run_backfill(
            prep.store,
            prep.backfill_id,
            prep.plan,
            executor,
            policies(registry, max_attempts),
            resumed=prep.resumed,
            max_running=max_running,
            on_event=on_event,
            clock=clock,
        )


def ready_runs(plan: BackfillPlan, states: list[str]) -> set[int]:
    """The runs stored ``waiting`` whose upstream runs are all done: ``ready`` (the store
    keeps ``waiting`` until a run starts; readiness is the scheduler's, in memory)."""
    undone: dict[str, list[int]] = {}
    for r, st in zip(plan.runs, states, strict=True):
        if st != "done":
            undone.setdefault(r.processor, []).append(r.day.toordinal())
    for days in undone.values():
        days.sort()

    def blocked(i: int) -> bool:
        for dep in plan.runs[i].deps:
            days = undone.get(dep.upstream, [])
            k = bisect_left(days, dep.lo.toordinal())
            if k < len(days) and days[k] <= dep.hi.toordinal():
                return True
        return False

    return {i for i, st in enumerate(states) if st == "waiting" and not blocked(i)}


def stored_modes(store: BackfillStore, bid: str) -> dict[int, str]:
    """The mode stored with each run's first attempt, by run index (runs not attempted yet
    have none)."""
    return {r.index: r.mode for r in store.runs(bid) if r.mode is not None}


def shadow_note(prep: Prepared, shadow: frozenset[str], rerun: str = "--rerun") -> str | None:
    """The warning about the backfill's live runs that read shadow runs
    (:func:`scoperouter.backfill.shadow_reads.shadow_reads`), None when none does;
    ``shadow``: the processors whose runs are first sent in shadow now."""
    modes = stored_modes(prep.store, prep.backfill_id)
    return shadow_warning(shadow_reads(prep.plan, modes, shadow), rerun)


def status(
    store: BackfillStore, bid: str, shadow: frozenset[str] | None = None
) -> dict[str, Any] | None:
    """What ``GET /backfills/ID`` answers: status (reconciled: a backfill whose process died
    is ``interrupted``, never ``running``), counts, failed runs; with ``shadow`` (the
    processors whose runs are first sent in shadow now: an executor with modes), the
    ``warnings`` of its live runs that read shadow runs, when there are any."""
    st = store.reconcile(bid, time.time())
    if st is None:
        return None
    runs = store.runs(bid)
    plan = store.load_plan(bid)
    ready = ready_runs(plan, [r.state for r in runs])
    counts: dict[str, int] = {}
    skipped: dict[str, int] = {}  # done without work, per reason: "shadow" sent nothing
    for r in runs:
        state = "ready" if r.index in ready else r.state
        counts[state] = counts.get(state, 0) + 1
        if r.state == "done" and r.skipped is not None:
            skipped[r.skipped] = skipped.get(r.skipped, 0) + 1
    answer: dict[str, Any] = {
        "backfill_id": bid,
        "status": st,
        "runs": len(runs),
        "counts": counts,
        "rows": sum(r.rows or 0 for r in runs),
        "failed_runs": [f"{r.processor}@{r.day.isoformat()}" for r in runs if r.state == "failed"],
        "skipped": skipped,
    }
    if shadow is not None:
        modes = {r.index: r.mode for r in runs if r.mode is not None}
        note = shadow_warning(shadow_reads(plan, modes, shadow), '"rerun": true')
        if note is not None:
            answer["warnings"] = [note.removeprefix("warning: ")]
    return answer

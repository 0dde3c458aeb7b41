"""Drive a stored backfill to its end: the scheduler decides, the executor runs, the
store remembers, the progress callback reports.

Invariants:

* Resume: the backfill is looked up by its resume key; when found, its stored plan is
  used and its ``done`` runs are never handed out again.
* Every transition is committed to the store before the next run is taken, so a crash
  (SIGKILL) loses at most the runs in flight, which resume runs again -- as new attempts:
  an attempt is stored ``running`` with its number before it is handed to the executor,
  and a resumed run's attempts are numbered on from the stored count (the scheduler's),
  so no attempt number of a run, nor the trigger id derived from it, is handed out twice.
* Retry timing uses the injected ``clock`` (monotonic seconds); nothing else reads time.
* A run keeps the mode of its first attempt: with an executor that has modes
  (:class:`~scoperouter.backfill.executor.ModalExecutor`), the mode it gives a run's
  processor now is stored with the run's first ``running`` transition, before the run is
  handed to it, and every attempt is handed the stored one.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from scoperouter.backfill.executor import ModalExecutor, RunExecutor, RunOutcome
from scoperouter.backfill.plan import BackfillPlan
from scoperouter.backfill.schedule import Policy, Scheduler, State, Transition
from scoperouter.backfill.store import BackfillStore

Event = dict[str, Any]


@dataclass
class Summary:
    backfill_id: str
    resumed: bool
    counts: dict[str, int]
    rows: int = 0
    seconds: float = 0.0
    executed: int = 0  # attempts started by this invocation
    failed_runs: list[str] = field(default_factory=list)
    # runs done without work, per reason ("shadow": sent nothing), stored ones included
    skipped: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Every run done (a run left waiting, ready or retrying is not a success either)."""
        return all(n == 0 for st, n in self.counts.items() if st != "done")

    def to_json(self) -> dict[str, Any]:
        return {
            "backfill_id": self.backfill_id,
            "resumed": self.resumed,
            "status": "done" if self.ok else "failed",
            "counts": self.counts,
            "rows": self.rows,
            "seconds": round(self.seconds, 3),
            "executed": self.executed,
            "failed_runs": self.failed_runs,
            "skipped": self.skipped,
        }


def open_backfill(
    store: BackfillStore, key: str, make_plan: Callable[[], BackfillPlan], now: float
) -> tuple[str, BackfillPlan, bool]:
    """(id, plan, resumed): the stored backfill of ``key``, else a new one. Two processes
    (two identical ``POST``s, the CLI next to the daemon) may both find nothing and plan:
    the second to store its plan finds the first's (the key is unique) and resumes that."""
    bid = store.find(key)
    if bid is not None:
        return bid, store.load_plan(bid), True
    plan = make_plan()
    try:
        return store.create(key, plan, now), plan, False
    except sqlite3.IntegrityError:
        bid = store.find(key)
        if bid is None:  # not the key's uniqueness: a real error
            raise
        return bid, store.load_plan(bid), True


def restore(store: BackfillStore, bid: str) -> dict[int, tuple[State, int]]:
    return {r.index: (r.state, r.attempts) for r in store.runs(bid)}


async def run_backfill(
    store: BackfillStore,
    bid: str,
    plan: BackfillPlan,
    executor: RunExecutor,
    policies: Mapping[str, Policy],
    *,
    resumed: bool = False,
    max_running: int = 8,
    on_event: Callable[[Event], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Summary:
    """Run every remaining run of the backfill; returns when none can make progress."""
    emit = on_event or (lambda _e: None)
    stored = store.runs(bid)
    modal = executor if isinstance(executor, ModalExecutor) else None
    # each run's mode, once its first attempt stored it (None: not attempted yet)
    first_mode = {r.index: r.mode for r in stored}
    restored = {r.index: (r.state, r.attempts) for r in stored}
    sched = Scheduler(plan, policies, max_running=max_running, restored=restored)
    summary = Summary(bid, resumed, sched.counts())
    for sr in stored:
        if sr.skipped is not None and sched.state[sr.index] == "done":
            summary.skipped[sr.skipped] = summary.skipped.get(sr.skipped, 0) + 1
    done_by_phase: dict[int, int] = {}
    for i, st in enumerate(sched.state):
        if st == "done":
            ph = plan.runs[i].phase
            done_by_phase[ph] = done_by_phase.get(ph, 0) + 1
    emit(
        {
            "event": "start",
            "backfill_id": bid,
            "resumed": resumed,
            "counts": sched.counts(),
            "done_by_phase": done_by_phase,
        }
    )
    # a run stored as running/retrying by a killed invocation is back to waiting/ready
    store.apply(bid, _resets(sched))
    # a resumed backfill (a finished one retrying its failed runs included) runs again:
    # GET /backfills/ID must not keep answering the previous invocation's done / failed
    store.set_status(bid, "running", time.time())
    tasks: dict[asyncio.Task[RunOutcome], int] = {}
    try:
        while True:
            now = clock()
            started = sched.take(now)
            modes = _modes(modal, plan, started, first_mode)
            store.apply(
                bid, [Transition(i, "running", sched.attempts[i]) for i in started], modes=modes
            )
            first_mode.update(modes)
            for i in started:
                r = plan.runs[i]
                summary.executed += 1
                emit({"event": "run", "run": r.key, "attempt": sched.attempts[i]})
                att = sched.attempts[i]
                coro = (
                    modal.execute(r.processor, r.day, backfill_id=bid, attempt=att, mode=modes[i])
                    if modal is not None and i in modes
                    else executor.execute(r.processor, r.day, backfill_id=bid, attempt=att)
                )
                task = asyncio.ensure_future(coro)
                tasks[task] = i
            if not tasks:
                nxt = sched.next_retry()
                if nxt is None:
                    break
                await asyncio.sleep(max(0.0, nxt - clock()))
                continue
            nxt = sched.next_retry()
            timeout = None if nxt is None else max(0.0, nxt - clock())
            finished, _ = await asyncio.wait(tasks, timeout=timeout, return_when="FIRST_COMPLETED")
            for task in finished:
                i = tasks.pop(task)
                r = plan.runs[i]
                try:
                    out = task.result()
                except Exception as exc:
                    out = RunOutcome(False, error=f"{type(exc).__name__}: {exc}"[:500])
                if out.ok:
                    trans = sched.complete(i)
                    why = out.skipped if trans else None  # done without work, and why
                    store.apply(
                        bid,
                        trans,
                        measured={i: (out.rows, out.seconds)},
                        skipped={i: why} if why else None,
                    )
                    if why:
                        summary.skipped[why] = summary.skipped.get(why, 0) + 1
                    summary.rows += out.rows or 0
                    summary.seconds += out.seconds
                else:
                    trans = sched.fail(i, out.error or "failed", clock())
                    store.apply(bid, trans)
                for t in trans:
                    ev = _event(plan, t, out.rows if t.index == i else None)
                    if t.index == i and out.skipped:
                        ev["skipped"] = out.skipped
                    emit(ev)
    except asyncio.CancelledError:
        # stopped (the daemon's shutdown, Ctrl-C): the runs in flight are cancelled, not
        # left running, and the backfill says so; the same request resumes it later
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        store.apply(
            bid, [Transition(i, "waiting", sched.attempts[i], "stopped") for i in tasks.values()]
        )
        store.set_status(bid, "stopped", time.time())
        emit({"event": "stopped", "backfill_id": bid, "counts": sched.counts()})
        raise
    summary.counts = sched.counts()
    summary.failed_runs = [plan.runs[i].key for i, s in enumerate(sched.state) if s == "failed"]
    store.set_status(bid, "done" if summary.ok else "failed", time.time())
    emit({"event": "end", **summary.to_json()})
    return summary


def _modes(
    modal: ModalExecutor | None,
    plan: BackfillPlan,
    started: list[int],
    first_mode: Mapping[int, str | None],
) -> dict[int, str]:
    """The mode each run in ``started`` is sent in: its first attempt's, else (this is its
    first, or it was stored before the mode was kept) its processor's now."""
    if modal is None:
        return {}
    out: dict[int, str] = {}
    for i in started:
        mode = first_mode.get(i) or modal.mode_now(plan.runs[i].processor)
        if mode is not None:
            out[i] = mode
    return out


def _resets(sched: Scheduler) -> list[Transition]:
    """Every run not done, stored as the scheduler starts it (waiting or ready), its
    attempt count kept: the next attempt is numbered on from it."""
    return [Transition(i, s, sched.attempts[i]) for i, s in enumerate(sched.state) if s != "done"]


def _event(plan: BackfillPlan, t: Transition, rows: int | None) -> Event:
    r = plan.runs[t.index]
    ev: Event = {"event": t.state, "run": r.key, "phase": r.phase, "attempt": t.attempts}
    if rows is not None and t.state == "done":
        ev["rows"] = rows
    if t.error:
        ev["error"] = t.error
    return ev

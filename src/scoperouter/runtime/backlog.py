"""The dispatcher's backlog queries: one state-thread transaction that records queued
outcome marks, expires rows past their retry horizon and pages due rows per target.

Invariant: the marks taken on the event loop when the job was submitted are written
before the rows are read, and rows in flight (``exclude``) are never returned, so a row
is never handed out twice while one delivery of it is running or unrecorded.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from scoperouter.runtime.marks import Alias, Mark, Undelivered, write_marks
from scoperouter.runtime.metrics import Metrics
from scoperouter.runtime.store import PendingTrigger, Store
from scoperouter.state.letter_refs import trigger_ref

logger = logging.getLogger("scoperouter.runtime")
RESTART_LOG_LINES = 100  # pending triggers named one by one in the restart log

EXPIRE_PAGE = 500  # rows dead-lettered per target and sweep (bounded work per transaction)
HORIZON_DETAIL = "retry horizon passed while the target kept failing"


@dataclass(frozen=True, slots=True)
class LaneRequest:
    processor: str
    slots: int  # rows wanted now (0: only refresh next_due / expire)
    exclude: frozenset[int]  # row ids in flight
    expire_before: float | None = None  # dead-letter rows fired before this (None: skip)
    due_at: float = 0.0  # rows available at this time are due (inf: the oldest, a probe)
    # rows never attempted expire too: the target's circuit is open (its backlog waits on a
    # target that keeps failing); else only rows an attempt failed die past the horizon
    expire_untried: bool = False


@dataclass(frozen=True, slots=True)
class LanePage:
    processor: str
    rows: list[PendingTrigger]
    more: bool  # more rows may be due right now (only meaningful when ``asked``)
    next_due: float | None  # the next later availability, None when nothing waits
    expired: list[PendingTrigger]
    asked: bool = True  # rows were asked for (False: a sweep only, ``more`` says nothing)
    # due rows were left pending that another transaction held (a state store's row lock,
    # skipped, not waited for): the lane asks again after a short pause
    held: bool = False


# one page of the backlog, on the state thread: write the marks, page every lane's request
# (:func:`page` on the snapshot + journal store, ``state_backlog`` on a state store)
Pager = Callable[[list[Mark], list[LaneRequest], float], list[LanePage]]


def page(
    store: Store,
    marks: list[Mark],
    requests: list[LaneRequest],
    now: float,
    *,
    on_alias: Callable[[Alias], None] | None = None,
    on_dead: Undelivered | None = None,
) -> list[LanePage]:
    """State thread: one transaction for ``marks`` (``on_alias``, ``on_dead``: see
    :func:`~scoperouter.runtime.marks.write_marks`; a row past its retry horizon is told
    to ``on_dead`` too) and every lane's page."""
    out: list[LanePage] = []
    with store.transaction():
        write_marks(store, marks, on_alias, on_dead)
        for rq in requests:
            expired: list[PendingTrigger] = []
            if rq.expire_before is not None:
                got = store.expired_triggers(
                    rq.processor,
                    rq.expire_before,
                    EXPIRE_PAGE + len(rq.exclude),
                    untried=rq.expire_untried,
                )
                expired = [r for r in got if r.row_id not in rq.exclude][:EXPIRE_PAGE]
                for r in expired:
                    store.mark_dead(r.row_id, r.attempts, now, HORIZON_DETAIL)
                    store.dead_letter(
                        "trigger",
                        trigger_ref(r.trigger_id, r.row_id),
                        "retry_horizon",
                        HORIZON_DETAIL,
                        r.body.encode(),
                        now,
                    )
                    if on_dead is not None:
                        on_dead(r.trigger_id, r.row_id, now, HORIZON_DETAIL)
            rows: list[PendingTrigger] = []
            more = False
            if rq.slots > 0:
                want = rq.slots + len(rq.exclude)
                got = store.due_triggers(rq.processor, rq.due_at, want)
                free = [r for r in got if r.row_id not in rq.exclude]
                rows = free[: rq.slots]
                # more: the page was full, or rows were left out (excluded rows not due)
                more = len(got) >= want or len(free) > rq.slots
            out.append(
                LanePage(
                    rq.processor,
                    rows,
                    more,
                    store.next_available(rq.processor, now),
                    expired,
                    rq.slots > 0,
                )
            )
    return out


def announce_restart(store: Store, metrics: Metrics) -> int:
    """At start: count the triggers pending (they wait in the store; the dispatcher pages
    them), name the first :data:`RESTART_LOG_LINES` in the log and write one summary
    WARNING: memory and log volume do not grow with the backlog. Returns the count."""
    n = store.pending_count()
    if not n:
        return 0
    sample = store.pending_sample(RESTART_LOG_LINES)
    with store.transaction():
        store.mark_all_started()
    metrics.redispatched.inc(n)
    for p in sample:
        logger.info(
            "re-dispatching trigger pending at restart (possible duplicate downstream)",
            extra={"trigger_id": p.trigger_id, "processor": p.processor,
                   "restart_count": p.starts + 1},
        )  # fmt: skip
    logger.warning(
        "restart: %d pending triggers re-dispatched from the store (%d named above; "
        "counted in scoperouter_redispatched_after_restart_total)",
        n,
        len(sample),
        extra={"redispatched": n},
    )
    return n

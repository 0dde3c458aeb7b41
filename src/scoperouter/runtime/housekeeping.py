"""Housekeeping of the state store: seen ids past the dedup horizon, delivered triggers
and rejected-event dead letters past their retention.

Invariant: only rows that can no longer matter go -- pending triggers never, done ones
after ``done_retention_s``, rejected-event dead letters after ``dead_letter_retention_s``,
and, while ``dead_letter_topic`` is configured, only once the topic received their record
(:mod:`scoperouter.runtime.letter_copies`; each pass starts a copy of those still owed).
Dead triggers and their dead letters are never pruned: they are acked work that was not
delivered, kept until an operator redrives or discards them
(``scoperouter outbox``).

Bounded: a pass is one transaction whose statements each delete at most
:data:`~scoperouter.state.model.PRUNE_LIMIT` rows, so it holds SQLite's one write lock --
the ingest's -- for a bounded time however large the backlog past a horizon (after an
outage, or a burst a retention ago). A pass that reached a limit says so (``more``):
the router runs the next one after :data:`CATCH_UP_PAUSE_S` instead of a full
``housekeeping_interval``, with the ingest's transactions queued in between, until the
backlog is gone. Nothing is skipped: what a pass leaves is still past its horizon.

Clock steps: every horizon is measured back from the pass's prune time (the router's
``prune_clock``, a :class:`~scoperouter.runtime.bounded_clock.BoundedClock`), the wall clock
bounded by monotonic time -- it never advances faster than monotonic time since the router
started, so a wall clock stepped forward (NTP correcting a host that booted with a stale
clock) does not prune the seen ids of events accepted moments ago, whose redelivery would be
routed again; a disagreement of more than
:data:`~scoperouter.runtime.bounded_clock.CLOCK_STEP_WARN_S` between the two clocks is
logged once (WARNING). The execution log's retention is measured the same way
(:func:`retention_clock`, a clock of its own: the log prunes on its own thread).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from scoperouter.runtime.bounded_clock import BoundedClock
from scoperouter.runtime.metrics import Metrics
from scoperouter.runtime.options import RouterOptions
from scoperouter.runtime.store import Store
from scoperouter.state.model import CATCH_UP_PAUSE_S as CATCH_UP_PAUSE_S
from scoperouter.state.model import PRUNE_LIMIT, Pruned

logger = logging.getLogger("scoperouter.runtime")


def prune_now(clock: BoundedClock, options: RouterOptions, wall: float) -> float:
    """The time every horizon of a prune pass is measured back from: the wall clock
    bounded by monotonic time (a forward step prunes nothing early), back to the wall clock
    once a step is as old as the longest horizon (then no row stamped before it is pruned
    early by any, and rows stamped after it are no longer kept longer by the step)."""
    o = options
    longest = max(o.dedup_horizon_s, o.done_retention_s, o.dead_letter_retention_s)
    return clock.horizon_now(wall, longest)


def retention_clock(
    retention_s: float,
    *,
    wall: Callable[[], float] = time.time,
    monotonic: Callable[[], float] = time.monotonic,
) -> Callable[[], float]:
    """The "now" the execution log's retention (``retention_s``) is measured back from:
    the wall clock bounded by monotonic time since this call, as :func:`prune_now` (a
    :class:`BoundedClock` of its own, called by the log's thread alone)."""
    clock = BoundedClock("execution log retention", monotonic)
    clock.seed(wall())
    return lambda: clock.horizon_now(wall(), retention_s)


def prune(
    store: Store,
    options: RouterOptions,
    now: float,
    limit: int = PRUNE_LIMIT,
    *,
    keep_owed: bool = False,
) -> Pruned:
    """One transaction of pruning (state thread), each statement deleting at most
    ``limit`` rows: what it deleted, and whether a statement reached its limit (rows
    past a horizon may be left for the next pass). ``keep_owed``: a dead-letter topic is
    configured -- a letter whose record it has not received yet is kept."""
    o = options
    with store.transaction():
        seen = store.prune_seen(now - o.dedup_horizon_s, limit)
        done = store.prune_triggers(now - o.done_retention_s, limit=limit)  # dead rows: kept
        letters = store.prune_event_dead_letters(
            now - o.dead_letter_retention_s, limit, keep_owed=keep_owed
        )
    return Pruned(
        seen=seen, done=done, dead_letters=letters, more=max(seen, done, letters) >= limit
    )


def said(
    pruned: Pruned, dead_letter_retention_s: float, metrics: Metrics, *, topic: bool = False
) -> None:
    """Log a prune pass: the seen ids at INFO; dead letters of rejected events at WARNING
    and counted (``scoperouter_dead_letters_pruned_total``): with ``dead_letter_topic``
    set (``topic``) only letters the topic received are pruned, and their copies are
    there; without one a pruned payload is gone."""
    if pruned.seen:
        logger.info("pruned %d seen ids past the dedup horizon", pruned.seen)
    if pruned.dead_letters:
        metrics.dead_letters_pruned.inc(pruned.dead_letters)
        where = (
            "each was published to dead_letter_topic first"
            if topic
            else "no dead_letter_topic is configured: their payloads are gone"
        )
        logger.warning(
            "pruned %d dead letters of rejected events older than dead_letter_retention (%gs): %s",
            pruned.dead_letters,
            dead_letter_retention_s,
            where,
        )

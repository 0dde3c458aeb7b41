"""The trigger ledger: every dispatched trigger stays open until a completion names it.

Invariant: an :class:`Entry` is an immutable value and changes only through
:func:`step`, whose outcome is read from :data:`TRANSITIONS` (:mod:`.ledger_table`;
docs/ledger.md prints the table, a test checks they agree). :class:`TriggerLedger` only
stores entries and orders their deadlines; nothing here reads a clock or does I/O (times are floats passed in).

Per trigger id, as a state machine:

* phases ``dispatched`` (waiting for its completion), ``backoff`` (a re-dispatch is
  scheduled at ``due_at``), ``succeeded`` and ``dead`` (a dead letter);
* inputs: a completion (``success``, ``partial`` -- missed ids named or not -- ``failed``,
  ``stale``: a success of a run that already reported missed ids or a failure,
  ``unattributed``: a success naming no attempt after some run did, and
  ``unattributed_enough``: one that outnumbers the failure reports), the timers
  ``timeout`` (no completion within ``completion_timeout``) and ``retry_due``, and
  ``redrive`` (an operator sends a dead letter again).

A re-dispatch keeps the trigger id (processors stay idempotent) and counts an attempt;
``run_retries`` bounds re-dispatches after failures; a timeout re-dispatches at least once.
A completion that arrives late (after a timeout, or for a dead letter) still closes the
trigger: the run did happen -- unless that run itself reported missed ids or a failure
(its message id is in :attr:`Entry.failed_runs`): then its success is stale and the
re-run goes on. A success naming no attempt closes an entry a run reported a failure for
since its last (re)drive only once such successes outnumber the failure reports
(:attr:`Entry.failures`, :attr:`Entry.unattributed`): until then it may be a failed run's.
A closed trigger reopens for a later report of missed ids, never dead-lettered for it --
unless the report is of the run whose completion closed it (:attr:`Entry.closed_by`):
that counts as if it had come first, so a processor that keeps missing an id ends as a
dead letter instead of being re-run forever. A later failure reopens it only when it is
that run's (re-run like missed ids, then a dead letter); another run's is ignored. A
completion produced before the trigger last fired (:func:`fired_after`) is ``superseded``:
a report of an earlier firing, it moves nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import NamedTuple

from scoperouter.messages.models import Trigger
from scoperouter.router.completion_ref import CompletionRef
from scoperouter.router.ledger_table import (
    OPEN_PHASES,
    TRANSITIONS,
    UNATTRIBUTED_ERROR,
    Effect,
    Input,
    Phase,
)
from scoperouter.router.loop_params import LoopParams
from scoperouter.router.window_state import CLOCK_SLACK_S


class Attempt(NamedTuple):
    """One thing that happened to a trigger (the trace and ``deadletters show``)."""

    at: float
    # dispatched | success | partial | failed | timed_out | dead_letter | redrive | late
    # | unattributed (a success naming no attempt that re-ran or dead-lettered the trigger)
    what: str
    attempt: int
    detail: str | None = None
    event_id: str | None = None  # the completion message (its downstream events, the trace)


class Entry(NamedTuple):
    """One trigger in the ledger."""

    trigger: Trigger
    phase: Phase
    attempt: int  # attempts dispatched so far (1 = the first)
    retries: int  # re-dispatches after failures/timeouts since the last (re)drive
    timeouts: int
    opened_at: float
    due_at: float | None  # dispatched: timeout deadline; backoff: re-dispatch time
    error: str | None
    outcome: str | None  # last outcome: success | partial | failed | timed_out
    history: tuple[Attempt, ...]
    # the message ids (trigger_message_id) of runs that reported missed ids or a failure:
    # a later success naming one of them is stale
    failed_runs: tuple[str, ...] = ()
    # reports of missed ids or a failure since the trigger was (re)driven, every one of them
    # (ignored ones too: in backoff, for a dead letter, closed, an earlier attempt's): each
    # is a run that may still send one success naming no attempt. Reports, not runs: two of
    # one run (its change events and its report) count twice -- an extra re-run, never a
    # close too early; a timeout is none (its run's late success processed everything)
    failures: int = 0
    # successes naming no attempt after a failure report since the (re)drive (classify's
    # unattributed*, in any phase): more of them than ``failures`` -> one is not a failed
    # run's (TRANSITIONS, unattributed_enough)
    unattributed: int = 0
    # the message id of the run whose completion closed it (succeeded; None: it named no
    # run): a later report of missed ids naming it is that run's own, counted as if it had
    # come before the close (TRANSITIONS, partial_missed_own_last)
    closed_by: str | None = None
    # the order it (re)joined the open triggers of its processor and date (LedgerBook: a
    # counter bumped by every open, reopen and redrive; 0: not assigned yet): "the oldest
    # open trigger" a completion naming only processor and date closes, kept by a snapshot
    opened_seq: int = 0

    @property
    def trigger_id(self) -> str:
        return self.trigger.trigger_id

    @property
    def reported_failure(self) -> bool:
        """A run reported missed ids or a failure since the (re)drive: a success naming no
        attempt may be that run's."""
        return self.failures > 0

    @property
    def key(self) -> tuple[str, date]:
        return (self.trigger.processor, self.trigger.game_date)

    @property
    def is_open(self) -> bool:
        return self.phase in OPEN_PHASES


class Step(NamedTuple):
    entry: Entry
    effect: Effect
    redispatch: Trigger | None  # what to send now (redispatch effect)


def fired_after(e: Entry, ref: CompletionRef) -> bool:
    """``e`` last fired (:attr:`Entry.opened_at`) more than :data:`CLOCK_SLACK_S` after
    ``ref`` was produced: ``ref`` cannot report a run of that firing. A re-dispatch and a
    redrive keep the firing time (the same work: an earlier attempt's report is about it);
    a completion without a production time may be anyone's (False)."""
    at = ref.produced_at
    return at is not None and e.opened_at > at + CLOCK_SLACK_S


def classify(
    e: Entry,
    ref: CompletionRef,
    params: LoopParams,
    *,
    superseded: bool = False,
    stale: bool = False,
    unattributed: bool = False,
    earlier: bool = False,
    own: bool = False,
) -> Input:
    """The table input a completion is for entry ``e``; ``stale``: the run it names already
    reported missed ids or a failure; ``unattributed``: it names no run of ``e`` and one
    reported a failure (only a success, ``no_data`` or a partial naming no missed ids is
    stale or unattributed then; re-runs for those are bounded like timeouts) --
    ``unattributed_enough`` when it outnumbers the failure reports (and has an event id);
    ``earlier``:
    it names an attempt before ``e``'s (a failure of one is ``earlier_failure`` while a
    later attempt is dispatched); ``own``: it names the run whose completion closed ``e``
    (its missed ids after the re-runs are spent: ``partial_missed_own_last``; its failure:
    ``failed_own``, re-run like missed ids, then ``failed_own_last``); ``superseded``: it
    was produced before ``e`` last fired (:func:`fired_after`), whatever it says."""
    if superseded:
        return "superseded"
    if ref.says_success:
        if stale:
            return "stale"
        if unattributed:
            # one without an event id may be a redelivery (nothing to drop it by): never the
            # one too many (LedgerBook counts only those with one)
            if ref.event_id is not None and e.unattributed + 1 > e.failures:
                return "unattributed_enough"
            last = e.retries >= max(1, params.run_retries)
            return "unattributed_last" if last else "unattributed"
        return "success" if ref.outcome != "partial" else "partial"
    if earlier and e.phase == "dispatched":
        return "earlier_failure"
    if ref.outcome == "partial":
        # a full-date run that missed ids re-runs its date (the ids alone would need an
        # entity type the trigger does not have): processing more, never missing them
        # re-runs of missed ids are bounded like timeouts: at least one, up to run_retries
        if e.retries < max(1, params.run_retries):
            return "partial_missed"
        return (
            "partial_missed_own_last" if own and e.phase == "succeeded" else "partial_missed_last"
        )
    if own and e.phase == "succeeded":
        # the run that closed it failed after all: as if its failure had come first, so
        # bounded like any failure (run_retries: 0 makes it a dead letter either way)
        return "failed_own" if e.retries < params.run_retries else "failed_own_last"
    return "failed" if e.retries < params.run_retries else "failed_last"


def _deadline(params: LoopParams, now: float) -> float | None:
    t = params.completion_timeout_s
    return None if t is None else now + t


def open_entry(trigger: Trigger, now: float, params: LoopParams) -> Entry:
    """A trigger just dispatched (attempt 1)."""
    return Entry(
        trigger,
        "dispatched",
        1,
        0,
        0,
        now,
        _deadline(params, now),
        None,
        None,
        (Attempt(now, "dispatched", 1),),
    )


def step(
    e: Entry,
    inp: Input,
    now: float,
    params: LoopParams,
    ref: CompletionRef | None = None,
    attempt: int | None = None,
) -> Step:
    """Apply one input to ``e`` (pure). A pair missing from :data:`TRANSITIONS` is ignored.
    ``attempt``: the attempt a completion names (its history row), else the current one."""
    tr = TRANSITIONS.get((e.phase, inp))
    if tr is None or tr.effect == "ignore":
        return Step(e, "ignore", None)
    detail = ref.error if ref is not None else None
    if ref is not None and ref.execution_id:
        detail = (
            f"{detail} (execution {ref.execution_id})"
            if detail
            else f"execution {ref.execution_id}"
        )
    what = {
        "success": "success",
        "partial": "partial",
        "stale": "late",
        "superseded": "late",
        "unattributed": "unattributed",
        "unattributed_last": "unattributed",
        "unattributed_enough": "success" if ref is None or ref.outcome != "partial" else "partial",
        "partial_missed": "partial",
        "partial_missed_last": "partial",
        "partial_missed_own_last": "partial",
        "failed": "failed",
        "failed_last": "failed",
        "failed_own": "failed",
        "failed_own_last": "failed",
        "earlier_failure": "late",
        "timeout": "timed_out",
        "timeout_last": "timed_out",
        "retry_due": "dispatched",
        "redrive": "redrive",
    }[inp]
    hist = (
        *e.history,
        Attempt(
            now,
            what,
            e.attempt if attempt is None else attempt,
            detail,
            ref.event_id if ref is not None else None,
        ),
    )
    outcome = {
        "success": "success",
        "partial": "partial",
        "unattributed_enough": what,
        "partial_missed": "partial",
        "partial_missed_last": "partial",
        "partial_missed_own_last": "partial",
        "failed": "failed",
        "failed_last": "failed",
        "failed_own": "failed",
        "failed_own_last": "failed",
        "timeout": "timed_out",
        "timeout_last": "timed_out",
    }.get(inp, e.outcome)
    error = ref.error if ref is not None and ref.error else e.error
    if inp in ("timeout", "timeout_last"):
        error = error or "no completion within completion_timeout"
    if inp in ("partial_missed_last", "partial_missed_own_last") and ref is not None:
        error = error or f"missed entities after re-runs: {', '.join(ref.missed)}"
    if inp == "unattributed_last" and UNATTRIBUTED_ERROR not in (error or ""):
        error = f"{UNATTRIBUTED_ERROR} (last error: {error})" if error else UNATTRIBUTED_ERROR
    if tr.effect == "close":
        return Step(
            e._replace(phase="succeeded", due_at=None, outcome=outcome, history=hist), "close", None
        )
    if tr.effect in ("schedule", "rerun_missed"):
        trig = e.trigger
        if tr.effect == "rerun_missed" and ref is not None:
            keep = tuple(sorted(set(ref.missed) & set(trig.entity_ids or ())))
            if keep:
                trig = trig.model_copy(update={"entity_ids": keep})
        return Step(
            e._replace(
                trigger=trig,
                phase="backoff",
                retries=e.retries + 1,
                timeouts=e.timeouts + (1 if inp == "timeout" else 0),
                due_at=now + params.backoff(e.attempt),
                error=error,
                outcome=outcome,
                history=hist,
            ),
            tr.effect,
            None,
        )
    if tr.effect == "dead_letter":
        return Step(
            e._replace(
                phase="dead",
                due_at=None,
                error=error,
                outcome=outcome,
                history=(*hist, Attempt(now, "dead_letter", e.attempt, error)),
            ),
            "dead_letter",
            None,
        )
    # redispatch: backoff over, or a redrive (fresh retries)
    n = e.attempt + 1
    fresh = inp == "redrive"
    marks = (Attempt(now, "redrive", e.attempt),) if fresh else ()
    ent = e._replace(
        phase="dispatched",
        attempt=n,
        retries=0 if fresh else e.retries,
        timeouts=0 if fresh else e.timeouts,
        failures=0 if fresh else e.failures,
        unattributed=0 if fresh else e.unattributed,
        due_at=_deadline(params, now),
        history=(*e.history, *marks, Attempt(now, "dispatched", n)),
    )
    return Step(ent, "redispatch", ent.trigger)


# the history rows a step that puts an entry in backoff appends (its re-run is due
# ``backoff(attempt)`` after it); ignored reports in backoff only add ``late`` rows
_SCHEDULED = frozenset({"failed", "partial", "timed_out", "unattributed"})


def retimed(e: Entry, params: LoopParams) -> Entry:
    """``e`` with its timer recomputed under ``params`` (a restart under a changed registry
    follows the current ``completion_timeout`` and ``retry_backoff``): a dispatched entry is
    due its last dispatch + ``completion_timeout`` (None without one), one in backoff its
    scheduling row + ``backoff(attempt)``. Pure; the same params give back the same entry."""
    if e.phase == "dispatched":
        sent = [a.at for a in e.history if a.what == "dispatched"]
        return e._replace(due_at=_deadline(params, sent[-1] if sent else e.opened_at))
    if e.phase == "backoff":
        rows = [a.at for a in e.history if a.what in _SCHEDULED]
        if rows:
            return e._replace(due_at=rows[-1] + params.backoff(e.attempt))
    return e


def timeout_input(e: Entry, params: LoopParams) -> Input:
    """A timed-out attempt is re-dispatched like a failed one, at least once."""
    return "timeout" if e.retries < max(1, params.run_retries) else "timeout_last"


@dataclass(frozen=True, slots=True)
class Notice:
    """What the ledger tells its driver: a state change worth a metric, a log row or a
    dead letter (``kind``: succeeded, failed, timed_out, dead_letter, redispatch)."""

    kind: str
    entry: Entry
    at: float

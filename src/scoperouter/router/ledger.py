"""The trigger ledger: every dispatched trigger stays open until a completion names it.

Invariant: an :class:`Entry` is an immutable value and changes only through
:func:`step`, whose outcome is read from :data:`TRANSITIONS` (docs/ledger.md prints the
table; a test checks they agree). :class:`TriggerLedger` only stores entries and orders
their deadlines; nothing here reads a clock or does I/O (times are floats passed in).

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
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal, NamedTuple

from scoperouter.messages.models import Trigger
from scoperouter.router.completion_ref import CompletionRef
from scoperouter.router.loop_params import LoopParams

Phase = Literal["dispatched", "backoff", "succeeded", "dead"]
Input = Literal[
    "success",
    "partial",
    "stale",
    "unattributed",
    "unattributed_last",
    "unattributed_enough",
    "partial_missed",
    "partial_missed_last",
    "failed",
    "failed_last",
    "earlier_failure",
    "timeout",
    "timeout_last",
    "retry_due",
    "redrive",
]
Effect = Literal["close", "rerun_missed", "schedule", "dead_letter", "redispatch", "ignore"]


@dataclass(frozen=True, slots=True)
class Transition:
    next: Phase
    effect: Effect
    rule: str


_OPEN: tuple[Phase, ...] = ("dispatched", "backoff")
# the inputs a completion report makes, and those of them that report a failure
_FAILURES: tuple[Input, ...] = ("partial_missed", "partial_missed_last", "failed", "failed_last")
_REPORTS: tuple[Input, ...] = ("success", "partial", *_FAILURES)
_UNATTRIBUTED: tuple[Input, ...] = ("unattributed", "unattributed_last")
_UNATTRIBUTED_ALL: tuple[Input, ...] = (*_UNATTRIBUTED, "unattributed_enough")
FAILURE_INPUTS = _FAILURES
"""The inputs of a report that named missed ids or a failure (its run's success is stale)."""
UNATTRIBUTED_INPUTS = _UNATTRIBUTED_ALL
"""The inputs of a success naming no attempt after a failure report (counted per entry)."""
UNATTRIBUTED_ERROR = (
    "a success that names no attempt after a run reported missed ids or a failure (it may be"
    " that run's): name the attempt (trigger_message_id), or redrive once the runs are done"
)

TRANSITIONS: dict[tuple[Phase, Input], Transition] = {
    **{
        (ph, "success"): Transition("succeeded", "close", "a success closes it (late ones too)")
        for ph in (*_OPEN, "dead")
    },
    **{
        (ph, "partial"): Transition("succeeded", "close", "partial naming no missed ids: done")
        for ph in (*_OPEN, "dead")
    },
    # a completion names its run by the message id the trigger came in (LedgerBook.alias):
    # a success of a run whose own report named missed ids or a failure (a change event of
    # a producer outside the SDK, or one delivered out of order) says nothing new
    **{
        (ph, "stale"): Transition(
            ph,
            "ignore",
            "a success of a run that already reported missed ids or a failure: stale, kept as late",
        )
        for ph in (*_OPEN, "succeeded", "dead")
    },
    # a success naming no attempt (no message id, the trigger id echoed, an id never recorded
    # for this trigger, only processor and date) after a run reported missed ids or a
    # failure (Entry.failures, since the last (re)drive): it may be that run's
    **{
        ("backoff", inp): Transition(
            "backoff",
            "ignore",
            "a success naming no attempt after a failure, the re-run not sent: an earlier"
            " run's, stale (kept as late)",
        )
        for inp in _UNATTRIBUTED
    },
    ("dispatched", "unattributed"): Transition(
        "backoff",
        "schedule",
        "a success naming no attempt after a failure, the re-run out: maybe the failed run's;"
        " re-run once more, never a silent close",
    ),
    ("dispatched", "unattributed_last"): Transition(
        "dead",
        "dead_letter",
        "the same after its re-runs (at least one, up to `run_retries`): dead letter",
    ),
    **{
        ("dead", inp): Transition(
            "dead", "ignore", "a dead letter after a failure: maybe the failed run's; stays dead"
        )
        for inp in _UNATTRIBUTED
    },
    # a run sends at most one success (a redelivery keeps its event id): after F failure
    # reports (Entry.failures) at most F successes naming no attempt are the failed runs';
    # one more (Entry.unattributed) is a run's that reported none -- it processed everything
    **{
        (ph, "unattributed_enough"): Transition(
            "succeeded",
            "close",
            "a success naming no attempt that outnumbers the failure reports since the"
            " (re)drive: not a failed run's (one success per run), closes it",
        )
        for ph in (*_OPEN, "dead")
    },
    ("dispatched", "partial_missed"): Transition(
        "backoff",
        "rerun_missed",
        "partial naming missed ids: re-run those ids (a full-date trigger: its date; same id)",
    ),
    ("dispatched", "partial_missed_last"): Transition(
        "dead",
        "dead_letter",
        "missed ids again after its re-runs (at least one, up to `run_retries`): dead letter",
    ),
    ("dispatched", "failed"): Transition(
        "backoff", "schedule", "failed, retries left: re-dispatch after backoff"
    ),
    ("dispatched", "failed_last"): Transition(
        "dead", "dead_letter", "failed after `run_retries` re-dispatches: dead letter"
    ),
    # the report's message id names an earlier attempt than the one running (LedgerBook.alias
    # stamps each id with its attempt): the running one re-runs the same trigger (ids only
    # narrowed by reports whose runs processed the rest), so counting it would only cost an
    # extra re-run or an early dead letter
    ("dispatched", "earlier_failure"): Transition(
        "dispatched",
        "ignore",
        "missed ids or a failure of an earlier attempt (its message id): the running attempt"
        " re-runs them; kept as late",
    ),
    ("dispatched", "timeout"): Transition(
        "backoff", "schedule", "no completion within `completion_timeout`: re-dispatch"
    ),
    ("dispatched", "timeout_last"): Transition(
        "dead", "dead_letter", "timed out again after its re-dispatches: dead letter"
    ),
    ("backoff", "retry_due"): Transition(
        "dispatched", "redispatch", "backoff over: same trigger id, next attempt"
    ),
    ("dead", "redrive"): Transition(
        "dispatched", "redispatch", "`deadletters redrive`: same trigger id, fresh retries"
    ),
    **{
        ("succeeded", inp): Transition(
            "succeeded", "ignore", "a closed trigger ignores late reports"
        )
        for inp in (*_REPORTS, *_UNATTRIBUTED_ALL)
    },
    # a run whose change events said success (closing it) and whose own report names ids it
    # missed: those ids are stale, so they are re-run -- a late partial of an earlier
    # attempt does the same (processing more, never missing them)
    # never a dead letter from here: many reports name no attempt (no message id), so a
    # late message of an earlier run (its ids since processed by a re-run) looks the same,
    # and the table does not tell attempts apart -- an extra re-run is
    # safe, a dead letter for ids already processed is a false alarm; each report reopens
    # once (its event id is kept), so this ends
    **{
        ("succeeded", inp): Transition(
            "backoff", "rerun_missed", "a later report naming missed ids reopens it: re-run them"
        )
        for inp in ("partial_missed", "partial_missed_last")
    },
    **{
        ("backoff", inp): Transition("backoff", "ignore", "a failure already scheduled a re-run")
        for inp in _FAILURES
    },
    **{
        ("dead", inp): Transition("dead", "ignore", "a dead letter ignores later failures")
        for inp in _FAILURES
    },
}


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
        return self.phase in _OPEN


class Step(NamedTuple):
    entry: Entry
    effect: Effect
    redispatch: Trigger | None  # what to send now (redispatch effect)


def classify(
    e: Entry,
    ref: CompletionRef,
    params: LoopParams,
    *,
    stale: bool = False,
    unattributed: bool = False,
    earlier: bool = False,
) -> Input:
    """The table input a completion is for entry ``e``; ``stale``: the run it names already
    reported missed ids or a failure; ``unattributed``: it names no run of ``e`` and one
    reported a failure (only a success, ``no_data`` or a partial naming no missed ids is
    stale or unattributed then; re-runs for those are bounded like timeouts) --
    ``unattributed_enough`` when it outnumbers the failure reports (and has an event id);
    ``earlier``:
    it names an attempt before ``e``'s (a failure of one is ``earlier_failure`` while a
    later attempt is dispatched)."""
    if ref.outcome in ("success", "no_data") or (ref.outcome == "partial" and not ref.missed):
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
        return "partial_missed" if e.retries < max(1, params.run_retries) else "partial_missed_last"
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
        "unattributed": "unattributed",
        "unattributed_last": "unattributed",
        "unattributed_enough": "success" if ref is None or ref.outcome != "partial" else "partial",
        "partial_missed": "partial",
        "partial_missed_last": "partial",
        "failed": "failed",
        "failed_last": "failed",
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
        "failed": "failed",
        "failed_last": "failed",
        "timeout": "timed_out",
        "timeout_last": "timed_out",
    }.get(inp, e.outcome)
    error = ref.error if ref is not None and ref.error else e.error
    if inp in ("timeout", "timeout_last"):
        error = error or "no completion within completion_timeout"
    if inp == "partial_missed_last" and ref is not None:
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


def transition_table_markdown() -> str:
    lines = ["| trigger | input | becomes | effect | rule |", "|---|---|---|---|---|"]
    for (phase, inp), tr in TRANSITIONS.items():
        lines.append(f"| {phase} | {inp} | {tr.next} | {tr.effect} | {tr.rule} |")
    return "\n".join(lines)

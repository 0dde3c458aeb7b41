"""The trigger ledger's transition table: for each (phase, input) of a trigger's entry, the
phase it moves to, the effect its driver carries out and the rule in words
(:data:`TRANSITIONS`; docs/ledger.md prints it, from :func:`transition_table_markdown`, and
a test checks they agree).

Invariant: data only -- the literals, the table and its rendering; nothing here reads a
clock, does I/O or looks at an entry. :func:`scoperouter.router.ledger.step` is the only
reader that acts on it, and :func:`scoperouter.router.ledger.classify` picks the input.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Phase = Literal["dispatched", "backoff", "succeeded", "dead"]
Input = Literal[
    "success",
    "partial",
    "stale",
    "superseded",
    "unattributed",
    "unattributed_last",
    "unattributed_enough",
    "partial_missed",
    "partial_missed_last",
    "partial_missed_own_last",
    "failed",
    "failed_last",
    "failed_own",
    "failed_own_last",
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
FAILURE_INPUTS: tuple[Input, ...] = (
    *_FAILURES,
    "partial_missed_own_last",
    "failed_own",
    "failed_own_last",
)
"""The inputs of a report that named missed ids or a failure (its run's success is stale)."""
OPEN_PHASES = _OPEN
"""The phases of an entry still waiting (a run out, or a re-run scheduled)."""
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
    # a completion produced (its produced_at / timestamp) more than CLOCK_SLACK_S before the
    # trigger last fired (Entry.opened_at: a re-dispatch or a redrive keeps it, an `open`
    # of the same id again moves it) is a report of an earlier firing, whose work the new
    # firing redoes on newer inputs: whatever it says, it is no report of this one
    **{
        (ph, "superseded"): Transition(
            ph,
            "ignore",
            "produced before the trigger last fired (past the clock slack): an earlier"
            " firing's report, kept as late",
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
    # ... except the report of the very run whose success closed it (the same message id,
    # Entry.closed_by): as if it had come before that success -- once the re-runs are spent,
    # a dead letter, or a processor that keeps missing an id would be re-run forever
    ("succeeded", "partial_missed_own_last"): Transition(
        "dead",
        "dead_letter",
        "the run that closed it reports missed ids after its re-runs (at least one, up to"
        " `run_retries`): dead letter",
    ),
    # ... and a failure reported by that very run: its change events said success, its
    # report says the run failed -- as if the report had come first (re-run up to
    # `run_retries`, as any failure; then a dead letter). A late
    # failure of any other run stays ignored (above): a later run processed its ids
    ("succeeded", "failed_own"): Transition(
        "backoff",
        "schedule",
        "the run that closed it reports a failure: reopen and re-run it (up to"
        " `run_retries`, as if the failure had come first)",
    ),
    ("succeeded", "failed_own_last"): Transition(
        "dead",
        "dead_letter",
        "the run that closed it reports a failure after its `run_retries` re-runs (none"
        " with `run_retries: 0`): dead letter",
    ),
    **{
        ("backoff", inp): Transition("backoff", "ignore", "a failure already scheduled a re-run")
        for inp in _FAILURES
    },
    **{
        ("dead", inp): Transition("dead", "ignore", "a dead letter ignores later failures")
        for inp in _FAILURES
    },
}


def transition_table_markdown() -> str:
    lines = ["| trigger | input | becomes | effect | rule |", "|---|---|---|---|---|"]
    for (phase, inp), tr in TRANSITIONS.items():
        lines.append(f"| {phase} | {inp} | {tr.next} | {tr.effect} | {tr.rule} |")
    return "\n".join(lines)

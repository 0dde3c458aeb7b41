"""What a completion report is for the trigger ledger entry it names: which run it names,
the table input it is (:func:`judge`), and the entry after it with the report's marks
(:func:`account`: the closing run, a late report's trace row, the counts of failure
reports and of successes naming no attempt).

Invariant: pure -- it reads the entry, the report and the message ids the dispatcher
recorded (:meth:`~scoperouter.router.ledger_book.LedgerBook.alias`), changes none of them
and returns values; the book stores them. Only a message id recorded for that trigger or
an HTTP target's ``<trigger_id>-<row>`` names an attempt.

A completion naming a message id -- alone, or next to the trigger id, which then says which
trigger -- is attributed to that attempt (its history row), and a success naming the
message id of a run that reported missed ids or a failure is stale
(:data:`~scoperouter.router.ledger_table.TRANSITIONS`, input ``stale``). A completion naming
none -- no message id, the trigger id echoed as one, an id recorded for another trigger, or
one never recorded (it may be recorded later, a crash may have lost the record, or the
processor made it up and echoes it on every attempt) -- is a success of no known run: after
a run reported a failure (since the last (re)drive) it is ``unattributed`` and closes
nothing (an earlier run's while the re-run waits, maybe the failed run's once it is out:
re-run, then a dead letter) -- until such successes outnumber the failure reports
(``unattributed_enough``: a run sends one success, so one of them is a run's that reported
no failure; both counts are in the entry and the snapshot; one without an event id may be a
redelivery and counts for nothing). A report of missed ids or a failure naming an attempt
before the dispatched one is ``earlier_failure`` and does not count against it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

from scoperouter.router.completion_ref import CompletionRef
from scoperouter.router.ledger import Attempt, Entry, Step, classify, fired_after
from scoperouter.router.ledger_table import FAILURE_INPUTS, UNATTRIBUTED_INPUTS, Input
from scoperouter.router.loop_params import LoopParams


class Verdict(NamedTuple):
    """What a report is for an entry: its table input, whether it names a run of the entry
    (by its message id), the attempt it names (None: unknown) and whether it was produced
    before the entry last fired."""

    input: Input
    named: bool
    attempt: int | None
    superseded: bool


def push_row_trigger(mid: str) -> str | None:
    """The trigger id (or alias) an HTTP target's push messageId ``<trigger_id>-<row>``
    names (None: ``mid`` is not of that form)."""
    head, sep, row = mid.rpartition("-")
    return head if sep and row.isdigit() else None


def attempt_of(
    e: Entry, ref: CompletionRef, aliases: Mapping[str, str], attempts: Mapping[str, int]
) -> int | None:
    """The attempt of ``e`` whose message ``ref`` names (None: unknown)."""
    mid = ref.message_id
    if mid is None or aliases.get(mid) != e.trigger_id:
        return None
    return attempts.get(mid)


def names_run(e: Entry, mid: str | None, ref: CompletionRef, aliases: Mapping[str, str]) -> bool:
    """``mid`` is a message a run of ``e`` was sent as: recorded for it, an HTTP
    target's push messageId ``<trigger_id>-<row>`` (one outbox row per attempt), or an
    id not recorded (yet: the completion overtook the dispatcher's record of the
    publish's answer) that ``ref`` names next to the trigger id while a run is out
    (``dispatched``: the running attempt's) and that no failure report named -- never the trigger id itself, which a processor may echo for every
    attempt, nor an id recorded for another trigger. An unrecorded id a failure report
    named (made up and echoed on every attempt, or a failed run's whose record a crash
    lost) names no attempt: its success may be the failed run's."""
    if mid is None:
        return False
    owner = aliases.get(mid)
    if owner is not None:
        return owner == e.trigger_id
    head = push_row_trigger(mid)
    if head is not None and aliases.get(head, head) == e.trigger_id:
        return True
    return (
        e.phase == "dispatched"
        and ref.trigger_id == e.trigger_id
        and mid != e.trigger_id
        and mid not in e.failed_runs
    )


def judge(
    e: Entry,
    ref: CompletionRef,
    p: LoopParams,
    aliases: Mapping[str, str],
    attempts: Mapping[str, int],
) -> Verdict:
    """The table input ``ref`` is for ``e`` (:func:`~scoperouter.router.ledger.classify`),
    with what it names."""
    mid = ref.message_id
    named = names_run(e, mid, ref, aliases)
    stale = named and mid in e.failed_runs
    n = attempt_of(e, ref, aliases, attempts)
    superseded = fired_after(e, ref)
    inp = classify(
        e,
        ref,
        p,
        superseded=superseded,
        stale=stale,
        unattributed=not named and e.reported_failure,
        earlier=n is not None and n < e.attempt,
        own=named and mid == e.closed_by,
    )
    return Verdict(inp, named, n, superseded)


def account(e: Entry, st: Step, v: Verdict, ref: CompletionRef, now: float) -> Entry:
    """``st.entry`` (``e`` after the step for ``v``) with the report's marks; the very same
    entry when it leaves none."""
    mid = ref.message_id
    named, n, inp = v.named, v.attempt, v.input
    entry = st.entry
    if st.effect == "close":
        # the run that closed it: a report of missed ids naming it later is its own
        entry = entry._replace(closed_by=mid if named else None)
    if st.effect == "ignore" and ref.event_id is not None:
        # a late, stale or duplicate report: kept for the trace
        late = Attempt(now, "late", e.attempt if n is None else n, ref.outcome, ref.event_id)
        entry = entry._replace(history=(*entry.history, late))
    if inp in UNATTRIBUTED_INPUTS and ref.event_id is not None:
        # one more success naming no attempt (a run sends one: its redelivery was dropped
        # by its event id before it got here, LedgerBook.complete; one without cannot be
        # told from a redelivery and is not counted), counted whatever it did: ignored,
        # re-run, dead-lettered or closed
        entry = entry._replace(unattributed=entry.unattributed + 1)
    if inp in FAILURE_INPUTS or inp == "earlier_failure":
        # a success naming no attempt may be this run's from now on (until a redrive):
        # counted in every phase, for this run may still send it
        entry = entry._replace(failures=entry.failures + 1)
        if mid is not None and mid not in entry.failed_runs:
            # that run's success, arriving later, is stale (also when the id is recorded
            # after this report: the id must name a run of this trigger when it comes)
            entry = entry._replace(failed_runs=(*entry.failed_runs, mid))
    return entry

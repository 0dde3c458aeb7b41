"""Ingest batching on a :class:`~scoperouter.state.api.StateStore`: one store transaction
per batch of queued messages (``serve --state postgresql://...`` or ``sqlite:///...``).

Invariant: everything that can fail on a message's *content* -- normalising, planning,
turning decisions into window contributions -- happens here, before the store is called,
so a poison message becomes a dead letter of its own; then ONE
:meth:`StateStore.ingest` commits the batch's dedupe inserts, window merges, fired
triggers (leased to this replica), dead letters and pending dispatch marks together,
before any of its messages is acked. A failure of the store fails the whole batch (its
sources redeliver). The windows live in the store only: nothing here keeps them. With
``ledger`` (a shared store), the completions reported for backfill runs -- an event
naming a backfill trigger (``trigger_id``), a bare report queued for it -- are recorded
in the store's completion ledger by the same transaction (an event's only when it is
admitted), so the replica running the backfill finds them whichever replica took them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from itertools import repeat

from scoperouter.errors import EventError
from scoperouter.messages.body_ids import accepted_as
from scoperouter.messages.models import Event
from scoperouter.processor_registry.compiled import CompiledRegistry
from scoperouter.processor_registry.relations import RelationStore
from scoperouter.router.decisions import Decision
from scoperouter.router.planner import Planner
from scoperouter.runtime import marks as rm
from scoperouter.runtime.ingest import (
    BatchResult,
    Item,
    event_letter,
    note_dead_letter,
)
from scoperouter.runtime.intake import names_backfill_run
from scoperouter.runtime.modes import other_modes
from scoperouter.runtime.outcomes import Outcome, accepted, safe
from scoperouter.state.api import StateStore
from scoperouter.state.merge import contributions
from scoperouter.state.model import (
    Admission,
    Attempted,
    Dead,
    DeadLetterIn,
    Done,
    IngestBatch,
    Mark,
    RedriveLane,
    Released,
    Reported,
    RetryLater,
)

logger = logging.getLogger("scoperouter.runtime")


@dataclass
class StateMarks:
    """Dispatch marks translated for a state store (:func:`state_marks`)."""

    marks: list[Mark] = field(default_factory=list)
    letters: list[DeadLetterIn] = field(default_factory=list)  # non-trigger dead letters
    finished: set[int] = field(default_factory=set)  # outbox ids no longer leased here


def state_marks(marks: Sequence[rm.Mark]) -> StateMarks:
    """The dispatcher's marks as state-store marks: ``Done`` -> ``Done`` (``DoneMany``: one
    each), ``Attempt`` -> ``Attempted`` (kept under this replica's lease), ``Retry`` ->
    ``RetryLater`` (the lease goes back, the row is claimable at its time), ``Dead`` + its
    ``trigger`` dead letter -> one ``Dead`` (the store writes the dead letter with the row, ref ``trigger_id#id``);
    ``Release`` -> ``Released`` (a row not started goes back to the store, lease given
    back); ``Redrive`` -> ``RedriveLane``; ``Alias`` is dropped (the closed loop, which
    reads it, is not available on a state store); other dead letters stay dead letters."""
    out = StateMarks()
    reasons = {
        m.ref.rsplit("#", 1)[-1]: m.reason
        for m in marks
        if isinstance(m, rm.DeadLetter) and m.kind == "trigger" and m.ref
    }
    for m in marks:
        if isinstance(m, rm.DoneMany):
            if len(m.row_ids) != len(m.attempts):
                raise ValueError("DoneMany: row_ids and attempts differ in length")
            out.marks += map(Done, m.row_ids, m.attempts, repeat(m.at))
            out.finished.update(m.row_ids)
        elif isinstance(m, rm.Done):
            out.marks.append(Done(m.row_id, m.attempts, m.at))
            out.finished.add(m.row_id)
        elif isinstance(m, rm.Attempt):
            out.marks.append(Attempted(m.row_id, m.attempts, ""))
        elif isinstance(m, rm.Dead):
            reason = reasons.get(str(m.row_id), "max_attempts")
            out.marks.append(Dead(m.row_id, m.attempts, m.at, reason, m.error))
            out.finished.add(m.row_id)
        elif isinstance(m, rm.Retry):  # the lease goes back; any replica claims it when due
            out.marks.append(RetryLater(m.row_id, m.attempts, m.available_at, m.error))
            out.finished.add(m.row_id)
        elif isinstance(m, rm.Release):
            out.marks.append(Released(m.row_id))
            out.finished.add(m.row_id)
        elif isinstance(m, rm.Redrive):  # the target works again: its backlog is due now
            out.marks.append(RedriveLane(m.processor, m.at))
        elif isinstance(m, rm.Alias):  # for the closed loop, which a state store has not
            continue
        elif m.kind != "trigger":
            out.letters.append(DeadLetterIn(m.kind, m.ref, m.reason, m.detail, m.payload, m.at))
    return out


# (item, event, decisions, the event's JSON): an accepted event's parts after the commit
_Planned = tuple[Item, Event, tuple[Decision, ...], str]


def event_json(ev: Event) -> str:
    """``ev.model_dump_json(exclude_defaults=True)`` (the log's copy, log_bridge.batch):
    the same serialiser call without the wrapper's keyword pass-through (~0.4 us an
    event)."""
    return ev.__pydantic_serializer__.to_json(ev, exclude_defaults=True).decode()


def process_shared_batch(
    batch: list[Item],
    *,
    state: StateStore,
    planner: Planner,
    registry: CompiledRegistry,
    relations: RelationStore,
    as_of: date | None,
    now: float,
    marks: StateMarks,
    ledger: bool = False,
    letter_topic: bool = False,
) -> tuple[BatchResult, float | None]:
    """One store transaction for the whole batch (state thread). Returns what the router
    applies after the commit, and the store-wide next window deadline. ``ledger``: record
    the completions reported for backfill runs (module docstring); ``letter_topic``: a
    dead-letter topic is configured (a new dead letter is stored with its record)."""
    now_dt = datetime.fromtimestamp(now, UTC)
    res = BatchResult(now_dt, as_of or now_dt.date(), relations, letter_topic=letter_topic)
    letters: list[tuple[Item, DeadLetterIn]] = []
    planned: list[_Planned] = []
    admissions: list[Admission] = []
    reported: list[Reported] = []  # for the completion ledger
    plan, runs, day = planner.plan, planner.runs, res.as_of
    for item in batch:
        ev = item.parsed
        if item.report is not None:  # a backfill run's bare report: recorded, not routed
            reported.append(Reported(item.report.trigger_id, item.report.status))
            res.outcomes.append((item, Outcome("accepted", item.report.event_id)))
            continue
        if isinstance(ev, EventError):
            letters.append((item, _letter(item, ev.reason, ev.detail, now, letter_topic)))
            continue
        ev = accepted_as(ev, now)  # an id-less message's send is an event of its own
        try:
            ev.event_id.encode("utf-8")
            ev_json = event_json(ev)
        except Exception as exc:
            letters.append((item, _letter(item, "unserialisable", _detail(exc), now, letter_topic)))
            continue
        try:
            decisions = plan(relations, ev, day)
        except UnicodeEncodeError as exc:
            letters.append((item, _letter(item, "unserialisable", _detail(exc), now, letter_topic)))
            continue
        except Exception as exc:  # a planner bug: keep the event, never lose it
            logger.exception("planner raised", extra={"event_id": safe(ev.event_id)})
            detail = f"{type(exc).__name__}: {exc}"
            letters.append((item, _letter(item, "planner_error", detail, now, letter_topic)))
            continue
        try:
            contribs = contributions(registry, ev, runs(ev, decisions))
        except Exception as exc:
            logger.exception("routing one event failed", extra={"event_id": safe(ev.event_id)})
            letters.append((item, _letter(item, "internal_error", _detail(exc), now, letter_topic)))
            continue
        planned.append((item, ev, decisions, ev_json))
        admissions.append(Admission(ev.event_id, contribs))
        if ledger:
            tid = item.inbound.trigger_id
            if tid is not None and names_backfill_run(tid):
                reported.append(Reported(tid, ev.status, ev.event_id))
    result = state.ingest(
        IngestBatch(
            admissions=tuple(admissions),
            dead_letters=tuple(d for _i, d in letters) + tuple(marks.letters),
            marks=tuple(marks.marks),
            completions=tuple(reported),
        ),
        now,
    )
    res.fired = [(x.item_id, x.trigger, x.body) for x in result.fired]
    if result.fired and state.options.modes is not None:
        res.other_modes = other_modes(result.fired, state.options.modes)
    for (item, letter), new in zip(letters, result.dead_lettered, strict=False):
        res.rejects.append((letter.reason, new))
        if new:
            note_dead_letter(
                res, item.inbound, letter.ref or "", letter.reason, letter.detail or ""
            )
        event_id = item.parsed.event_id
        res.outcomes.append(
            (
                item,
                Outcome(
                    "rejected",
                    safe(event_id) if event_id else None,
                    letter.reason,
                    letter.detail,
                    dead_lettered=True,
                ),
            )
        )
    new_ids = set(result.accepted)
    caused: dict[str, int] = {}  # triggers per event (a dict: cheaper than a Counter)
    get = caused.get
    for x in result.fired:
        for e in x.trigger.caused_by:
            caused[e] = get(e, 0) + 1
    add_outcome, decide = res.outcomes.append, res.decided.append
    decided = res.decided
    duplicates = 0
    for item, ev, decisions, ev_json in planned:
        eid = ev.event_id
        if eid not in new_ids:
            add_outcome((item, Outcome("duplicate", eid)))
            duplicates += 1
            continue
        new_ids.discard(eid)  # a repeat later in the batch is a duplicate
        decide((ev, decisions, item.inbound.trigger_id, ev_json))
        add_outcome((item, accepted(eid, get(eid, 0))))
    # here, not on the event loop (count_committed); decision_reasons' counts, from the
    # candidates' decisions only
    res.reasons = planner.reason_counts(decided)
    res.duplicates = duplicates
    sources = registry.sources
    res.noted = [d[0] for d in decided if d[0].source not in sources or d[0].referenced_tables]
    return res, result.next_deadline


def _detail(exc: Exception) -> str:
    return safe(f"{type(exc).__name__}: {exc}")[:300]


def _letter(item: Item, reason: str, detail: str, now: float, topic: bool) -> DeadLetterIn:
    """A rejected event's dead letter (:func:`~scoperouter.runtime.ingest.event_letter`)."""
    return event_letter(item.inbound, reason, detail, now, topic)

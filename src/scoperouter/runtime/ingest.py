"""Ingest batching: one state transaction per batch of queued messages.

Invariant: everything a batch changes -- seen ids, window journal rows, fired triggers in
the outbox, dead letters and pending dispatch marks -- commits together, before any of its
messages is acked. One item that cannot be routed (a poison message, a planner or window
bug) is dead-lettered alone: its savepoint is rolled back, the engine is rebuilt as the
transaction wrote it (so the items after it are routed on what commits) and the others
commit; a failure of the store itself fails the whole batch (its sources redeliver).
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, NamedTuple

from scoperouter.errors import EventError
from scoperouter.messages.body_ids import accepted_as
from scoperouter.messages.models import BACKFILL_TRIGGER_PREFIX, Event
from scoperouter.processor_registry.relations import RelationStore
from scoperouter.router.completion_ref import CompletionRef
from scoperouter.router.decisions import Decision
from scoperouter.runtime.dispatcher import Committed
from scoperouter.runtime.durable_windows import DurableWindows
from scoperouter.runtime.intake import Settle
from scoperouter.runtime.loop_runtime import completion_of as _completion_of
from scoperouter.runtime.loop_runtime import is_report, unknown_processor
from scoperouter.runtime.outcomes import Inbound, Outcome, json_bytes, safe
from scoperouter.runtime.store import Store
from scoperouter.runtime.store_health import is_store_failure
from scoperouter.state import letter_refs
from scoperouter.state.model import CompletionState, DeadLetterIn

logger = logging.getLogger("scoperouter.runtime")


class BareReport(NamedTuple):
    """A bare completion report (no source) of a backfill run: the run's trigger id, the
    status it reports, and the event id the message is answered with."""

    trigger_id: str
    status: CompletionState
    event_id: str


@dataclass(slots=True)
class Item:
    inbound: Inbound
    parsed: Event | EventError
    fut: Settle  # answered once, after the batch's commit (or its failure)
    # a bare report queued for a shared store's completion ledger (``parsed`` is then the
    # EventError of an event without a source: it is never routed nor dead-lettered)
    report: BareReport | None = None


@dataclass
class BatchResult:
    now_dt: datetime
    as_of: date
    relations: RelationStore  # the data the whole batch was planned with
    outcomes: list[tuple[Item, Outcome]] = field(default_factory=list)
    fired: list[Committed] = field(default_factory=list)
    # (event, decisions, trigger id it completes, its JSON): what the execution log gets
    decided: list[tuple[Event, tuple[Decision, ...], str | None, str]] = field(default_factory=list)
    rejects: list[tuple[str, bool]] = field(default_factory=list)  # (reason, newly stored)
    # a dead-letter topic is configured: a new event dead letter is stored with the record
    # it owes the topic (letter_record), and ``letters_owed`` says the batch stored one
    letter_topic: bool = False
    letters_owed: bool = False
    # counted by the state thread while ``decided``'s objects are in its cache (None: the
    # event loop counts them, batch_counts.count_committed): decisions by reason, duplicates
    reasons: dict[str, int] | None = None
    duplicates: int | None = None
    # the decided events the router notes (an unknown source, referenced tables), found by
    # the state thread (None: the router looks at every decided event)
    noted: list[Event] | None = None
    # processors with rows fired in this batch left to their lanes' pages (a row that fired
    # in another mode than its processor's now: DurableWindows.persist)
    waiting: list[str] = field(default_factory=list)
    # rows of ``fired`` stored with another mode than their processor's now, by row id (a
    # state store's: Dispatcher.fired's ``stored``)
    other_modes: dict[int, str] = field(default_factory=dict)
    # completions naming, by processor and date, a processor the registry does not have
    # (scoperouter_completions_unmatched_total)
    unmatched: int = 0


def process_batch(
    batch: list[Item],
    *,
    store: Store,
    windows: DurableWindows,
    relations: RelationStore,
    as_of: date | None,
    now: float,
    write_marks: Callable[[], None],
    letter_topic: bool = False,
) -> BatchResult:
    """One transaction for the whole batch (state thread); ``letter_topic``: a dead-letter
    topic is configured (a new dead letter is stored with the record it owes it)."""
    now_dt = datetime.fromtimestamp(now, UTC)
    res = BatchResult(now_dt, as_of or now_dt.date(), relations, letter_topic=letter_topic)
    batch_ids: set[str] = set()
    engine = windows.engine
    windows.ensure()
    with store.transaction():
        write_marks()
        for item in batch:
            ev = item.parsed
            if isinstance(ev, Event):  # an id-less message's send is an event of its own,
                ev = accepted_as(ev, now)  # its completion too (body_ids)
            ref = completion_of(item, ev, windows)  # the closed loop: which trigger it closes
            if ref is not None and (name := unknown_processor(ref, windows.registry)):
                # closes nothing: counted and logged, never silent (a name the registry
                # spells differently, e.g. a class name that is no registry processor's)
                logger.warning(
                    "completion names no registry processor",
                    extra={"processor": safe(name), "event_id": safe(ref.event_id or "")},
                )
                res.unmatched += 1
            if ref is not None and is_report(item.inbound):  # a bare report: not routed
                note_unmatched(res, ref, windows.complete(ref, now))
                res.outcomes.append((item, Outcome("accepted", ref.event_id or ref.trigger_id)))
                continue
            if isinstance(ev, EventError):
                res.outcomes.append(
                    (item, dead_letter_event(store, res, item, ev.reason, ev.detail, now))
                )
                continue
            # everything that can fail on the event's content happens before it touches
            # the store or the engine: a poison message is dead-lettered, not retried forever
            try:
                ev.event_id.encode("utf-8")
                ev_json = ev.model_dump_json(exclude_defaults=True)  # once: journal and log
            except Exception as exc:
                res.outcomes.append((item, _poison(store, res, item, "unserialisable", exc, now)))
                continue
            if ev.event_id in batch_ids or store.is_seen(ev.event_id):
                res.outcomes.append((item, Outcome("duplicate", ev.event_id)))
                continue
            try:
                decisions = engine.plan(ev, relations, res.as_of)
            except Exception as exc:  # a planner bug: keep the event, never lose it
                logger.exception("planner raised", extra={"event_id": ev.event_id})
                detail = f"{type(exc).__name__}: {exc}"
                res.outcomes.append(
                    (item, dead_letter_event(store, res, item, "planner_error", detail, now))
                )
                continue
            try:
                runs = [(d, d.model_dump_json()) for d in decisions if d.action == "run"]
            except Exception as exc:
                res.outcomes.append((item, _poison(store, res, item, "unserialisable", exc, now)))
                continue
            flen, jmark = len(res.fired), windows.journal_mark()
            try:
                with store.savepoint():
                    store.mark_seen(ev.event_id, now)
                    fired = windows.accept(ev, ev_json, runs, now)
                    why = windows.complete(ref, now) if ref is not None else None
                    res.fired.extend(windows.persist(fired, now, now_dt))
            except Exception as exc:
                if is_store_failure(exc):
                    raise  # the store itself: the whole batch is retried by its sources
                # this item only: its rows are rolled back, the others commit
                logger.exception("routing one event failed", extra={"event_id": safe(ev.event_id)})
                del res.fired[flen:]
                # the engine as this transaction wrote it, for the items after this one
                windows.undo_item(jmark)
                res.outcomes.append((item, _poison(store, res, item, "internal_error", exc, now)))
                continue
            if ref is not None:
                note_unmatched(res, ref, why)
            batch_ids.add(ev.event_id)
            res.decided.append((ev, decisions, item.inbound.trigger_id, ev_json))
            res.outcomes.append(
                (item, Outcome("accepted", ev.event_id, triggers=len(res.fired) - flen))
            )
        windows.finish_journal()
    windows.after_commit()
    res.waiting = windows.take_waiting()
    return res


_UNMATCHED = {
    "unknown_trigger": "completion names a trigger the ledger does not hold (forgotten a day"
    " after it succeeded, sent before the loop was on, or never sent): it closes nothing,"
    " and missed ids it names are not re-run (the trigger's body is gone)",
    "fired_after": "completion was produced before every open trigger of its processor and"
    " date fired (a redelivery or replay of an earlier run's): it closes none of them",
    "superseded": "completion names a trigger that fired again after the completion was"
    " produced (an earlier firing's run, or a producer clock behind the router's by more"
    " than the slack, or a local time sent without its zone): ignored, the trigger stays open",
}


def note_unmatched(res: BatchResult, ref: CompletionRef, why: str | None) -> None:
    """A completion the ledger matched to no trigger (``why``: its reason, None: nothing to
    say): counted (``scoperouter_completions_unmatched_total``) and logged -- except one
    naming a backfill run's trigger, which the backfill, not the ledger, waits for."""
    if why is None or (ref.trigger_id or "").startswith(BACKFILL_TRIGGER_PREFIX):
        return
    logger.warning(
        _UNMATCHED[why],
        extra={
            "reason": why,
            "trigger_id": safe(ref.trigger_id or ""),
            "processor": safe(ref.processor or ""),
            "status": ref.outcome,
            "missed_entities": len(ref.missed),
            "event_id": safe(ref.event_id or ""),
        },
    )
    res.unmatched += 1


def _poison(
    store: Store, res: BatchResult, item: Item, reason: str, exc: Exception, now: float
) -> Outcome:
    """Dead-letter one event the router cannot process (acked: redelivery cannot help)."""
    detail = safe(f"{type(exc).__name__}: {exc}")[:300]
    return dead_letter_event(store, res, item, reason, detail, now)


def dead_letter_event(
    store: Store, res: BatchResult, item: Item, reason: str, detail: str, now: float
) -> Outcome:
    """Store a rejected event in the dead-letter table (caller holds the transaction)."""
    d = event_letter(item.inbound, reason, detail, now, res.letter_topic)
    new = store.dead_letter(d.kind, d.ref, reason, d.detail, d.payload, now, d.topic_record)
    res.rejects.append((reason, new))
    if new:
        note_dead_letter(res, item.inbound, d.ref or "", reason, d.detail or "")
    event_id = item.parsed.event_id
    return Outcome(
        "rejected", safe(event_id) if event_id else None, reason, detail, dead_lettered=True
    )


def event_letter(
    inbound: Inbound, reason: str, detail: str, now: float, topic: bool
) -> DeadLetterIn:
    """A rejected event's dead letter: its payload, its ref (:func:`event_ref`), the detail
    made safe and, with ``topic`` (a dead-letter topic is configured), the record it owes
    the topic (:func:`letter_record`)."""
    payload = inbound.data if inbound.data is not None else json_bytes(inbound.obj)
    ref, detail = event_ref(inbound, payload), safe(detail)
    record = letter_record(inbound, ref, reason, detail, payload) if topic else None
    return DeadLetterIn("event", ref, reason, detail, payload, now, record)


def _delivery(inbound: Inbound) -> tuple[str | None, str | None]:
    """The message id and subscription a rejected event came with, made safe."""
    mid, sub = inbound.message_id, inbound.subscription
    return (None if mid is None else safe(mid), None if sub is None else safe(sub))


def event_ref(inbound: Inbound, payload: bytes | None) -> str:
    """The ref of a rejected event's dead letter: its delivery's name, unique across
    topics (Pub/Sub message ids are unique per topic only) -- ``<subscription>#<message
    id>``, or the bare message id from no subscription (as refs were before); without a
    message id ``sha256:<digest of the payload>`` in its place. Text from the message (a
    push envelope's messageId and subscription) is escaped where UTF-8 cannot take it (a
    lone surrogate) and a NUL where PostgreSQL cannot (the failed write failed the whole
    batch, with every redelivery); a ref past MAX_ID_CHARS is its head and a hash
    (letter_refs.long_ref). A different message meeting a ref already taken is still
    stored, under another ref (letter_refs.place)."""
    mid = inbound.message_id
    name = safe(mid) if mid is not None else f"sha256:{letter_refs.payload_digest(payload)}"
    if inbound.subscription is not None:
        name = f"{safe(inbound.subscription)}#{name}"
    return letter_refs.bounded(letter_refs.nul_free(name))


def letter_record(
    inbound: Inbound, ref: str, reason: str, detail: str, payload: bytes | None
) -> bytes:
    """The record the dead-letter topic gets for a rejected event (JSON, docs/registry.md
    ``dead_letter_topic``): its kind, reason, detail, message id, subscription and ref,
    and the message: ``payload``, its text when it is UTF-8 (null when there is none), or
    else ``payload_b64``, its bytes in base64 (``payload`` null) -- the bytes are always
    recoverable."""
    mid, sub = _delivery(inbound)
    rec: dict[str, Any] = {
        "kind": "event",
        "reason": reason,
        "detail": detail,
        "message_id": mid,
        "subscription": sub,
        "ref": ref,
        "payload": None,
    }
    if payload:
        try:
            rec["payload"] = payload.decode("utf-8")
        except UnicodeDecodeError:  # replacing its bytes would lose them
            rec["payload_b64"] = base64.b64encode(payload).decode("ascii")
    return json.dumps(rec).encode()


def note_dead_letter(
    res: BatchResult,
    inbound: Inbound,
    ref: str,
    reason: str,
    detail: str,
) -> None:
    """A new event dead letter logged (stored with its topic record when a dead-letter
    topic is configured: ``res.letters_owed``)."""
    mid, sub = _delivery(inbound)
    logger.warning(
        "event dead-lettered",
        extra={
            "reason": reason,
            "detail": detail,
            "message_id": mid,
            "subscription": sub,
            "ref": ref,
        },
    )
    res.letters_owed = res.letters_owed or res.letter_topic


def completion_of(
    item: Item, parsed: Event | EventError, windows: DurableWindows
) -> CompletionRef | None:
    """The completion an item reports, when the closed loop is on (docs/ledger.md);
    ``parsed`` is the item's event as accepted (:func:`~scoperouter.messages.body_ids.
    accepted_as`)."""
    if not windows.loop_on:
        return None
    return _completion_of(item.inbound, parsed, windows.registry)

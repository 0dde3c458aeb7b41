"""Dispatch outcomes as typed marks, queued on the event loop and written in a state
transaction.

Invariant: a mark is a value; :class:`MarkQueue` hands a batch over with :meth:`take`
and gets it back with :meth:`put_back` when the transaction that was to write it failed,
so an outcome is written exactly once or retried, never lost. Until the job that took a
batch has written it (:meth:`MarkQueue.written`) or put it back, what its ``Done``,
``Dead``, ``Retry`` and ``Redrive`` marks settle is :meth:`MarkQueue.unwritten`: the
snapshot + journal store does not show it yet, so the dispatcher's pump neither pages a
row done or dead (nor sweeps it past its horizon: its outcome is decided, only its write
waits) nor forgets when a deferred row is due, nor that a redriven lane's rows are due. (A
deferred row is not held back: if the write fails, the page may start it before its
time, one attempt early, never twice at once.)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from scoperouter.runtime.store import Store


@dataclass(frozen=True, slots=True)
class Done:
    """The trigger of ``row_id`` was delivered after ``attempts`` attempts, at ``at``."""

    row_id: int
    attempts: int
    at: float


@dataclass(frozen=True, slots=True)
class DoneMany:
    """The triggers of ``row_ids`` were delivered at ``at``, row ``row_ids[i]`` after
    ``attempts[i]`` attempts: one delivery's :class:`Done` marks as one value (built once
    per delivery on the event loop, not once per trigger)."""

    row_ids: tuple[int, ...]
    attempts: tuple[int, ...]
    at: float

    def each(self) -> list[Done]:
        """The :class:`Done` mark of each row, in order."""
        at = self.at
        return [Done(r, a, at) for r, a in zip(self.row_ids, self.attempts, strict=True)]


@dataclass(frozen=True, slots=True)
class Alias:
    """The trigger ``trigger_id`` was delivered as message ``message_id`` (the id a Pub/Sub
    publish returned), at ``at``: a completion naming that id as ``trigger_message_id``
    closes the trigger (the closed loop's ledger, journaled with the delivery's mark)."""

    trigger_id: str
    message_id: str
    at: float


@dataclass(frozen=True, slots=True)
class Dead:
    """The trigger of ``row_id`` failed for good (``error``); ``trigger_id`` names it
    (the closed loop's ledger hears of it: no run of that delivery will ever report)."""

    row_id: int
    attempts: int
    at: float
    error: str
    trigger_id: str | None = None


@dataclass(frozen=True, slots=True)
class Attempt:
    """``attempts`` failed so far (survives a restart: the count goes on)."""

    row_id: int
    attempts: int


@dataclass(frozen=True, slots=True)
class Retry:
    """Attempt ``attempts`` failed (``error``): the row (of ``processor``) stays pending in
    the store and is due again at ``available_at`` (the backlog lives in the store, not in
    tasks)."""

    row_id: int
    attempts: int
    available_at: float
    error: str
    processor: str


@dataclass(frozen=True, slots=True)
class Redrive:
    """``processor``'s target works again: its deferred rows are all due at ``at``."""

    processor: str
    at: float


@dataclass(frozen=True, slots=True)
class Release:
    """A row handed to the dispatcher that it did not start (its target busy or failing):
    it waits in the store. A no-op for the snapshot + journal store (the row is pending
    already); a state store gives its lease back, so any replica may claim it."""

    row_id: int


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A dead-letter row (kind ``trigger``: an undeliverable trigger's body)."""

    kind: str
    ref: str | None
    reason: str
    detail: str | None
    payload: bytes | None
    at: float


Mark = Done | DoneMany | Alias | Dead | Attempt | Retry | Redrive | Release | DeadLetter


@dataclass(frozen=True, slots=True)
class Unwritten:
    """Outcomes taken by a state job that has not ended (:meth:`MarkQueue.unwritten`):
    the ``rows`` done or dead, per processor the earliest time a deferred row is due
    (``due``), and the processors whose deferred rows a ``Redrive`` makes due now."""

    rows: frozenset[int]
    due: Mapping[str, float]
    redriven: frozenset[str] = frozenset()


NOTHING_UNWRITTEN = Unwritten(frozenset(), {})


Undelivered = Callable[[str, int, float, str], None]
"""Told ``(trigger_id, row_id, at, error)`` of an outbox row dead-lettered undelivered."""


def write_marks(
    store: Store,
    marks: list[Mark],
    on_alias: Callable[[Alias], None] | None = None,
    on_dead: Undelivered | None = None,
) -> None:
    """Apply marks (state thread; the caller holds a transaction). ``on_alias`` records an
    :class:`Alias` (the router's closed loop, in the same transaction); without it, or
    without the loop, an alias is dropped (nothing would read it). ``on_dead`` hears of
    every :class:`Dead` mark naming its trigger (the closed loop's ledger, in the same
    transaction: a trigger never delivered will never report)."""
    for m in marks:
        if isinstance(m, Done):
            store.mark_done(m.row_id, m.attempts, m.at)
        elif isinstance(m, DoneMany):
            for row_id, attempts in zip(m.row_ids, m.attempts, strict=True):
                store.mark_done(row_id, attempts, m.at)
        elif isinstance(m, Dead):
            store.mark_dead(m.row_id, m.attempts, m.at, m.error)
            if on_dead is not None and m.trigger_id is not None:
                on_dead(m.trigger_id, m.row_id, m.at, m.error)
        elif isinstance(m, Attempt):
            store.mark_attempts(m.row_id, m.attempts)
        elif isinstance(m, Retry):
            store.defer(m.row_id, m.attempts, m.available_at, m.error)
        elif isinstance(m, Redrive):
            store.redrive_lane(m.processor, m.at)
        elif isinstance(m, Release):
            continue  # the row is pending in this store already
        elif isinstance(m, Alias):
            if on_alias is not None:
                on_alias(m)
        else:
            store.dead_letter(m.kind, m.ref, m.reason, m.detail, m.payload, m.at)


class MarkQueue:
    """Marks not yet written (event-loop side)."""

    def __init__(self) -> None:
        self._marks: list[Mark] = []
        self._out: list[list[Mark]] = []  # batches taken by jobs that have not ended

    def __bool__(self) -> bool:
        return bool(self._marks)

    def append(self, mark: Mark) -> None:
        self._marks.append(mark)

    def take(self) -> list[Mark]:
        """Hand the queued marks over to a state-thread job; it ends with :meth:`written`
        or :meth:`put_back`."""
        marks, self._marks = self._marks, []
        if marks:
            self._out.append(marks)
        return marks

    def written(self, marks: list[Mark]) -> None:
        """The job that took ``marks`` (this very list) wrote them; also when its end is
        unknown (its caller stopped waiting): the rows are no longer held back, at worst
        one is dispatched again (at-least-once), never held back for good."""
        self._forget(marks)

    def put_back(self, marks: list[Mark]) -> None:
        """The job that was to write ``marks`` failed: keep them first in line."""
        self._forget(marks)
        self._marks[:0] = marks

    def unwritten(self) -> Unwritten:
        """What the ``Done``, ``Dead``, ``Retry`` and ``Redrive`` marks taken by jobs not
        yet ended settle (a queued mark is not: the job that takes it writes it before it
        reads)."""
        if not self._out:
            return NOTHING_UNWRITTEN
        rows: set[int] = set()
        due: dict[str, float] = {}
        redriven: set[str] = set()
        for batch in self._out:
            for m in batch:
                if isinstance(m, DoneMany):
                    rows.update(m.row_ids)
                elif isinstance(m, Done | Dead):
                    rows.add(m.row_id)
                elif isinstance(m, Retry):
                    at = due.get(m.processor)
                    due[m.processor] = m.available_at if at is None else min(at, m.available_at)
                elif isinstance(m, Redrive):
                    redriven.add(m.processor)
        return Unwritten(frozenset(rows), due, frozenset(redriven))

    def _forget(self, marks: list[Mark]) -> None:
        out = self._out
        for i, batch in enumerate(out):
            if batch is marks:
                del out[i]
                return

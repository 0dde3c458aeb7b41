"""The book of ledger entries: one :class:`~scoperouter.router.ledger.Entry` per trigger id.

Invariant: the book stores entries, indexes open ones by ``(processor, date)`` in the
order they (re)joined the open set (:attr:`~scoperouter.router.ledger.Entry.opened_seq`,
kept by the snapshot: a restore rebuilds the same order, not the trigger ids' order) and
orders their deadlines; every rule is :func:`scoperouter.router.ledger.step` and its table.
Nothing here reads a clock or does I/O. Closed entries are kept (the trace, dead letters)
until :meth:`LedgerBook.forget_closed` drops succeeded ones closed before a horizon, with
the Pub/Sub message ids recorded for them (:meth:`LedgerBook.alias`).

A completion naming only a message id the book does not know yet is parked, not dropped:
its processor may have run before the router heard back from its own publish. When that id
is recorded (:meth:`LedgerBook.alias`) every completion naming it is applied, in the order
they came (as if the id had been recorded first); a parked success older than
:data:`~.ledger_parked.ORPHAN_TTL_S` is dropped (a report of missed ids or a failure is
not: its run's success parked after it must stay stale), and at most
:data:`~.ledger_parked.ORPHAN_MAX` wait (successes dropped first: :mod:`.ledger_parked`).
Parked completions are in the snapshot.

A restored book recomputes every open entry's timer under the registry it is restored
under (:func:`~scoperouter.router.ledger.retimed`): the stored ``due_at`` is the old
registry's, and a restart is how an operator changes ``completion_timeout``.

A completion with an event id is taken once: the ids of those taken (applied to an entry,
or matching none: a routed one too, since the daemon's seen ids dedupe it only within
``dedup_horizon``, which may be shorter than a day) are kept, bounded, in the snapshot (:mod:`.ledger_applied`), so a redelivery
changes nothing -- also one naming only the processor and the date, which would otherwise
find the *next* open trigger of that key once the first has closed (or one that fired
after it was produced: never, :func:`~scoperouter.router.ledger.fired_after`).

Each recorded message id remembers the attempt it was published for (the entry's attempt
when the id is recorded: the journal replays the same order, so the same attempt). Which
run a completion names, the input it is (stale, unattributed, an earlier attempt's) and
what it counts for its entry: :mod:`.ledger_report`.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable
from datetime import date
from typing import Any, NamedTuple

from scoperouter.messages.models import Trigger
from scoperouter.router.completion_ref import CompletionRef, ref_from_dict, ref_to_dict
from scoperouter.router.ledger import (
    Entry,
    Notice,
    fired_after,
    open_entry,
    retimed,
    step,
    timeout_input,
)
from scoperouter.router.ledger_applied import AppliedCompletions
from scoperouter.router.ledger_json import entry_from_json, entry_to_json
from scoperouter.router.ledger_parked import ParkedCompletions
from scoperouter.router.ledger_report import account, attempt_of, judge, push_row_trigger
from scoperouter.router.loop_params import LoopParams
from scoperouter.router.trigger_regrain import regrain_entries

SNAPSHOT_VERSION = 1
Key = tuple[str, date]


class Redispatch(NamedTuple):
    """A trigger to send again: same id, attempt ``attempt``, at ``at``."""

    trigger: Trigger
    attempt: int
    at: float


class LedgerBook:
    """Every trigger the router sent, open or closed. Drive it from one thread."""

    def __init__(self, params: Callable[[str], LoopParams]) -> None:
        self.params = params
        self._entries: dict[str, Entry] = {}
        # open trigger ids per key, oldest first (a dict as an ordered set: a busy key holds
        # thousands, and a list's membership test and removal walked them all)
        self._open: dict[Key, dict[str, None]] = {}
        self._seq = 0  # the last Entry.opened_seq given (an entry joining the open set)
        self._aliases: dict[str, str] = {}  # Pub/Sub message id -> trigger id
        self._alias_attempt: dict[str, int] = {}  # message id -> the attempt it was sent for
        # completions naming a message id not recorded yet (all of them are applied, in
        # order, when the id is recorded: as if it had been recorded before they came)
        self._parked = ParkedCompletions()
        # the event ids of the completions taken (applied, or matching no trigger): each is
        # taken once (bounded: .ledger_applied)
        self._applied = AppliedCompletions()
        self._heap: list[tuple[float, str]] = []  # (due_at, trigger id), lazy
        self.notices: list[Notice] = []  # drained by the driver
        self.deferred: set[str] = set()  # re-dispatches due but held by a barrier
        self.changes = 0  # bumped by every state change (drivers journal when it moves)
        # why the last complete() matched no trigger: "unknown_trigger" (forgotten, never
        # sent), "fired_after" (its key's open ones all fired after it), "superseded" (its
        # named trigger fired again after it was produced: ignored); else None
        self.last_unmatched: str | None = None

    # ------------------------------------------------------------------ reads
    def get(self, trigger_id: str) -> Entry | None:
        return self._entries.get(self._aliases.get(trigger_id, trigger_id))

    def entries(self) -> tuple[Entry, ...]:
        return tuple(self._entries[k] for k in sorted(self._entries))

    def dead_letters(self) -> tuple[Entry, ...]:
        return tuple(e for e in self.entries() if e.phase == "dead")

    @property
    def open_count(self) -> int:
        return sum(len(v) for v in self._open.values())

    def busy(self, processor: str, day: date) -> bool:
        """True when ``processor`` has an open trigger (dispatched or backing off) on ``day``."""
        return bool(self._open.get((processor, day)))

    def next_deadline(self) -> float | None:
        heap = self._heap
        while heap:
            at, tid = heap[0]
            e = self._entries.get(tid)
            if e is not None and e.is_open and e.due_at == at:
                return at
            heapq.heappop(heap)
        return None

    # ------------------------------------------------------------------ inputs
    @property
    def parked_count(self) -> int:
        """Completions waiting for the message id they name to be recorded."""
        return len(self._parked)

    @property
    def parked_dropped(self) -> int:
        """Parked completions expired or evicted (only counts up)."""
        return self._parked.dropped

    @property
    def applied_evicted(self) -> dict[str, int]:
        """Completion ids dropped for room before their day, per memory (only counts up)."""
        return dict(self._applied.evicted)

    def alias(self, message_id: str, trigger_id: str, now: float) -> Entry | None:
        """Remember the Pub/Sub message id a trigger was published with (each attempt's
        publish gets an id of its own: all of them name the trigger). A completion that
        named that id before it was recorded is applied now; returns its entry, if any.
        The id is stamped with the trigger's attempt now (the first record wins)."""
        self._aliases[message_id] = trigger_id
        known = self._entries.get(trigger_id)
        if known is not None and message_id not in self._alias_attempt:
            self._alias_attempt[message_id] = known.attempt
        self.changes += self._parked.expire(now)
        refs = self._parked.take(message_id)
        if refs is None:
            return None
        self.changes += 1
        entry = None
        for ref in refs:
            entry, _ = self.complete(ref, now)
        return entry

    def open(self, trigger: Trigger, now: float) -> Entry:
        """A trigger was dispatched (its window fired). A trigger id seen before (the same
        window content fired again) reopens its entry as a new attempt."""
        old = self._entries.get(trigger.trigger_id)
        p = self.params(trigger.processor)
        if old is not None and old.is_open:
            return old
        e = open_entry(trigger, now, p)
        if old is not None:
            e = e._replace(attempt=old.attempt + 1, history=(*old.history, *e.history))
        return self._put(e)

    def find(self, ref: CompletionRef) -> Entry | None:
        """The entry a completion names (trigger id, alias, else the oldest open one of its
        key that did not fire after it was produced)."""
        for tid in (ref.trigger_id, ref.message_id):
            if tid is not None:
                e = self.get(tid)
                if e is not None:
                    return e
        mid = ref.message_id
        if mid is not None and ref.trigger_id is None:
            # the push envelope's messageId an HTTP target received: "<trigger_id>-<row>"
            # (runtime/dispatch_delivery.py), copied by the processor as trigger_message_id
            head = push_row_trigger(mid)
            if head is not None:
                e = self.get(head)  # an old id of a regrained trigger names it too
                if e is not None:
                    return e
        if ref.trigger_id is None and ref.message_id is None and ref.processor and ref.day:
            # the oldest open one it may report: not one that fired after it was produced
            for tid in self._open.get((ref.processor, ref.day), ()):
                e = self._entries[tid]
                if not fired_after(e, ref):
                    return e
        return None

    def attempt_of(self, e: Entry, ref: CompletionRef) -> int | None:
        """The attempt of ``e`` whose message ``ref`` names (None: unknown)."""
        return attempt_of(e, ref, self._aliases, self._alias_attempt)

    def complete(self, ref: CompletionRef, now: float) -> tuple[Entry | None, list[Redispatch]]:
        """Apply a completion. Returns the entry (None: names no known trigger) and what
        to send at once (nothing today: re-runs wait for their backoff)."""
        eid = ref.event_id
        self.last_unmatched = None
        self._applied.expire(now)
        taken = self._applied.get(eid) if eid is not None else None
        if taken is not None:
            # a completion taken before, delivered again (at-least-once): it changes nothing,
            # also when it names only the processor and the date (it would find the next
            # open trigger of that key)
            return (None if taken[0] is None else self.get(taken[0])), []
        e = self.find(ref)
        if e is None:
            if ref.trigger_id is not None:
                self.last_unmatched = "unknown_trigger"
            elif ref.message_id is None and ref.processor and ref.day:  # find skipped them
                self.last_unmatched = "fired_after" if self.busy(ref.processor, ref.day) else None
            if ref.message_id is not None and ref.trigger_id is None:
                self.changes += self._parked.park(ref, now)  # taken when its id is recorded
            elif eid is not None:
                # a routed one too: the durable seen ids catch its redelivery only within
                # dedup_horizon, which may be shorter than this memory's day
                self._applied.add(eid, None, now)
                self.changes += 1
            return None, []
        if eid is not None:
            self._applied.add(eid, e.trigger_id, now)
            self.changes += 1
            if any(a.event_id == eid for a in e.history):
                # applied before the ids were kept (a snapshot without them), delivered again:
                # it is about an earlier attempt, never the one running now
                return e, []
        p = self.params(e.trigger.processor)
        v = judge(e, ref, p, self._aliases, self._alias_attempt)
        if v.superseded:  # said like a report matching nothing: a producer's clock may be off
            self.last_unmatched = "superseded"
        st = step(e, v.input, now, p, ref, v.attempt)
        entry = account(e, st, v, ref, now)
        if st.effect != "ignore":
            entry = self._put(entry)
            rerun = st.effect == "schedule" and v.input == "unattributed"
            self._notice("unattributed" if rerun else st.effect, entry, now)
        elif entry is not e:
            self._entries[e.trigger_id] = entry
        return self._entries[e.trigger_id], []

    def due(
        self, now: float, may_send: Callable[[Trigger], bool] | None = None
    ) -> list[Redispatch]:
        """Timeouts and re-dispatches due by ``now``, earliest first, each at its time. A
        re-dispatch ``may_send`` refuses waits in :attr:`deferred` (see :meth:`send_deferred`).
        Parked successes past :data:`~.ledger_parked.ORPHAN_TTL_S` are dropped too."""
        self.changes += self._parked.expire(now)
        out: list[Redispatch] = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            at, tid = heapq.heappop(heap)
            e = self._entries.get(tid)
            if e is None or not e.is_open or e.due_at != at:
                continue
            if e.phase == "backoff" and may_send is not None and not may_send(e.trigger):
                if tid not in self.deferred:
                    # a state change: the driver journals this tick, or a replay would send
                    # the re-dispatch at its due time instead of when the barrier lets it go
                    self.deferred.add(tid)
                    self.changes += 1
                continue
            out.extend(self._retry(e, at))
        return out

    def send_deferred(self, may_send: Callable[[Trigger], bool], now: float) -> list[Redispatch]:
        """Deferred re-dispatches that may go now."""
        out: list[Redispatch] = []
        for tid in sorted(self.deferred):
            e = self._entries.get(tid)
            if e is None or e.phase != "backoff":
                self.deferred.discard(tid)
            elif may_send(e.trigger):
                self.deferred.discard(tid)
                out.extend(self._retry(e, now))
        return out

    def _retry(self, e: Entry, at: float) -> list[Redispatch]:
        """A timer of ``e`` at ``at``: a timeout, or the end of its backoff."""
        p = self.params(e.trigger.processor)
        inp = timeout_input(e, p) if e.phase == "dispatched" else "retry_due"
        st = step(e, inp, at, p)
        entry = self._put(st.entry)
        self._notice(st.effect if inp == "retry_due" else "timed_out", entry, at)
        if st.effect == "dead_letter":
            self._notice("dead_letter", entry, at)
        if st.redispatch is None:
            return []
        return [Redispatch(st.redispatch, st.entry.attempt, at)]

    def redrive(self, trigger_ids: Iterable[str], now: float) -> list[Redispatch]:
        """Send dead letters again (same trigger id, fresh retries)."""
        out: list[Redispatch] = []
        for tid in trigger_ids:
            e = self.get(tid)
            if e is None or e.phase != "dead":
                continue
            p = self.params(e.trigger.processor)
            st = step(e, "redrive", now, p)
            self._notice("redrive", self._put(st.entry), now)
            assert st.redispatch is not None
            out.append(Redispatch(st.redispatch, st.entry.attempt, now))
        return out

    def forget_closed(self, before: float) -> int:
        """Drop succeeded entries whose last event (their close, or a late report after it)
        came before ``before`` (dead letters stay). Counted from the close, not the open: a
        trigger redriven days after it opened keeps its entry, so its run's report naming
        missed ids, arriving after the run's change events closed it, still reopens it."""
        drop = [
            k
            for k, e in self._entries.items()
            if e.phase == "succeeded" and (e.history[-1].at if e.history else e.opened_at) < before
        ]
        for k in drop:
            del self._entries[k]
        if drop:  # their message ids go with them
            gone = set(drop)
            self._aliases = {m: t for m, t in self._aliases.items() if t not in gone}
            self._alias_attempt = {
                m: n for m, n in self._alias_attempt.items() if m in self._aliases
            }
        return len(drop)

    # ------------------------------------------------------------------ internals
    def _notice(self, effect: str, e: Entry, at: float) -> None:
        kind = {
            "close": "succeeded",
            "schedule": "failed" if e.outcome == "failed" else "timed_out",
            "rerun_missed": "partial",
            "dead_letter": "dead_letter",
            "redispatch": "redispatch",
        }.get(effect, effect)
        self.notices.append(Notice(kind, e, at))
        self.changes += 1

    def _put(self, e: Entry, *, keep_seq: bool = False) -> Entry:
        """Store ``e`` (returned as stored); one joining the open set of its key goes last in
        it and is given the next :attr:`Entry.opened_seq` (``keep_seq``: a restore, the
        entry keeps its own)."""
        self.changes += 1
        tid = e.trigger_id
        ids = self._open.get(e.key)
        if e.is_open:
            if ids is None or tid not in ids:
                if keep_seq:
                    self._seq = max(self._seq, e.opened_seq)
                else:
                    self._seq += 1
                    e = e._replace(opened_seq=self._seq)
                if ids is None:
                    self._open[e.key] = {tid: None}
                else:
                    ids[tid] = None
            if e.due_at is not None:
                heapq.heappush(self._heap, (e.due_at, tid))
        self._entries[tid] = e
        if not e.is_open and ids is not None and tid in ids:
            del ids[tid]
            if not ids:
                del self._open[e.key]
        return e

    # ------------------------------------------------------------------ persistence
    def snapshot(self) -> dict[str, Any]:
        return {
            "version": SNAPSHOT_VERSION,
            "entries": [entry_to_json(e) for e in self.entries()],
            "opened_seq": self._seq,
            "aliases": dict(sorted(self._aliases.items())),
            "alias_attempts": dict(sorted(self._alias_attempt.items())),
            "parked": [[m, ref_to_dict(r), at] for m, r, at in self._parked.items()],
            "applied": self._applied.items(),
        }

    @classmethod
    def restore(
        cls,
        params: Callable[[str], LoopParams],
        snap: dict[str, Any],
        granularity: Callable[[str], str] | None = None,
    ) -> LedgerBook:
        """The book :meth:`snapshot` wrote, its timers under ``params`` and, given
        ``granularity`` (a processor's now; "" for one no longer in the registry), every
        entry not succeeded whose trigger's ids its processor no longer takes holding the
        full-date trigger instead (:func:`~.trigger_regrain.regrain_entries`)."""
        if not isinstance(snap, dict) or snap.get("version") != SNAPSHOT_VERSION:
            raise ValueError(f"unsupported ledger snapshot (expected version {SNAPSHOT_VERSION})")
        book = cls(params)
        book._seq = int(snap.get("opened_seq", 0))
        # open ones rejoin their key's open set in the order they joined it (opened_seq):
        # the oldest open trigger stays the one it was, not the smallest id; a snapshot
        # written before the sequence was kept (every entry 0) orders them by first
        # dispatch, then trigger id, and numbers them in that order
        entries = sorted(
            map(entry_from_json, snap.get("entries", [])),
            key=lambda e: (e.opened_seq, e.opened_at, e.trigger_id),
        )
        renamed: dict[str, str] = {}
        if granularity is not None:
            entries, renamed = regrain_entries(entries, granularity)
        for e in entries:
            # timers follow the registry restored under (a restart that adds or shortens
            # completion_timeout / retry_backoff frees triggers waiting under the old one)
            book._put(retimed(e, params(e.trigger.processor)), keep_seq=e.opened_seq > 0)
        book._aliases.update({str(k): str(v) for k, v in snap.get("aliases", {}).items()})
        if renamed:  # message ids of a regrained trigger's runs, and its old id, name it
            book._aliases = {m: renamed.get(t, t) for m, t in book._aliases.items()}
            book._aliases.update(renamed)
        # absent in snapshots before attempts were recorded: those ids attribute nothing
        book._alias_attempt.update(
            {str(k): int(v) for k, v in snap.get("alias_attempts", {}).items()}
        )
        for mid, ref, at in snap.get("parked", []):  # absent in snapshots before they were kept
            book._parked.push(str(mid), ref_from_dict(ref), float(at))
        try:  # absent in snapshots before they were kept: the entries' histories still tell
            book._applied.load(snap.get("applied", []))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"malformed applied completion ids: {exc}") from exc
        return book

"""The state-store interface: everything the router must remember across restarts and
share between replicas.

Invariants every implementation keeps (``tests/state`` checks them on each one):

* **Dedupe.** An event id is admitted once; a re-seen id keeps its FIRST time and its
  contributions are ignored (reported as a duplicate).
* **Windows.** One record per ``(processor, day)``, changed only inside the ingest
  transaction that admits the events contributing to it, merged by
  :func:`scoperouter.state.merge.apply` (``live`` once a contribution joined while its
  processor fired live, ``StoreOptions.modes``). A contribution ends in exactly one fired
  trigger: never lost, never in two triggers, however many replicas ingest and fire.
* **Outbox.** A fired trigger is inserted in the transaction that fired its window, leased
  to the firing replica, with the dispatch mode it fired in (``live`` for a ``live``
  window, else its processor's in ``StoreOptions.modes``; kept
  by every later change of the row, a redrive too). A lease runs out after ``lease_s``; :meth:`rescue_expired` makes
  the row claimable by any replica again. Finished rows (``done``/``dead``) change only
  by an operator's :meth:`redrive_dead` (back to pending) or :meth:`discard_dead`.
* **Dead letters** are unique per ``(kind, ref)`` (the first is kept). One stored with a
  ``topic_record`` owes it to the dead-letter topic until :meth:`letters_copied`; a prune
  with ``Retention.keep_owed`` never deletes it before.
* **Completion ledger:** one row per trigger id; the latest report (by its time) gives
  the state, the first report's time is kept, reports are counted. An ingest records its
  batch's reported completions (``IngestBatch.completions``) in its transaction: an
  event's only when the batch admits that event (a duplicate is not recorded again), a
  bare report's always.

Methods are synchronous: drive a store from one thread (the daemon's state thread) --
except :meth:`StateStore.extend_leases` on a store whose optional ``renews_apart`` is true
(PostgreSQL: a connection of its own), which the lease keeper calls from a thread of its
own, beside the state thread's call (an ingest waiting on a row lock must not delay the
renewal of leases other replicas rescue when they run out).
Times are epoch seconds given by the caller; no method reads the wall clock (PostgreSQL
moves a lease it writes on by the monotonic time its call waited on locks: see
:mod:`scoperouter.state.postgres`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

from scoperouter.state.legacy import LegacyState
from scoperouter.state.model import (
    Completion,
    CompletionState,
    DeadLetter,
    DeadLetterIn,
    IngestBatch,
    IngestResult,
    LaneClaim,
    LaneClaimed,
    Mark,
    OutboxItem,
    OutboxRow,
    Pruned,
    Retention,
    StoreOptions,
    WindowState,
)


@runtime_checkable
class StateStore(Protocol):
    """Durable router state (SQLite embedded, PostgreSQL shared by replicas)."""

    options: StoreOptions

    @property
    def kind(self) -> str:
        """``sqlite`` or ``postgresql``."""
        ...

    @property
    def shared(self) -> bool:
        """True when several processes may use the store at once (leases matter)."""
        ...

    def close(self) -> None: ...

    def ping(self) -> None:
        """Raise when the store cannot take a write (readiness probe)."""
        ...

    # ------------------------------------------------------------------ ingest and windows
    def ingest(self, batch: IngestBatch, now: float) -> IngestResult:
        """One transaction: dedupe, window merges, fires, outbox, dead letters, marks."""
        ...

    def may_hold_ahead(self, now: float) -> bool:
        """Whether a window this store knows of may lie past ``CLOCK_SLACK_S`` ahead of
        ``now`` (a wall clock stepped back, or not known yet): the poller then calls
        :meth:`fire_due` though the earliest deadline is still to come. No I/O."""
        ...

    def fire_due(self, now: float, limit: int = 1000) -> list[OutboxItem]:
        """Fire up to ``limit`` windows whose deadline is ``<= now`` (earliest first) that no
        other transaction holds (PostgreSQL: not of a processor outside
        ``options.processors`` another replica routes, :meth:`announce_processors`); their
        triggers are leased to this owner."""
        ...

    def next_deadline(self) -> float | None:
        """The earliest deadline of the open windows this store fires (store-wide; on
        PostgreSQL not those of processors other replicas route), None when none is open."""
        ...

    def announce_processors(self, now: float) -> frozenset[str]:
        """Say this replica routes ``options.processors`` (PostgreSQL: the roster,
        :mod:`scoperouter.state.pg_roster`; a router calls it at start and every lease);
        returns the processors other replicas route and this one does not. Until another
        replica has not said so for the grace, this store fires no window, pages and claims
        no row of theirs. SQLite (one instance): nothing, none."""
        ...

    def open_windows(self) -> list[WindowState]:
        """Every open window, sorted by key (introspection, tests)."""
        ...

    def open_window_count(self) -> int: ...

    def apply_limits(
        self,
        limits: Mapping[str, int],
        default: int,
        granularities: Mapping[str, str] | None = None,
        *,
        durations: Mapping[str, tuple[float, float]] | None = None,
        default_durations: tuple[float, float] | None = None,
    ) -> int:
        """One transaction: every open window takes its processor's ``max_entities`` now
        (``limits``; ``default`` for a processor not in it); one holding more ids than
        that becomes full date, reason ``fallback_threshold``; one holding ids of another
        type than its processor's granularity in ``granularities`` becomes full date,
        reason ``date_granularity`` or ``unmapped_entity_type``; full date stays full date;
        every window takes its processor's ``(quiet_s, max_wait_s)`` in ``durations``
        (``default_durations`` for one not in it; both None: kept) and the deadline they
        give (:mod:`scoperouter.state.window_limits`). Returns how many windows changed. A
        router runs it at start, for the windows no contribution joins before they fire."""
        ...

    def regrain_pending(self, granularities: Mapping[str, str]) -> int:
        """One transaction: every ``pending``, ``leased`` or ``dead`` trigger of a processor
        in ``granularities`` whose entity ids are of another type than its granularity there
        (a rollback to ``granularity: date``) becomes the full-date trigger, with the id
        that content gives (:mod:`scoperouter.state.outbox_regrain`; a dead row's dead
        letter follows it). Returns how many. A router runs it at start, next to
        :meth:`apply_limits`."""
        ...

    def seen_at(self, event_id: str) -> float | None:
        """When ``event_id`` was first admitted, None when unknown (or pruned)."""
        ...

    # ------------------------------------------------------------------ outbox
    def claim(self, now: float, limit: int = 100) -> list[OutboxItem]:
        """Lease up to ``limit`` pending triggers available at ``now`` to this owner."""
        ...

    def extend_leases(self, item_ids: Sequence[int], now: float) -> frozenset[int]:
        """Renew this owner's leases on ``item_ids`` to ``now + lease_s`` (PostgreSQL: plus
        what the call waited); the ids renewed -- a row missing is no longer this owner's
        (rescued, maybe reclaimed by another replica) or no longer leased."""
        ...

    def apply_marks(self, marks: Sequence[Mark]) -> tuple[bool, ...]:
        """Record dispatch outcomes in one transaction; per mark, whether it changed a row.
        ``Attempted``/``RetryLater``/``Released`` need this owner's live lease; no mark
        changes a finished row; ``RedriveLane`` makes a processor's pending rows due."""
        ...

    def rescue_expired(self, now: float, *, all_leases: bool = False) -> int:
        """Give leases that ran out before ``now`` back (``all_leases``: every lease, for
        a single-instance store at start). Returns how many rows were rescued."""
        ...

    def claim_lanes(
        self, claims: Sequence[LaneClaim], marks: Sequence[Mark], now: float
    ) -> tuple[LaneClaimed, ...]:
        """The dispatcher's page of the backlog, one transaction: ``marks`` first (as
        :meth:`apply_marks`), then per target's lane: pending rows that fired before
        ``expire_before`` become ``dead`` with a ``retry_horizon`` dead letter, up to
        ``limit`` pending rows available at ``due_at`` (oldest availability first) are
        leased to this owner, and the next later availability is found. Rows another
        transaction holds are skipped, never waited for: a claim that took fewer than
        ``limit`` while due rows stayed pending says so (``held``), so the lane asks again
        shortly instead of believing nothing is due."""
        ...

    def pending_processors(self, due_at: float = float("inf")) -> list[str]:
        """Processors with pending rows available at ``due_at`` (sorted)."""
        ...

    def pending_count(self) -> int:
        """Pending rows (not leased, not finished)."""
        ...

    def live_backlog(self) -> dict[str, int]:
        """Rows still to send (pending or leased) stored with mode ``live``, per processor:
        they are delivered whatever their processor's mode is now (a start-up count)."""
        ...

    def work_by_processor(self) -> dict[str, tuple[int, int]]:
        """Open windows and rows still to send (pending or leased), per processor: (windows,
        rows) (a start-up count: :func:`scoperouter.runtime.modes.announce_unknown`)."""
        ...

    def redrive_dead(self, now: float, processor: str | None = None) -> int:
        """Dead rows (of ``processor``, or all) back to pending, due ``now``, with a fresh
        attempt count and retry horizon; their ``trigger`` dead letters are deleted.
        A redriven row keeps its trigger (id, body), not necessarily its outbox id (SQLite
        gives it a new one). Returns how many rows were redriven."""
        ...

    def discard_dead(self, processor: str | None = None) -> int:
        """Delete dead rows (of ``processor``, or all) and their ``trigger`` dead letters.
        Returns how many rows were deleted."""
        ...

    def outbox_rows(self) -> list[OutboxRow]:
        """Every outbox row by id (introspection, tests)."""
        ...

    def outbox_counts(self) -> dict[str, int]: ...

    # ------------------------------------------------------------------ dead letters
    def dead_letter(self, letter: DeadLetterIn) -> bool:
        """Store a dead letter; False when the same one is stored already (same ``(kind, ref)``
        and payload); another payload under a taken ref goes under another ref."""
        ...

    def dead_letters(self) -> list[DeadLetter]: ...

    def letters_owed(self, limit: int = 100) -> list[tuple[int, bytes]]:
        """Up to ``limit`` letters stored with a ``topic_record`` the dead-letter topic has
        not received yet, oldest first: ``(id, record)``."""
        ...

    def letters_copied(self, ids: Sequence[int]) -> int:
        """The records of the letters ``ids`` went out to the dead-letter topic: nothing is
        owed for them any more (they are pruned as any other). How many were owed."""
        ...

    # ------------------------------------------------------------------ completion ledger
    def record_completion(self, trigger_id: str, state: CompletionState, at: float) -> None: ...

    def completion(self, trigger_id: str) -> Completion | None: ...

    # ------------------------------------------------------------------ upgrade
    def import_legacy(self, state: LegacyState, now: float) -> bool:
        """Write the old snapshot + journal store's state (:mod:`scoperouter.state.legacy`)
        in one transaction, only into an empty store; False when the store is not empty."""
        ...

    # ------------------------------------------------------------------ housekeeping
    def prune(self, retention: Retention, now: float) -> Pruned:
        """Delete seen ids, finished rows, dead letters and ledger rows past their horizon
        (done rows by ``done_s``; dead rows and their dead letters by ``dead_s``, never
        when it is None; other dead letters by ``letters_s``); open windows and
        unfinished outbox rows are never pruned. One pass: each of its statements deletes
        at most ``retention.limit`` rows (a short hold of the write lock however large the
        backlog); ``Pruned.more`` when one reached it -- call again for the rest."""
        ...

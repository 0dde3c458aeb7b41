"""Values exchanged with a state store (no I/O, no behaviour beyond derived properties).

Invariant: every value here is immutable and carries what a store needs to persist or
return, so a store implementation never sees the registry, the planner or a clock.
Times are epoch seconds (floats) supplied by the caller.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal

from scoperouter.messages.models import DEFAULT_DATE_FIELD, Trigger
from scoperouter.state.frozen import fast_init

WindowKey = tuple[str, date]
OutboxStatus = Literal["pending", "leased", "done", "dead"]
Mode = Literal["live", "shadow"]  # a trigger's dispatch mode (routes.yaml ``mode``)
CompletionState = Literal["success", "partial", "no_data", "failed"]


@fast_init
@dataclass(frozen=True, slots=True)
class Contribution:
    """One run decision of one event for one date: what merges into window ``key``.

    ``entity_ids`` None means full date (the decision's scope is ``date``). The window
    parameters are the processor's, resolved from the registry when the event was planned;
    a window keeps the durations it opened with, and merges under the contribution's
    ``max_entities`` (the registry in force, however the window's was set)."""

    processor: str
    day: date
    event_id: str
    correlation_id: str | None
    critical: bool
    entity_type: str | None
    entity_ids: tuple[str, ...] | None
    reason: str
    quiet_s: float
    max_wait_s: float
    max_entities: int
    granularity: str

    @property
    def key(self) -> WindowKey:
        return (self.processor, self.day)


@fast_init
@dataclass(frozen=True, slots=True)
class WindowState:
    """One open coalescing window, as persisted (one row per ``(processor, day)``)."""

    processor: str
    day: date
    opened_at: float
    last_at: float
    entity_ids: frozenset[str] | None  # None = full date
    entity_type: str
    date_reason: str | None
    caused_by: frozenset[str]
    correlation_id: str | None
    priority: Literal["normal", "critical"]
    quiet_s: float
    max_wait_s: float
    max_entities: int
    # ``caused_by`` keeps at most CAUSED_BY_CAP ids (the smallest: the ones a trigger
    # lists); this counts the causes beyond them, so a hot window's row stays bounded
    caused_more: int = 0
    # a contribution joined it while its processor fired live: it fires live, whatever
    # its processor's mode is when it fires (docs/rollout.md "Flip back")
    live: bool = False

    @property
    def key(self) -> WindowKey:
        return (self.processor, self.day)

    @property
    def deadline(self) -> float:
        """When the window fires: ``quiet`` after its last decision, at most ``max_wait``
        after it opened."""
        return min(self.last_at + self.quiet_s, self.opened_at + self.max_wait_s)


@fast_init
@dataclass(frozen=True, slots=True)
class Admission:
    """An event offered to :meth:`StateStore.ingest`: its id and its contributions (empty
    when every decision is a skip: the id is still remembered)."""

    event_id: str
    contributions: tuple[Contribution, ...] = ()


@fast_init
@dataclass(frozen=True, slots=True)
class DeadLetterIn:
    """A rejected event or an undeliverable trigger. ``(kind, ref)`` is unique when ``ref``
    is set: storing the same letter (same payload) twice keeps the first; another payload
    meeting a taken ref is stored under another ref (:mod:`.letter_refs`).
    ``topic_record``: the record the dead-letter topic is owed (a topic is configured),
    kept with the letter until :meth:`StateStore.letters_copied` says it went out."""

    kind: str
    ref: str | None
    reason: str
    detail: str | None
    payload: bytes | None
    at: float
    topic_record: bytes | None = None


@fast_init
@dataclass(frozen=True, slots=True)
class DeadLetter:
    id: int
    kind: str
    ref: str | None
    reason: str
    detail: str | None
    payload: bytes | None
    at: float
    # the record still owed to the dead-letter topic; None: nothing owed (copied, no topic
    # configured when stored, or stored before scoperouter recorded it)
    topic_record: bytes | None = None


@fast_init
@dataclass(frozen=True, slots=True)
class Done:
    """The trigger was delivered (any replica may record it: delivery happened)."""

    item_id: int
    attempts: int
    at: float


@fast_init
@dataclass(frozen=True, slots=True)
class Attempted:
    """A failed attempt while the lease is kept (retried in process)."""

    item_id: int
    attempts: int
    error: str


@fast_init
@dataclass(frozen=True, slots=True)
class RetryLater:
    """Give the lease back; the trigger becomes claimable again at ``available_at``."""

    item_id: int
    attempts: int
    available_at: float
    error: str


@fast_init
@dataclass(frozen=True, slots=True)
class Dead:
    """Give up: the row becomes ``dead`` and a ``trigger`` dead letter is stored with it."""

    item_id: int
    attempts: int
    at: float
    reason: str
    error: str


@fast_init
@dataclass(frozen=True, slots=True)
class Released:
    """Give the lease back without an attempt: a row this owner fired or claimed but did
    not start (its target is busy or failing): it waits in the store, claimable at once."""

    item_id: int


@fast_init
@dataclass(frozen=True, slots=True)
class RedriveLane:
    """``processor``'s target works again: its pending rows are all due at ``at``."""

    processor: str
    at: float


Mark = Done | Attempted | RetryLater | Dead | Released | RedriveLane


@fast_init
@dataclass(frozen=True, slots=True)
class Reported:
    """A completion reported for ``trigger_id`` (the completion ledger's input): by the
    event ``event_id`` -- recorded only when that event is admitted in the same batch, so
    a redelivered event is not recorded twice -- or, ``event_id`` None, by a bare report
    (no event to admit: recorded as it comes)."""

    trigger_id: str
    state: CompletionState
    event_id: str | None = None


@fast_init
@dataclass(frozen=True, slots=True)
class IngestBatch:
    """One ingest transaction: admissions in arrival order, dead letters, outcome marks,
    and the completions reported (:class:`Reported`) for the completion ledger."""

    admissions: tuple[Admission, ...] = ()
    dead_letters: tuple[DeadLetterIn, ...] = ()
    marks: tuple[Mark, ...] = ()
    completions: tuple[Reported, ...] = ()


@fast_init
@dataclass(frozen=True, slots=True)
class OutboxItem:
    """A trigger row leased to this store's owner, ready to dispatch."""

    item_id: int
    trigger: Trigger
    body: bytes
    attempts: int  # failed attempts recorded before this lease
    claims: int  # how many times the row was leased, this lease included
    mode: str | None = None  # the mode it fired in (None: written before modes were stored)


@fast_init
@dataclass(frozen=True, slots=True)
class OutboxRow:
    """A trigger row as stored (introspection, tests)."""

    item_id: int
    trigger_id: str
    processor: str
    status: OutboxStatus
    attempts: int
    claims: int
    rescues: int
    available_at: float
    lease_owner: str | None
    lease_until: float | None
    finished_at: float | None
    error: str | None
    mode: str | None = None  # the mode it fired in (None: written before modes were stored)


@fast_init
@dataclass(frozen=True, slots=True)
class IngestResult:
    """What one ingest transaction committed."""

    accepted: tuple[str, ...]  # event ids seen for the first time, in admission order
    duplicates: tuple[str, ...]  # ids already seen (or repeated in the batch)
    fired: tuple[OutboxItem, ...]  # triggers fired by this batch, leased to this owner
    dead_lettered: tuple[bool, ...]  # per input dead letter: True when newly stored
    marked: tuple[bool, ...]  # per input mark: True when it changed its row
    next_deadline: float | None  # earliest open window deadline, store-wide


@fast_init
@dataclass(frozen=True, slots=True)
class BacklogRow:
    """An outbox row handed to the dispatcher by :meth:`StateStore.claim_lanes`: leased to
    this owner (``claimed``) or dead-lettered past the retry horizon (``expired``)."""

    item_id: int
    trigger_id: str
    processor: str
    body: bytes
    attempts: int  # failed attempts recorded so far
    claims: int
    created_at: float  # when it fired (or was redriven): the retry horizon counts from here
    mode: str | None = None  # the mode it fired in (None: written before modes were stored)


@fast_init
@dataclass(frozen=True, slots=True)
class LaneClaim:
    """What one target's lane asks for in :meth:`StateStore.claim_lanes`."""

    processor: str
    limit: int  # rows to lease now (0: only expire and report next_due)
    due_at: float  # rows available at or before this time (inf: the oldest row, a probe)
    expire_before: float | None = None  # dead-letter pending rows fired before this
    expire_limit: int = 500  # at most this many per call (bounded work per transaction)
    # rows never attempted expire too (the target's circuit is open); else only rows an
    # attempt failed
    expire_untried: bool = False


@fast_init
@dataclass(frozen=True, slots=True)
class LaneClaimed:
    """One lane's answer: rows leased to this owner, whether more are due, the next later
    availability of a pending row, the rows dead-lettered past the horizon, and whether
    due rows were left pending that another transaction held (``held``: skipped, not
    waited for; the lane asks again shortly)."""

    processor: str
    claimed: tuple[BacklogRow, ...]
    more: bool
    next_due: float | None
    expired: tuple[BacklogRow, ...]
    held: bool = False


HORIZON_REASON = "retry_horizon"
HORIZON_DETAIL = "retry horizon passed while the target kept failing"


@fast_init
@dataclass(frozen=True, slots=True)
class Completion:
    """The completion ledger's row of one trigger id."""

    trigger_id: str
    state: CompletionState
    first_at: float
    last_at: float
    reports: int


PRUNE_LIMIT = 5000
"""Rows one prune statement deletes at most (per table and pass). A DELETE holds the
store's write lock until it ends -- SQLite's one writer, the ingest's too --, so a backlog
past a horizon (after an outage, a lowered retention, a burst a day ago) goes over several
passes of bounded length, not in one long statement; what a pass leaves is the next
pass's (nothing is lost: the rows are still past their horizon)."""

CATCH_UP_PAUSE_S = 0.05
"""The pause between prune passes while a backlog past a horizon is pruned (a pass that
reached :data:`PRUNE_LIMIT`): the writers' transactions are queued in between."""


@fast_init
@dataclass(frozen=True, slots=True)
class Retention:
    """Horizons (seconds before ``now``) of :meth:`StateStore.prune`, and the most rows
    each of its statements deletes (``limit``, at least 1: :data:`PRUNE_LIMIT`)."""

    seen_s: float = 86400.0
    done_s: float = 7 * 86400.0
    # dead trigger rows and their dead letters; None: kept until redriven or discarded
    # (the daemon's setting: acked work that was not delivered never goes by itself)
    dead_s: float | None = 7 * 86400.0
    completions_s: float = 7 * 86400.0
    letters_s: float = 7 * 86400.0  # dead letters of rejected events
    limit: int = PRUNE_LIMIT
    # a dead-letter topic is configured: a letter still owing it its record is kept
    keep_owed: bool = False


@fast_init
@dataclass(frozen=True, slots=True)
class Pruned:
    """Rows one prune pass deleted; ``more``: some statement deleted its ``limit``, so rows
    past a horizon may be left for the next pass."""

    seen: int = 0
    done: int = 0
    dead: int = 0
    dead_letters: int = 0
    completions: int = 0
    more: bool = False


@fast_init
@dataclass(frozen=True, slots=True)
class FireModes:
    """The mode each processor fires in now: ``shadow`` for the processors in ``shadow``,
    ``live`` for those in ``live``, ``others`` for any other processor (one no longer in
    routes.yaml: ``defaults.mode``). A window a contribution joined while its processor
    fired live fires live (its ``live`` bit), any other in its processor's mode when it
    fires; that mode is written into the trigger's row (``sr_outbox.mode``). Built from
    the registry by :func:`scoperouter.runtime.modes.fire_modes`."""

    shadow: frozenset[str] = frozenset()
    live: frozenset[str] = frozenset()
    others: Mode = "live"

    def of(self, processor: str) -> Mode:
        if processor in self.shadow:
            return "shadow"
        return "live" if processor in self.live else self.others


@fast_init
@dataclass(frozen=True, slots=True)
class StoreOptions:
    """``owner`` names this replica in leases; ``lease_s`` is how long a claimed or fired
    trigger stays reserved to it without :meth:`StateStore.extend_leases`; ``date_field``
    is the registry's key of the date in fired triggers (``CompiledRegistry.date_field``);
    ``modes`` the mode each processor fires in now: a window a contribution joins while
    its processor fires live is marked ``live``, and each fired trigger is stored with the
    mode it fires in (None: no window is marked, none is stored but ``live`` for a window
    marked before -- the dispatcher takes the processor's mode when it sends the row). PostgreSQL only
    (:mod:`scoperouter.state.pg_session`; 0: off): ``lock_timeout_s``, how long a statement
    waits for one lock; ``idle_in_transaction_s``, how long the server keeps a session idle
    inside a transaction (a frozen replica's) before ending it. ``processors``: the ones
    this replica routes (routes.yaml); PostgreSQL leaves the others' work to the replicas
    routing them (:mod:`scoperouter.state.pg_roster`); None: every processor is its own."""

    owner: str = "local"
    lease_s: float = 60.0
    date_field: str = DEFAULT_DATE_FIELD
    modes: FireModes | None = None
    lock_timeout_s: float = 30.0
    idle_in_transaction_s: float = 60.0
    processors: frozenset[str] | None = None

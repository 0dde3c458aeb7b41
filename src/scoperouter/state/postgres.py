"""The shared state store: PostgreSQL (Cloud SQL, AlloyDB) with psycopg 3, any number of
replicas on one subscription.

Invariants:

* **Ingest** is one transaction per batch: the event ids are inserted (sorted) with
  ``ON CONFLICT DO NOTHING`` -- the ids it returns are the batch's new events, a re-seen id
  keeps its first time; then ONE upsert locks every touched window row in key order
  (``INSERT .. ON CONFLICT DO UPDATE SET rev = rev + 1``: an existing row is locked and
  returned as it was, a missing one is created locked; ``rev = 0`` tells which). There is
  no moment between "exists" and "locked" in which a concurrent fire could take the row
  and its contributions with it (the gap an insert-then-select leaves). The pure merge
  runs on the locked rows, survivors are updated, fired rows deleted and their triggers
  inserted into the outbox before the commit.
* **Fire** claims due rows with ``FOR UPDATE SKIP LOCKED`` (a row an ingest holds is left
  for the next tick, with its merged contributions), deletes them and inserts their
  triggers in the same transaction. A contribution is therefore in exactly one trigger.
* **Locks** of ingest are taken in one global order (event ids, then window keys, both
  in code-point order: ``COLLATE "C"``, Python's order, whatever the database's collation,
  the order :meth:`apply_limits` locks windows in), fires and claims never wait: ingests
  and fires do not deadlock. What the store returns sorted is in that order too.
  Outbox rows are not ordered: a rescue (rows in scan order) and a replica's marks or
  lease renewals (in their own order) can deadlock; the victim's transaction is rolled
  back whole and retried (bounded), as is a serialization failure
  (tests/state/test_postgres_races.py).
* **Leases** (after River / Oban / procrastinate): a fired, claimed or renewed trigger is
  leased to this replica until ``now + waited + lease_s``, ``waited`` the monotonic time
  the call has taken when the lease is written -- after every statement of its
  transaction that can wait on a lock (an ingest inserts its triggers last), so a lock
  wait longer than ``lease_s`` never commits a lease already expired; the stamp stays in
  the caller's clock, the one every replica's :meth:`rescue_expired` compares with (it
  makes rows whose lease ran out claimable again, counting ``rescues``).
* **Renewals** (:meth:`extend_leases`) run on a connection of their own
  (:mod:`scoperouter.state.pg_renewals`) and may be called from another thread while
  another call runs (``renews_apart``): a call waiting on a lock never delays them. Each
  call's ``waited`` is its own (per thread).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import psycopg

from scoperouter.router.window_state import CLOCK_SLACK_S
from scoperouter.state import pg_roster
from scoperouter.state.ahead_bound import AheadBound
from scoperouter.state.core import (
    fired_modes,
    fired_triggers,
    fold,
    split_admissions,
    to_record,
    trigger_body,
)
from scoperouter.state.legacy import LegacyState
from scoperouter.state.model import (
    IngestBatch,
    IngestResult,
    OutboxItem,
    Pruned,
    Retention,
    StoreOptions,
    WindowKey,
    WindowState,
)
from scoperouter.state.outbox_regrain import regrain_outbox
from scoperouter.state.pg_outbox import PgOutbox, _Call
from scoperouter.state.pg_renewals import RenewalSession
from scoperouter.state.pg_schema import MIGRATION_LOCK, migrate
from scoperouter.state.pg_session import SessionLimits, run_call
from scoperouter.state.pg_session import connect as pg_connect
from scoperouter.state.pg_windows import (
    FIRE_AHEAD,
    FIRE_AHEAD_OWNED,
    FIRE_DUE,
    FIRE_DUE_OWNED,
    INSERT_FIRED,
    LOCK_WINDOWS,
    STORED_CAUSES,
    UPDATE_WINDOW,
    WINDOW_COLS,
    update_params,
    window,
    with_stored,
)
from scoperouter.state.shared_sql import PG
from scoperouter.state.window_limits import apply_limits as _apply_limits
from scoperouter.state.window_rows import pg_ids

_T = TypeVar("_T")
Conn = psycopg.Connection[tuple[Any, ...]]

# ping's write of no row: checked as a write (read-only transaction, recovery, privileges),
# takes no transaction id and changes nothing
_PING = "UPDATE sr_schema_version SET version = version WHERE false"


class PostgresStateStore(PgOutbox):
    """:class:`~scoperouter.state.api.StateStore` on PostgreSQL (one connection per store,
    and one for its lease renewals; run several stores -- replicas -- against one
    database)."""

    kind = "postgresql"
    shared = True
    renews_apart = True  # extend_leases: its own connection, callable from another thread
    retries = 3

    def __init__(self, dsn: str, options: StoreOptions | None = None) -> None:
        self.options = o = options or StoreOptions()
        self.dsn = dsn
        self.session = SessionLimits(o.lock_timeout_s, o.idle_in_transaction_s)
        self.monotonic: Callable[[], float] = time.monotonic  # (tests drive their own)
        self._call = _Call()
        self._reopened = 0  # connections_reopened
        self._renewals = RenewalSession(self._connect, self.session, self.retries)
        # the last_at bound of every window this store wrote (forgotten at an import):
        # fire_due's scan for windows a clock step left ahead (ahead_bound)
        self._ahead = AheadBound()
        # the processors other replicas route, as of the last announce_processors (at its
        # time): their windows are left out of the earliest deadline (pg_roster)
        self._elsewhere: frozenset[str] = frozenset()
        self._roster_at: float | None = None
        self._conn = self._connect()
        try:
            migrate(self._conn)
        except BaseException:
            self._conn.close()
            raise

    def _connect(self) -> Conn:
        """A connection with the session bounds (lock and idle-in-transaction timeouts,
        TCP keepalives: :mod:`scoperouter.state.pg_session`)."""
        return pg_connect(self.dsn, self.session, autocommit=True, application_name="scoperouter")

    def _open(self) -> Conn:
        """The store's connection, opened again when it was closed (lost)."""
        if self._conn.closed:
            self._conn = self._connect()
            self._reopened += 1
        return self._conn

    @property
    def connections_reopened(self) -> int:
        """Connections opened again after one was lost (a failover, a restart, a session
        the server ended), the lease renewals' included (``/metrics``)."""
        return self._reopened + self._renewals.reopened

    def _run(self, fn: Callable[[Conn], _T]) -> _T:
        """``fn`` in one transaction; retried on serialization failures and deadlocks. A
        lock waited for past ``lock_timeout`` fails the call (:class:`StoreBusy`). A
        connection found lost when the call begins (a failover or restart while the store
        was idle) is opened again and the call run on it (:func:`run_call`); one lost in
        the middle of a call (a session idle in a transaction past its timeout, a server
        gone mid-call) fails that call, and the next call opens a new one."""
        self._call.began = self.monotonic()
        return run_call(self._open, fn, self.session, self.retries)

    def _lease_until(self, now: float) -> float:
        """A lease written now: ``now`` (the call's time) moved on by what the call has
        waited so far (locks, retries), plus ``lease_s``."""
        return now + max(0.0, self.monotonic() - self._call.began) + self.options.lease_s

    def close(self) -> None:
        try:
            self._renewals.close()
        finally:
            self._conn.close()

    def interrupt(self) -> None:
        """Cancel the statement running on the connection (from another thread: a
        shutdown past its deadline); the call running it fails, its transaction rolled
        back. Nothing when none runs, nor when the backend is between two statements
        (PostgreSQL ignores the cancel then: the caller repeats it while the call runs);
        best effort when the server is unreachable. ``cancel_safe`` (psycopg >= 3.2,
        bounded) where there is one, else ``cancel``."""
        conn = self._conn
        with contextlib.suppress(psycopg.Error):
            cancel_safe = getattr(conn, "cancel_safe", None)
            if cancel_safe is not None:
                cancel_safe(timeout=5.0)
            else:
                conn.cancel()

    def ping(self) -> None:
        """A write that writes nothing (an UPDATE of no row): the server refuses it, as it
        refuses every ingest, when the store cannot take a write -- a standby or demoted
        primary (in recovery), ``default_transaction_read_only = on``, privileges revoked.
        ``SELECT 1`` answered such a server, and the readiness probe said ready."""
        self._run(lambda c: c.execute(_PING).rowcount)

    # ------------------------------------------------------------------ ingest and windows
    def ingest(self, batch: IngestBatch, now: float) -> IngestResult:
        res = self._run(lambda c: self._ingest(c, batch, now))
        self._ahead.wrote(now)
        return res

    def _ingest(self, c: Conn, batch: IngestBatch, now: float) -> IngestResult:
        ids = sorted({a.event_id for a in batch.admissions})
        new_ids: set[str] = set()
        if ids:
            rows = c.execute(
                "INSERT INTO sr_seen(event_id, seen_at) SELECT t.id, %s "
                'FROM unnest(%s::text[]) AS t(id) ORDER BY t.id COLLATE "C" '
                "ON CONFLICT DO NOTHING RETURNING event_id",
                (now, ids),
            ).fetchall()
            new_ids = {r[0] for r in rows}
        accepted, duplicates, grouped = split_admissions(batch.admissions, new_ids)
        existing: dict[WindowKey, WindowState | None] = {}
        if grouped:
            keys = sorted(grouped)
            rows = c.execute(
                LOCK_WINDOWS,
                {"now": now, "procs": [k[0] for k in keys], "days": [k[1] for k in keys]},
            ).fetchall()
            for r in rows:
                existing[(r[1], r[2])] = None if r[0] == 0 else window(r[1:])
        f = fold(existing, grouped, now, self.options.modes)
        continued = [w.key for w, cont in zip(f.fired, f.fired_continues, strict=True) if cont]
        if continued:  # fired windows that were stored: their causes are in the row
            stored = {
                (r[0], r[1]): (frozenset(r[2]), int(r[3]))
                for r in c.execute(
                    STORED_CAUSES, ([k[0] for k in continued], [k[1] for k in continued])
                )
            }
            f.fired = [
                with_stored(w, *stored[w.key]) if cont else w
                for w, cont in zip(f.fired, f.fired_continues, strict=True)
            ]
        with c.cursor() as cur:
            if f.write:
                cur.executemany(
                    UPDATE_WINDOW,
                    [
                        update_params(w, cont)
                        for w, cont in zip(f.write, f.write_continues, strict=True)
                    ],
                )
            if f.delete:
                cur.executemany(
                    "DELETE FROM sr_windows WHERE processor = %s AND day = %s", f.delete
                )
        letters = tuple(PG.dead_letter(c, d) for d in batch.dead_letters)
        marked = tuple(PG.mark(c, m, self.options.owner) for m in batch.marks)
        for rep in to_record(batch.completions, accepted):
            PG.record_completion(c, rep.trigger_id, rep.state, now)
        fired = self._insert_fired(c, f.fired, now)  # last: its leases follow every lock wait
        return IngestResult(
            tuple(accepted),
            tuple(duplicates),
            tuple(fired),
            letters,
            marked,
            self._next_deadline(c),
        )

    def _insert_fired(self, c: Conn, windows: list[WindowState], now: float) -> list[OutboxItem]:
        if not windows:
            return []
        o = self.options
        triggers, rows = fired_triggers(windows, now, o.date_field)
        modes = fired_modes(o.modes, windows, rows)
        out: list[OutboxItem] = []
        until = self._lease_until(now)
        with c.cursor() as cur:
            cur.executemany(
                INSERT_FIRED,
                [
                    (tid, proc, body, mode, now, now, o.owner, until)
                    for (tid, proc, body), mode in zip(rows, modes, strict=True)
                ],
                returning=True,
            )
            for t, (_tid, _proc, body), mode in zip(triggers, rows, modes, strict=True):
                row = cur.fetchone()
                assert row is not None
                out.append(OutboxItem(int(row[0]), t, body, 0, 1, mode))
                cur.nextset()
        return out

    def may_hold_ahead(self, now: float) -> bool:
        """Whether a window may lie past ``CLOCK_SLACK_S`` ahead of ``now`` (a wall clock
        stepped back; not known yet): :meth:`fire_due` then looks for such windows, whatever
        the earliest deadline says. No I/O."""
        return self._ahead.may_hold_ahead(now)

    def fire_due(self, now: float, limit: int = 1000) -> list[OutboxItem]:
        ahead = self.may_hold_ahead(now)
        mine = self.options.processors  # None: any window (pg_roster)
        owned = () if mine is None else (sorted(mine), *pg_roster.live_bounds(self.options, now))
        due_sql, ahead_sql = (FIRE_DUE, FIRE_AHEAD) if mine is None else (
            FIRE_DUE_OWNED, FIRE_AHEAD_OWNED
        )  # fmt: skip

        def run(c: Conn) -> list[OutboxItem]:
            rows = c.execute(due_sql, (now, *owned, limit)).fetchall()
            windows = sorted((window(r) for r in rows), key=lambda w: (w.deadline, w.key))
            if ahead:  # a clock stepped back: windows past the slack ahead are due now
                rows = c.execute(ahead_sql, (now + CLOCK_SLACK_S, now, *owned)).fetchall()
                windows += sorted((window(r) for r in rows), key=lambda w: w.key)
            return self._insert_fired(c, windows, now)

        fired = self._run(run)
        if ahead:  # the windows left (but those another replica writes) are within it
            self._ahead.scanned(now)
        return fired

    def _next_deadline(self, c: Conn) -> float | None:
        """The earliest deadline of the windows this replica fires (but those of processors
        other replicas routed at the last :meth:`announce_processors`)."""
        if self._elsewhere:
            row = c.execute(
                "SELECT min(deadline) FROM sr_windows WHERE NOT (processor = ANY(%s))",
                (sorted(self._elsewhere),),
            ).fetchone()
        else:
            row = c.execute("SELECT min(deadline) FROM sr_windows").fetchone()
        return None if row is None or row[0] is None else float(row[0])

    def announce_processors(self, now: float) -> frozenset[str]:
        """Write this replica's processors to the roster (:mod:`scoperouter.state.pg_roster`);
        the processors other replicas route and this one does not (none when
        ``options.processors`` is None: nothing written)."""
        if self.options.processors is None:
            return frozenset()
        self._elsewhere, gone = self._run(lambda c: pg_roster.announce(c, self.options, now))
        self._roster_at = now
        pg_roster.said_forgotten(gone)
        return self._elsewhere

    def next_deadline(self) -> float | None:
        return self._run(self._next_deadline)

    def open_windows(self) -> list[WindowState]:
        rows = self._run(
            lambda c: c.execute(
                f'SELECT {WINDOW_COLS} FROM sr_windows ORDER BY processor COLLATE "C", day'
            ).fetchall()
        )
        return [window(r) for r in rows]

    def open_window_count(self) -> int:
        return int(self._one("SELECT count(*) FROM sr_windows"))

    def _one(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        row = self._run(lambda c: c.execute(sql, params).fetchone())
        return None if row is None else row[0]

    def seen_at(self, event_id: str) -> float | None:
        return self._run(lambda c: PG.seen_at(c, event_id))

    def apply_limits(
        self,
        limits: Mapping[str, int],
        default: int,
        granularities: Mapping[str, str] | None = None,
        *,
        durations: Mapping[str, tuple[float, float]] | None = None,
        default_durations: tuple[float, float] | None = None,
    ) -> int:
        return self._run(
            lambda c: _apply_limits(
                c,
                limits,
                default,
                pg_ids,
                placeholder="%s",
                lock=True,
                granularities=granularities,
                durations=durations,
                default_durations=default_durations,
                skip=self._elsewhere,  # (as of the announce a router makes before)
            )
        )

    def regrain_pending(self, granularities: Mapping[str, str]) -> int:
        return self._run(
            lambda c: regrain_outbox(c, granularities, trigger_body, placeholder="%s", lock=True)
        )

    def import_legacy(self, state: LegacyState, now: float) -> bool:
        self._ahead.forget()  # the windows imported: any last_at

        def run(c: Conn) -> bool:
            c.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))

            def insert(w: WindowState) -> None:
                c.execute(
                    "INSERT INTO sr_windows (processor, day, opened_at, last_at, deadline, "
                    "entity_ids, entity_type, caused_by, priority, quiet_s, max_wait_s, "
                    "max_entities) VALUES (%s, %s, 0, 0, 0, '{}', '', '{}', 'normal', 0, 0, 0)",
                    (w.processor, w.day),
                )
                c.execute(UPDATE_WINDOW, update_params(w, False))

            return PG.import_legacy(c, state, insert, now)

        return self._run(run)

    # ------------------------------------------------------------------ housekeeping
    def prune(self, retention: Retention, now: float) -> Pruned:
        return self._run(lambda c: PG.prune(c, retention, now))

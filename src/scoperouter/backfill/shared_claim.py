"""Backfill claims shared by every process on one PostgreSQL state store -- the daemon's
replicas, each with its own state dir, and ``scoperouter backfill --state`` -- next to each
process's claim on its own state dir (:mod:`scoperouter.backfill.claim`).

Invariants:

* A backfill is claimed on the shared store -- a row of ``sr_backfill_claims``: its
  processors, first date and the last date of each, its owner and lease -- only in one
  transaction holding the advisory lock :data:`CLAIM_LOCK` (``pg_advisory_xact_lock``),
  after every other live claim was found not to conflict with it
  (:func:`scoperouter.backfill.overlap.conflict`): of two conflicting backfills started at
  once on two replicas, the second sees the first and is refused (:class:`Overlap`, with
  the first's id and owner).
* A claim is live while its lease has not run out: ``lease_until`` is the claimant's wall
  clock plus ``lease_s``, compared with the checking process's wall clock (as trigger
  leases, docs/deploy-replicas.md). Its holder renews it every third of ``lease_s`` while
  the backfill runs (:meth:`SharedLease.keep`) and deletes it when the backfill ends. A
  process that died leaves a claim that blocks overlapping backfills until its lease has
  run out, then nothing: the next claim deletes it.
* A holder knows its claim only until ``lease_s`` after its own (monotonic) clock read
  before the call that made or last renewed it. When a renewal finds the claim gone (it
  ran out and another process's claim deleted it) or no renewal succeeded by that time,
  :meth:`SharedLease.keep` returns why (:data:`LEASE_LOST`, :data:`LEASE_UNCONFIRMED`) and
  the backfill is stopped (:meth:`scoperouter.backfill.claim.Claimed.run`): another
  process may be running an overlapping one. Runs already in flight are not taken back.
* A backfill is known to every process on the store only by its live claim
  (:meth:`SharedClaims.running`: ``GET /backfills/ID`` on a replica that does not run it);
  its progress stays with its holder.
* A connection found lost (a failover or restart while it was idle) costs no call: a claim
  whose transaction found it lost at its ``BEGIN`` (``pg_session.run_call``), and a
  renewal, a release or a read whenever they find it lost (one statement each, which a
  repeat changes no further), run once more on a new connection.
* The completion of a backfill run reported to any replica is in the store's completion
  ledger (``sr_completions``, recorded by that replica's ingest transaction:
  :mod:`scoperouter.runtime.shared_ingest`); :meth:`SharedClaims.completion` reads it for
  the process running the backfill (completion "event").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable
from datetime import date
from typing import Any, TypeVar

import psycopg
from psycopg.types.json import Jsonb

from scoperouter.backfill.claim import (
    Overlap,
    RunningElsewhere,
    SharedStoreUnavailable,
    overlap,
)
from scoperouter.backfill.overlap import Reach, conflict
from scoperouter.backfill.plan import BackfillPlan, Request
from scoperouter.backfill.store import AlreadyRunning
from scoperouter.runtime.redact import redact_url, scrub
from scoperouter.state.pg_schema import migrate
from scoperouter.state.pg_session import Conn, SessionLimits, StoreBusy, run_call
from scoperouter.state.pg_session import connect as pg_connect

# any constant: the advisory lock that serialises backfill claims of every process
CLAIM_LOCK = 0x5C0DE_0B0F
LEASE_LOST = "lease_lost"
LEASE_UNCONFIRMED = "lease_unconfirmed"

logger = logging.getLogger("scoperouter.backfill")
_T = TypeVar("_T")


class SharedClaims:
    """One process's claims on the store at ``dsn``: one connection (opened at the first
    claim, migrating the schema; reopened after a failure), used by one thread at a time."""

    def __init__(
        self,
        dsn: str,
        owner: str,
        lease_s: float = 30.0,
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        session: SessionLimits | None = None,
    ) -> None:
        """``session``: the bounds of its connection (lock and idle-in-transaction
        timeouts, keepalives: :mod:`scoperouter.state.pg_session`), the state store's."""
        self.dsn = dsn
        self.session = session or SessionLimits()
        self.owner = owner  # shown to whoever is refused (the replica id)
        self.lease_s = lease_s
        self.clock = clock  # wall clock: the leases stored, compared by every process
        self.monotonic = monotonic  # this process's own bound on its claims
        self._db: psycopg.Connection[tuple[Any, ...]] | None = None
        self._lock = threading.Lock()

    def claim(self, reach: Reach, plan: BackfillPlan, bid: str) -> SharedLease | Overlap:
        """Claim backfill ``bid`` (module docstring), or the live claim it conflicts with.
        Raises :class:`AlreadyRunning` when another process holds a live claim of ``bid``,
        :class:`SharedStoreUnavailable` when the store cannot be asked."""
        try:
            return self._claim(reach, plan, bid)
        except psycopg.Error as exc:
            raise SharedStoreUnavailable(self._unusable(exc)) from None
        except StoreBusy as exc:  # the claim lock waited for past lock_timeout
            raise SharedStoreUnavailable(str(exc)) from None

    def _claim(self, reach: Reach, plan: BackfillPlan, bid: str) -> SharedLease | Overlap:
        at, now, token = self.monotonic(), self.clock(), uuid.uuid4().hex

        def body(db: Conn) -> Overlap | None:
            db.execute("SELECT pg_advisory_xact_lock(%s)", (CLAIM_LOCK,))
            db.execute("DELETE FROM sr_backfill_claims WHERE lease_until <= %s", (now,))
            rows = db.execute(
                "SELECT backfill_id, owner, processors, start_day, end_day, last_days"
                " FROM sr_backfill_claims ORDER BY claimed_at, backfill_id"
            ).fetchall()
            for other, owner, procs, start, end, last_days in rows:
                if other == bid:
                    raise AlreadyRunning(
                        f"backfill {bid} is running on replica {owner} (its claim on the "
                        f"shared state store lasts up to {self.lease_s:g}s after its "
                        "process ended)"
                    )
                theirs = _plan(procs, start, end, last_days)
                hit = conflict(reach, plan, theirs)
                if hit is not None:
                    return overlap(other, theirs, hit, where=str(owner))
            db.execute(
                "INSERT INTO sr_backfill_claims(backfill_id, owner, token, processors,"
                " start_day, end_day, last_days, claimed_at, lease_until)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    bid,
                    self.owner,
                    token,
                    list(plan.processors),
                    plan.request.start,
                    plan.request.end,
                    Jsonb({p: d.isoformat() for p, d in plan.last_day.items()}),
                    now,
                    now + self.lease_s,
                ),
            )
            return None

        # a connection found lost at the BEGIN (a failover while idle) is opened again
        # and the claim made on it: nothing of it reached the server
        with self._lock:
            refused = run_call(self._conn, body, self.session, retries=1)
        return refused if refused is not None else SharedLease(self, bid, token, at + self.lease_s)

    def running(self, bid: str) -> RunningElsewhere | None:
        """Backfill ``bid`` as its live claim names it (whichever process holds it), None
        when no live claim does. Raises :class:`SharedStoreUnavailable` when the store cannot
        be asked (it cannot tell whether ``bid`` runs)."""
        row = self._fetchone(
            "SELECT owner, processors, start_day, end_day FROM sr_backfill_claims"
            " WHERE backfill_id = %s AND lease_until > %s",
            (bid, self.clock()),
        )
        if row is None:
            return None
        owner, procs, start, end = row
        return RunningElsewhere(bid, str(owner), tuple(procs), start, end)

    def completion(self, trigger_id: str) -> str | None:
        """The status the completion ledger keeps for ``trigger_id`` (``success``,
        ``partial``, ``no_data``, ``failed``: its completion reached some replica), None
        while none does -- a backfill run's completion lookup on replicas
        (:class:`scoperouter.backfill.daemon_executor.TargetExecutor`). Raises
        :class:`SharedStoreUnavailable` when the store cannot be asked."""
        row = self._fetchone(
            "SELECT state FROM sr_completions WHERE trigger_id = %s",
            (trigger_id,),
            "the completions of backfill runs cannot be read",
        )
        return None if row is None else str(row[0])

    def _fetchone(
        self,
        sql: str,
        params: tuple[object, ...],
        what: str = "the backfills running on other replicas cannot be checked",
    ) -> tuple[Any, ...] | None:
        """One row of ``sql`` (None: none); :class:`SharedStoreUnavailable` saying that
        ``what`` when the store cannot be asked."""
        try:
            with self._lock:
                return self._statement(lambda db: db.execute(sql, params).fetchone())
        except psycopg.Error as exc:
            raise SharedStoreUnavailable(self._unusable(exc, what)) from None

    def _unusable(
        self,
        exc: psycopg.Error,
        what: str = "the backfills running on other replicas cannot be checked",
    ) -> str:
        return (
            f"the shared state store {redact_url(self.dsn)} is not usable, so {what}: "
            f"{scrub(str(exc), self.dsn)[:300]}"
        )

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def _conn(self) -> psycopg.Connection[tuple[Any, ...]]:
        """The connection (caller holds ``_lock``), opened when there is none or it broke."""
        if self._db is not None and (self._db.closed or self._db.broken):
            with contextlib.suppress(psycopg.Error):
                self._db.close()
            self._db = None
        if self._db is None:
            # bounded waits: a renewal stuck on a dead network must fail within its lease
            db = pg_connect(
                self.dsn,
                self.session,
                autocommit=True,
                application_name="scoperouter-backfill",
                connect_timeout=max(2, int(self.lease_s / 3)),
                tcp_user_timeout=max(1000, int(self.lease_s * 1000)),
            )
            try:
                migrate(db)
            except RuntimeError as exc:  # a newer schema
                db.close()
                raise SharedStoreUnavailable(str(exc)) from None
            except BaseException:
                db.close()
                raise
            self._db = db
        return self._db

    def _execute(self, sql: str, params: tuple[object, ...]) -> int:
        """One statement in its own transaction; the rows it changed."""
        with self._lock:
            return self._statement(lambda db: db.execute(sql, params).rowcount)

    def _statement(self, fn: Callable[[Conn], _T]) -> _T:
        """``fn``, one statement -- a read, or a renewal or a release by the claim's token,
        which a repeat changes no further -- on the connection (caller holds ``_lock``):
        when the connection is found lost (a failover, a restart), once more on a new one.
        Any such failure closes the connection: the next call opens another."""
        for last in (False, True):
            db = self._conn()
            try:
                return fn(db)
            except psycopg.OperationalError:
                lost = db.closed
                db.close()
                if last or not lost:
                    raise
            logger.warning(
                "backfill claims: the connection to the shared state store was lost; "
                "running the statement on a new connection"
            )
        raise AssertionError("unreachable")  # pragma: no cover


class SharedLease:
    """A claim held on the shared store: renewed by :meth:`keep`, deleted by :meth:`release`."""

    def __init__(self, claims: SharedClaims, bid: str, token: str, confirmed: float) -> None:
        self.claims = claims
        self.backfill_id = bid
        self.token = token
        self.confirmed = confirmed  # this process's monotonic clock: ours until then

    def renew(self) -> bool:
        """Extend the lease from now; False when the claim is no longer ours (gone)."""
        c = self.claims
        at = c.monotonic()
        kept = (
            c._execute(
                "UPDATE sr_backfill_claims SET lease_until = %s"
                " WHERE backfill_id = %s AND token = %s",
                (c.clock() + c.lease_s, self.backfill_id, self.token),
            )
            == 1
        )
        if kept:
            self.confirmed = max(self.confirmed, at + c.lease_s)
        return kept

    async def keep(self) -> str:
        """Renew the claim every third of its lease until it is lost; returns why
        (module docstring). Cancel it when the backfill ends."""
        c = self.claims
        while True:
            left = self.confirmed - c.monotonic()
            if left <= 0:
                return LEASE_UNCONFIRMED
            await asyncio.sleep(min(c.lease_s / 3, left))
            left = self.confirmed - c.monotonic()
            if left <= 0:
                return LEASE_UNCONFIRMED
            try:
                # a renewal waiting on the store past the lease cannot confirm it in time
                kept = await asyncio.wait_for(asyncio.to_thread(self.renew), left)
            except TimeoutError:
                return LEASE_UNCONFIRMED
            except Exception as exc:  # the store failing: retried until the lease ends
                logger.warning(
                    "backfill %s: could not renew its claim on the shared state store "
                    "(%s: %s); retrying until its lease ends",
                    self.backfill_id,
                    type(exc).__name__,
                    str(exc)[:200],
                    extra={"backfill_id": self.backfill_id},
                )
                continue
            if not kept:
                return LEASE_LOST

    def release(self) -> None:
        """Delete the claim (the backfill ended). Best effort: a claim left behind blocks
        nothing once its lease has run out."""
        try:
            self.claims._execute(
                "DELETE FROM sr_backfill_claims WHERE backfill_id = %s AND token = %s",
                (self.backfill_id, self.token),
            )
        except (psycopg.Error, SharedStoreUnavailable) as exc:
            logger.warning(
                "backfill %s: could not release its claim on the shared state store (%s); "
                "it blocks overlapping backfills until its lease runs out (%gs)",
                self.backfill_id,
                type(exc).__name__,
                self.claims.lease_s,
                extra={"backfill_id": self.backfill_id},
            )


def _plan(procs: list[str], start: date, end: date, last_days: dict[str, str]) -> BackfillPlan:
    """What :func:`conflict` compares of a claimed backfill (its runs are not stored here)."""
    last = {p: date.fromisoformat(d) for p, d in last_days.items()}
    return BackfillPlan(
        request=Request(start, end, tuple(procs)),
        as_of=max(last.values(), default=end),
        processors=tuple(procs),
        last_day=last,
        runs=(),
    )

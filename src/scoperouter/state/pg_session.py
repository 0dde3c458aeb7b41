"""Bounds on every PostgreSQL session the daemon opens (the state store's connection, its
lease renewals', the backfill claims'): how long a replica that stopped without dying can
hold locks, and how long a statement waits for them.

A replica frozen (SIGSTOP, a paused VM) or cut off by the network in the middle of an
ingest transaction is not dead to the server: its session keeps the row locks it took
(``sr_seen``, ``sr_windows``, ``sr_outbox``) until TCP gives up on it -- hours with the
kernel's defaults. The other replicas' ingests into those windows wait behind it: nothing
is lost (their messages stay unacked), but those windows do not fire and those replicas
stall. Three bounds, every connection:

* ``idle_in_transaction_session_timeout`` (:attr:`SessionLimits.idle_in_transaction_s`,
  default 60 s): the server ends a session that sits idle inside a transaction -- the
  frozen replica between two statements -- and its locks go with it. The session's next
  statement fails (the replica's batch is nacked, redelivered); the store opens a new
  connection for the call after it.
* ``lock_timeout`` (:attr:`SessionLimits.lock_timeout_s`, default 30 s): a statement that
  waits longer for one lock gives up (:class:`StoreBusy`): the batch fails like any store
  failure (503 / nack, redelivered, counted and logged, retried with backoff), so a
  replica is never stuck behind another for longer than this per lock.
* TCP keepalives both ways -- libpq's ``keepalives_idle=30``, ``keepalives_interval=10``,
  ``keepalives_count=3`` and ``tcp_user_timeout=60000`` on the client, the server's
  ``tcp_keepalives_*`` and ``tcp_user_timeout`` likewise: a peer cut off by the network
  is found dead in about a minute, idle or with data unacknowledged (TCP connections only:
  a Unix socket, the Cloud SQL proxy's, has no keepalives and needs none).

The server settings are applied right after connecting, as session settings
(``set_config(name, value, false)``, one statement), never as the ``options`` startup
parameter: an explicit ``options`` would replace the one a libpq service file
(``service=``, ``$PGSERVICE``) or ``$PGOPTIONS`` gives -- its ``search_path`` with it, and
the daemon would work on another schema -- and poolers refuse it. **A user's explicit
setting wins**: a server setting the session already got from its startup packet
(``pg_settings.source = 'client'``: the DSN's ``options``, ``$PGOPTIONS``, a service
file's ``options``) is left as given; a libpq parameter given in the DSN
(``?keepalives_idle=5``) is kept as given (one in a service file is not seen: ours
replace it). Ours override the database's and role's defaults (``ALTER ROLE ... SET``).
0 turns a timeout off (PostgreSQL's default); with both off nothing is set at all (nor the
server's keepalives): the role's and database's defaults apply. Behind a pooler in
transaction mode (PgBouncer ``pool_mode = transaction``) session settings do not stick to
this client (they stay on whichever server connection ran them): set the bounds on the
role instead and turn both off here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import psycopg
from psycopg.conninfo import conninfo_to_dict

from scoperouter.errors import StoreBusy

__all__ = [
    "LostAtBegin",
    "SessionLimits",
    "StoreBusy",
    "apply_limits",
    "busy",
    "connect",
    "connect_params",
    "run_call",
    "transact",
]

Conn = psycopg.Connection[tuple[Any, ...]]
log = logging.getLogger(__name__)
_T = TypeVar("_T")

# libpq's parameters (client side): a dead server or network is noticed within a minute
CLIENT_KEEPALIVES: Mapping[str, str] = {
    "keepalives": "1",
    "keepalives_idle": "30",
    "keepalives_interval": "10",
    "keepalives_count": "3",
    "tcp_user_timeout": "60000",  # ms: data sent and not acknowledged this long
}
# the server's (it notices a client cut off by the network, idle or not)
SERVER_KEEPALIVES: Mapping[str, str] = {
    "tcp_keepalives_idle": "30",
    "tcp_keepalives_interval": "10",
    "tcp_keepalives_count": "3",
    "tcp_user_timeout": "60000",
}


@dataclass(frozen=True, slots=True)
class SessionLimits:
    """The session bounds of :mod:`scoperouter.state.pg_session` (seconds; 0: off)."""

    lock_timeout_s: float = 30.0
    idle_in_transaction_s: float = 60.0

    def server_settings(self) -> dict[str, str]:
        """The server settings of the bounds (name: value; durations in ms)."""
        ms = {
            "lock_timeout": _ms(self.lock_timeout_s),
            "idle_in_transaction_session_timeout": _ms(self.idle_in_transaction_s),
        }
        return {**ms, **SERVER_KEEPALIVES}


def _ms(seconds: float) -> str:
    if not seconds >= 0:
        raise ValueError(f"expected a non-negative duration, got {seconds!r}")
    return str(max(1, round(seconds * 1000)) if seconds > 0 else 0)


def connect_params(dsn: str) -> dict[str, str]:
    """The libpq parameters to add to ``dsn``: the client keepalives it does not set."""
    given = conninfo_to_dict(dsn)
    return {k: v for k, v in CLIENT_KEEPALIVES.items() if k not in given}


def apply_limits(conn: Conn, limits: SessionLimits) -> dict[str, str]:
    """Set the server side of ``limits`` on ``conn``'s session (module docstring), but
    not a setting its startup packet gave (``pg_settings.source = 'client'``); the
    settings set. Nothing when both bounds are off."""
    if not limits.lock_timeout_s and not limits.idle_in_transaction_s:
        return {}
    wanted = limits.server_settings()
    rows = conn.execute(
        "SELECT v.name, set_config(v.name, v.setting, false) "
        "FROM unnest(%s::text[], %s::text[]) AS v(name, setting) "
        "JOIN pg_settings s ON s.name = v.name WHERE s.source <> 'client'",
        (list(wanted), list(wanted.values())),
    ).fetchall()
    if not conn.autocommit:
        conn.commit()  # a session setting made in a transaction rolled back is undone
    return {str(name): wanted[str(name)] for name, _ in rows}


def connect(dsn: str, limits: SessionLimits, **kwargs: Any) -> Conn:
    """``psycopg.connect(dsn, **kwargs)`` with the session bounds: ``kwargs`` win over the
    DSN, the DSN over :func:`connect_params`' defaults; then :func:`apply_limits`."""
    params: dict[str, Any] = dict(connect_params(dsn))
    params.update(kwargs)
    conn = psycopg.connect(dsn, **params)
    try:
        apply_limits(conn, limits)
    except BaseException:
        conn.close()
        raise
    return conn


def busy(exc: psycopg.errors.LockNotAvailable, limits: SessionLimits) -> StoreBusy:
    """The :class:`StoreBusy` for a statement that gave up waiting for a lock."""
    return StoreBusy(
        "a state store statement waited longer than lock_timeout for a lock another session "
        "holds (a replica frozen or cut off in the middle of a transaction? the server ends "
        "its session after idle_in_transaction_session_timeout); nothing was written, retry "
        f"later (lock_timeout {limits.lock_timeout_s:g}s unless the DSN sets it: "
        f"{str(exc).strip()[:200]})"
    )


class LostAtBegin(psycopg.OperationalError):
    """The connection was found lost when a call began its transaction (the server
    restarted or failed over, or ended the session while it sat idle): nothing of the call
    reached the server. :func:`run_call` runs such a call again on a new connection."""


def transact(conn: Conn, fn: Callable[[Conn], _T], limits: SessionLimits, retries: int) -> _T:
    """``fn`` in one transaction on ``conn``, run again (up to ``retries`` times in all) when
    the server rolled it back as a serialization failure or a deadlock victim; a lock
    waited for past ``lock_timeout`` fails it as :class:`StoreBusy` (:func:`busy`). A
    connection found lost at the transaction's BEGIN, before ``fn`` ran (nothing of this
    attempt reached the server, an earlier one was rolled back), raises
    :class:`LostAtBegin`; lost later, by ``fn``'s statements or the COMMIT, the error as
    raised (whether the COMMIT took is unknown: the caller's work is redelivered)."""
    for attempt in range(retries):
        began = False
        try:
            with conn.transaction():
                began = True
                return fn(conn)
        except (psycopg.errors.SerializationFailure, psycopg.errors.DeadlockDetected):
            if attempt == retries - 1:
                raise
        except psycopg.errors.LockNotAvailable as exc:
            raise busy(exc, limits) from exc
        except psycopg.OperationalError as exc:
            if began or not conn.closed:
                raise
            raise LostAtBegin(f"connection lost before the transaction began: {exc}") from exc
    raise AssertionError("unreachable")  # pragma: no cover


def run_call(
    open_conn: Callable[[], Conn], fn: Callable[[Conn], _T], limits: SessionLimits, retries: int
) -> _T:
    """:func:`transact` on ``open_conn()`` (the caller's connection, opened again when it
    is closed); when that connection is found lost at the BEGIN (:class:`LostAtBegin`: a
    failover, a restart, a session the server ended while idle), once more on the one
    ``open_conn()`` opens then, so such a loss fails no call of its own. A second loss, or a
    connection that cannot be opened, fails the call."""
    try:
        return transact(open_conn(), fn, limits, retries)
    except LostAtBegin as exc:
        log.warning("state store: %s; running the call on a new connection", exc.__cause__)
    return transact(open_conn(), fn, limits, retries)

"""Bounds on every PostgreSQL session the daemon opens (the state store's connection, the
backfill claims' connection): how long a replica that stopped without dying can hold
locks, and how long a statement waits for them.

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

0 turns a timeout off (PostgreSQL's default); with both off no ``options`` startup
parameter is sent at all (nor the server's keepalives), for a pooler that refuses it. A user's explicit setting wins: a libpq
parameter given in the DSN (``?keepalives_idle=5``) is kept as given, and the server
settings go as ``-c`` startup options *before* the DSN's own ``options`` (or
``$PGOPTIONS`` when the DSN has none), so ``?options=-c%20lock_timeout%3D5s`` overrides
ours (the server applies the last value of a setting given twice). They override the
database's and role's defaults (``ALTER ROLE ... SET``), as startup options do.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from scoperouter.errors import StoreBusy

__all__ = ["SessionLimits", "StoreBusy", "busy", "connect", "connect_params"]

Conn = psycopg.Connection[tuple[Any, ...]]

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

    def server_options(self) -> list[str]:
        """The ``-c name=value`` startup options setting the server side."""
        ms = {
            "lock_timeout": _ms(self.lock_timeout_s),
            "idle_in_transaction_session_timeout": _ms(self.idle_in_transaction_s),
        }
        return [f"-c {k}={v}" for k, v in {**ms, **SERVER_KEEPALIVES}.items()]


def _ms(seconds: float) -> str:
    if not seconds >= 0:
        raise ValueError(f"expected a non-negative duration, got {seconds!r}")
    return str(max(1, round(seconds * 1000)) if seconds > 0 else 0)


def connect_params(
    dsn: str, limits: SessionLimits, environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The connection parameters to add to ``dsn`` (module docstring): the client
    keepalives it does not set itself, and ``options`` -- ours first, then its own (else
    ``$PGOPTIONS``: an explicit ``options`` parameter would replace it)."""
    given = conninfo_to_dict(dsn)
    env = os.environ if environ is None else environ
    params = {k: v for k, v in CLIENT_KEEPALIVES.items() if k not in given}
    if not limits.lock_timeout_s and not limits.idle_in_transaction_s:
        # both bounds off: no startup ``options`` at all (a pooler refusing the parameter,
        # PgBouncer's default, keeps working; set the bounds on the role instead)
        return params
    theirs = str(given.get("options") or env.get("PGOPTIONS") or "").strip()
    params["options"] = " ".join([*limits.server_options(), *([theirs] if theirs else [])])
    return params


def connect(dsn: str, limits: SessionLimits, **kwargs: Any) -> Conn:
    """``psycopg.connect(dsn, **kwargs)`` with the session bounds: ``kwargs`` win over the
    DSN, the DSN over :func:`connect_params`' defaults."""
    params: dict[str, Any] = dict(connect_params(dsn, limits))
    params.update(kwargs)
    return psycopg.connect(dsn, **params)


def busy(exc: psycopg.errors.LockNotAvailable, limits: SessionLimits) -> StoreBusy:
    """The :class:`StoreBusy` for a statement that gave up waiting for a lock."""
    return StoreBusy(
        "a state store statement waited longer than lock_timeout for a lock another session "
        "holds (a replica frozen or cut off in the middle of a transaction? the server ends "
        "its session after idle_in_transaction_session_timeout); nothing was written, retry "
        f"later (lock_timeout {limits.lock_timeout_s:g}s unless the DSN sets it: "
        f"{str(exc).strip()[:200]})"
    )

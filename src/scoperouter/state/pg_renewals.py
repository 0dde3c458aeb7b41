"""The PostgreSQL store's lease renewals on a connection of their own, apart from the one
its other calls share (:mod:`scoperouter.state.postgres`).

Invariant: a renewal never waits behind another call of its store, nor one behind it.
The store's calls run one at a time on its state thread; one of them may wait on a row
lock up to ``lock_timeout`` (an ingest behind a frozen replica's or a long transaction's
window row, 30 s by default: as long as the shipped lease). A renewal queued behind it
could not run; its replica's leases ran out in the store though the replica was alive
and delivering, and another replica rescued and sent the same triggers again. Here a
renewal runs on its own session (opened at the first renewal, with the same bounds:
:mod:`scoperouter.state.pg_session`; reopened after the server ended it), one renewal at
a time, from whichever thread calls it (the router's lease keeper has one of its own).
The renewal still locks its rows and re-checks their owner under those locks; its
transaction is retried on deadlocks as any (its rows and this replica's marks on the
other connection can now meet in opposite orders).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from scoperouter.state.pg_session import Conn, SessionLimits, run_call

_T = TypeVar("_T")


class RenewalSession:
    """One connection for lease renewals, opened on first use (a store never asked to renew
    opens none)."""

    def __init__(self, connect: Callable[[], Conn], limits: SessionLimits, retries: int) -> None:
        self._connect = connect
        self._limits = limits
        self._retries = retries
        self._conn: Conn | None = None
        self.reopened = 0  # connections opened after one was lost
        self._lock = threading.Lock()  # one renewal at a time on the connection

    def run(self, fn: Callable[[Conn], _T]) -> _T:
        """``fn`` in one transaction on the renewal connection (:func:`run_call`: opened
        again when lost, the call run on the new one when it was lost before it began)."""
        with self._lock:
            return run_call(self._open, fn, self._limits, self._retries)

    def _open(self) -> Conn:
        if self._conn is None or self._conn.closed:
            self.reopened += self._conn is not None
            self._conn = self._connect()
        return self._conn

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

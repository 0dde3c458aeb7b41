"""PostgreSQL only: an operator's redrive next to a running replica. Invariant: a row the
redrive puts back to pending has no ``trigger`` dead letter left behind -- also when the
row died (its Dead mark committed) while the redrive was running (the letters were
deleted by one statement and the rows redriven by a later one, which saw more dead rows)."""

from __future__ import annotations

import threading
import time
from typing import Any

from state_support import batch, contrib, need_psycopg

need_psycopg()

from scoperouter.state.model import Dead, StoreOptions  # noqa: E402
from scoperouter.state.postgres import PostgresStateStore  # noqa: E402
from scoperouter.state.shared_sql import PG  # noqa: E402

T0 = 1_700_000_000.0


def _wait_for_lock_wait(dsn: str, timeout: float = 20.0) -> None:
    """Until some backend waits on a lock (the blocked redrive)."""
    import psycopg

    deadline = time.monotonic() + timeout
    with psycopg.connect(dsn, autocommit=True) as c:
        while time.monotonic() < deadline:
            row = c.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            ).fetchone()
            if row is not None and row[0] > 0:
                return
            time.sleep(0.02)
    raise AssertionError("the redrive never waited for a lock")


def test_row_dying_during_a_redrive_keeps_no_stale_letter(pg_location: str) -> None:
    """A Dead mark committing while a redrive runs: the row is redriven with its letter
    dropped, or stays dead with its letter -- never pending with a dead letter."""
    import psycopg

    a = PostgresStateStore(pg_location, StoreOptions(owner="a"))
    op = PostgresStateStore(pg_location, StoreOptions(owner="op"))
    r = a.ingest(
        batch(
            contrib("e1", processor="p", critical=True), contrib("e2", processor="q", critical=True)
        ),
        T0,
    )
    first, second = sorted(x.item_id for x in r.fired)
    a.apply_marks([Dead(first, 3, T0, "max_attempts", "boom")])  # dead before the redrive
    hold: Any = psycopg.connect(pg_location)  # holds the first row's letter: the redrive waits
    hold.execute("SELECT 1 FROM sr_dead_letters FOR UPDATE").fetchall()
    dying: Any = psycopg.connect(pg_location)  # the replica giving up on the second row
    assert PG.mark(dying, Dead(second, 3, T0 + 1, "max_attempts", "boom"), "a")
    got: list[int] = []
    t = threading.Thread(target=lambda: got.append(op.redrive_dead(T0 + 2)))
    t.start()
    _wait_for_lock_wait(pg_location)
    dying.commit()  # the second row dies while the redrive runs
    hold.commit()
    t.join(timeout=20)
    hold.close()
    dying.close()
    assert got, "the redrive did not finish"
    status = {row.item_id: row.status for row in a.outbox_rows()}
    letters = {d.ref for d in a.dead_letters() if d.kind == "trigger"}
    dead_refs = {ref for ref in letters if status.get(int(ref.rsplit("#", 1)[1])) == "dead"}
    assert status[first] == "pending"
    assert letters == dead_refs, (status, letters)  # no letter of a pending row
    assert (status[second] == "dead") == bool(letters)
    a.close()
    op.close()

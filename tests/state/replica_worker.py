"""One replica of the kill test (``test_postgres_replica_kills.py``), as a process.

Loop: lease up to 10 messages from the emulated subscription (``q_events``, a visibility
timeout like Pub/Sub's ack deadline), ingest them in one store transaction, ack (delete
them) in a second one -- a kill in between redelivers them -- then rescue expired leases,
fire due windows, claim pending triggers, and "deliver" every leased trigger (a row in
``q_deliveries``) before marking it done -- a kill in between re-sends it after rescue.

Usage: python replica_worker.py DSN OWNER
"""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import date
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))

from scoperouter.state.model import (
    Admission,
    Contribution,
    Done,
    IngestBatch,
    OutboxItem,
    StoreOptions,
)
from scoperouter.state.postgres import PostgresStateStore

LEASE_S = 1.0
ACK_DEADLINE_S = 1.0


def admission(payload: str) -> Admission:
    ev = json.loads(payload)
    return Admission(
        ev["id"],
        tuple(
            Contribution(
                c["p"],
                date.fromisoformat(c["d"]),
                ev["id"],
                None,
                ev["critical"],
                "player",
                tuple(c["ids"]),
                "entity_scope",
                0.15,
                0.6,
                4,
                "player",
            )
            for c in ev["contributions"]
        ),
    )


def deliver(
    conn: psycopg.Connection[tuple[object, ...]],
    store: PostgresStateStore,
    items: list[OutboxItem],
    owner: str,
) -> None:
    for item in items:
        conn.execute(
            "INSERT INTO q_deliveries(trigger_id, item_id, owner, body) VALUES (%s, %s, %s, %s)",
            (item.trigger.trigger_id, item.item_id, owner, item.body.decode()),
        )
        time.sleep(0.1)  # the target's answer takes time: a kill here re-sends after rescue
        store.apply_marks([Done(item.item_id, 1, time.time())])


def main() -> None:
    dsn, owner = sys.argv[1], sys.argv[2]
    store = PostgresStateStore(dsn, StoreOptions(owner=owner, lease_s=LEASE_S))
    conn = psycopg.connect(dsn, autocommit=True)
    conn.execute(
        "INSERT INTO q_ready(owner, pid) VALUES (%s, %s) ON CONFLICT (owner) DO UPDATE "
        "SET pid = excluded.pid",
        (owner, os.getpid()),
    )
    while True:
        now = time.time()
        rows = conn.execute(
            "UPDATE q_events SET visible_at = %s WHERE id IN (SELECT id FROM q_events "
            "WHERE visible_at <= %s ORDER BY id LIMIT 10 FOR UPDATE SKIP LOCKED) "
            "RETURNING id, payload",
            (now + ACK_DEADLINE_S, now),
        ).fetchall()
        if rows:
            r = store.ingest(IngestBatch(admissions=tuple(admission(p) for _, p in rows)), now)
            time.sleep(0.01)  # a kill here redelivers committed messages (duplicates)
            conn.execute("DELETE FROM q_events WHERE id = ANY(%s)", ([i for i, _ in rows],))
            deliver(conn, store, list(r.fired), owner)
        now = time.time()
        store.rescue_expired(now)
        deliver(conn, store, store.fire_due(now, limit=20), owner)
        deliver(conn, store, store.claim(now, limit=20), owner)
        if not rows:
            time.sleep(0.02)


if __name__ == "__main__":
    main()

"""The dispatch mode stored with each outbox row (``sr_outbox.mode``), on SQLite and on
PostgreSQL (``make_store``): written when the trigger fires (``StoreOptions.modes``; NULL
without), returned by every read of the row, kept by a redrive and a legacy import, and
counted for the start-up line; a store written before the column opens with its rows
NULL (sent by the processor's mode at dispatch, as before)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from state_support import StoreFactory, batch, contrib, need_psycopg

from scoperouter.state import StoreOptions, open_state_store
from scoperouter.state.legacy import LegacyState, PendingTrigger
from scoperouter.state.model import Dead, Done, FireModes, LaneClaim, RetryLater
from scoperouter.state.sqlite import SqliteStateStore

T0 = 1_700_000_000.0
MODES = FireModes(shadow=frozenset({"s"}), live=frozenset({"l"}), others="shadow")


@pytest.mark.parametrize(
    ("processor", "modes", "stored"),
    [
        ("l", MODES, "live"),
        ("s", MODES, "shadow"),
        ("gone", MODES, "shadow"),  # not in routes.yaml: defaults.mode
        ("l", None, None),  # a store told no modes writes none
    ],
)
def test_a_fired_row_keeps_its_mode_through_every_read(
    store_location: str, processor: str, modes: FireModes | None, stored: str | None
) -> None:
    """The mode written at the fire is the one fired, claimed, listed and paged."""
    s = open_state_store(store_location, StoreOptions(owner="a", modes=modes), sync="normal")
    try:
        [item] = s.ingest(batch(contrib("e1", processor=processor, critical=True)), T0).fired
        [row] = s.outbox_rows()
        s.rescue_expired(T0, all_leases=True)
        [claimed] = s.claim(T0)
        s.apply_marks([RetryLater(claimed.item_id, 1, T0, "down")])
        [lane] = s.claim_lanes([LaneClaim(processor, 5, T0)], [], T0)
        assert (item.mode, row.mode, claimed.mode) == (stored, stored, stored)
        assert [r.mode for r in lane.claimed] == [stored]
    finally:
        s.close()


def test_a_redriven_row_keeps_its_mode(store_location: str) -> None:
    """A dead row redriven goes back to pending with the mode it fired in."""
    s = open_state_store(store_location, StoreOptions(owner="a", modes=MODES), sync="normal")
    try:
        items = s.ingest(
            batch(*(contrib(f"e{p}", processor=p, critical=True) for p in "ls")), T0
        ).fired
        s.apply_marks([Dead(i.item_id, 1, T0, "permanent_error", "no") for i in items])
        assert s.redrive_dead(T0 + 1) == 2
        got = {r.processor: (r.status, r.mode) for r in s.outbox_rows()}
        assert got == {"l": ("pending", "live"), "s": ("pending", "shadow")}
    finally:
        s.close()


def test_the_live_backlog_counts_rows_to_send_that_fired_live(store_location: str) -> None:
    """Pending and leased rows stored live, per processor; finished, shadow, NULL: not."""
    s = open_state_store(store_location, StoreOptions(owner="a", modes=MODES), sync="normal")
    old = open_state_store(store_location, StoreOptions(owner="b"), sync="normal")
    try:
        cs = [contrib(f"e{k}", processor=p, critical=True) for k, p in enumerate("llls")]
        items = s.ingest(batch(*cs), T0).fired
        s.apply_marks([RetryLater(items[1].item_id, 1, T0, "down")])  # pending
        s.apply_marks([Done(items[2].item_id, 1, T0)])  # finished
        old.ingest(batch(contrib("e9", processor="l", critical=True)), T0)  # no mode
        assert s.live_backlog() == {"l": 2}
    finally:
        s.close()
        old.close()


def test_a_legacy_import_keeps_each_pending_triggers_mode(make_store: StoreFactory) -> None:
    """Pending triggers of the snapshot + journal store are imported with their mode."""
    s = make_store()
    pending = tuple(
        PendingTrigger(f"t-{m}", "p", b'{"trigger_id":"t"}', 0, T0, m)
        for m in ("live", "shadow", None)
    )
    assert s.import_legacy(LegacyState((), (), pending, ()), T0)
    assert [(r.trigger_id, r.mode) for r in s.outbox_rows()] == [
        ("t-live", "live"),
        ("t-shadow", "shadow"),
        ("t-None", None),
    ]


def test_a_sqlite_store_from_schema_6_opens_with_its_rows_unmoded(tmp_path: Path) -> None:
    """Migration 7 adds the column; rows written before read NULL and stay claimable."""
    from scoperouter.state.sqlite_schema import MIGRATIONS

    path = tmp_path / "s.db"
    db = sqlite3.connect(path, isolation_level=None)
    for script in MIGRATIONS[:6]:
        for stmt in script.split(";"):
            if stmt.strip():
                db.execute(stmt)
    db.execute(
        "INSERT INTO sr_outbox(trigger_id, processor, body, status, created_at, available_at) "
        "VALUES ('t-1', 'p', ?, 'pending', 1.0, 1.0)",
        (b'{"trigger_id":"t-1"}',),
    )
    db.execute("PRAGMA user_version = 6")
    db.close()
    s = SqliteStateStore(path, StoreOptions(modes=MODES))
    try:
        version = s.pragma("user_version")
        [row] = s.outbox_rows()
        assert version == len(MIGRATIONS) == 9
        assert (row.trigger_id, row.status, row.mode) == ("t-1", "pending", None)
    finally:
        s.close()


def test_a_postgres_store_from_schema_4_opens_with_its_rows_unmoded(pg_location: str) -> None:
    """Migration 5 adds the column; rows written before read NULL and stay claimable."""
    need_psycopg()
    import psycopg

    from scoperouter.state.pg_schema import MIGRATIONS

    with psycopg.connect(pg_location, autocommit=True) as c:
        c.execute(
            "CREATE TABLE sr_schema_version (version integer PRIMARY KEY, "
            "applied_at timestamptz NOT NULL DEFAULT now())"
        )
        for n, script in enumerate(MIGRATIONS[:4], start=1):
            c.execute(script)
            c.execute("INSERT INTO sr_schema_version(version) VALUES (%s)", (n,))
        c.execute(
            "INSERT INTO sr_outbox(trigger_id, processor, body, status, created_at, "
            "available_at) VALUES ('t-1', 'p', %s, 'pending', 1.0, 1.0)",
            (b'{"trigger_id":"t-1"}',),
        )
    s = open_state_store(pg_location, StoreOptions(modes=MODES), sync="normal")
    try:
        [row] = s.outbox_rows()
        assert (row.trigger_id, row.status, row.mode) == ("t-1", "pending", None)
        assert len(MIGRATIONS) >= 6  # migrated on (7: sr_processors)
    finally:
        s.close()

"""The migration that records a dead letter's copy owed to the dead-letter topic rewrites no
row: a letter stored before it reads as owing nothing (its copy, if any, was sent then)
and is pruned at retention as before -- on SQLite and on PostgreSQL."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from state_support import need_psycopg

from scoperouter.state import StoreOptions, open_state_store
from scoperouter.state.model import Retention

INSERT = (
    "INSERT INTO sr_dead_letters(kind, ref, reason, detail, payload, at) "
    "VALUES ('event', 'sub#1', 'not_json', 'x', {p}, 1.0)"
)


def _check(location: str) -> None:
    s = open_state_store(location, StoreOptions(), sync="normal")
    try:
        [d] = s.dead_letters()
        assert (d.ref, d.payload, d.topic_record) == ("sub#1", b"{", None)
        assert s.letters_owed(10) == []
        assert s.prune(Retention(letters_s=10, keep_owed=True), 100.0).dead_letters == 1
    finally:
        s.close()


def test_a_sqlite_store_from_schema_8_keeps_its_letters_owing_nothing(tmp_path: Path) -> None:
    """SQLite: migration 9 adds the column; a letter written before owes the topic nothing."""
    from scoperouter.state.sqlite_schema import MIGRATIONS

    path = tmp_path / "s.db"
    db = sqlite3.connect(path, isolation_level=None)
    for script in MIGRATIONS[:8]:
        for stmt in script.split(";"):
            if stmt.strip():
                db.execute(stmt)
    db.execute(INSERT.format(p="?"), (b"{",))
    db.execute("PRAGMA user_version = 8")
    db.close()
    _check(str(path))


def test_a_postgres_store_from_schema_7_keeps_its_letters_owing_nothing(pg_location: str) -> None:
    """PostgreSQL: migration 8 adds the column; a letter written before owes the topic nothing."""
    need_psycopg()
    import psycopg

    from scoperouter.state.pg_schema import MIGRATIONS

    with psycopg.connect(pg_location, autocommit=True) as c:
        c.execute(
            "CREATE TABLE sr_schema_version (version integer PRIMARY KEY, "
            "applied_at timestamptz NOT NULL DEFAULT now())"
        )
        for n, script in enumerate(MIGRATIONS[:7], start=1):
            c.execute(script)
            c.execute("INSERT INTO sr_schema_version(version) VALUES (%s)", (n,))
        c.execute(INSERT.format(p="%s"), (b"{",))
    _check(pg_location)

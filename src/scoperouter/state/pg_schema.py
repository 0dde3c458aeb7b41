"""Schema of the PostgreSQL state store and its migrations.

Invariant: :func:`migrate` is idempotent and safe with many replicas starting at once:
it takes a transaction-scoped advisory lock, reads ``sr_schema_version``, applies the
missing versions in order in that one transaction and records each; a database from a
newer scoperouter is refused rather than written.
"""

from __future__ import annotations

from typing import Any

# any constant: the advisory lock that serialises migrations of concurrent replicas
MIGRATION_LOCK = 0x5C0DE_0013

MIGRATIONS: tuple[str, ...] = (
    # 1: dedupe, per-window rows, leased outbox, dead letters, completion ledger
    """
    CREATE TABLE sr_seen (
        event_id text PRIMARY KEY,
        seen_at double precision NOT NULL
    );
    CREATE INDEX sr_seen_at ON sr_seen(seen_at);
    CREATE TABLE sr_windows (
        processor text NOT NULL,
        day date NOT NULL,
        rev bigint NOT NULL DEFAULT 0,
        opened_at double precision NOT NULL,
        last_at double precision NOT NULL,
        deadline double precision NOT NULL,
        entity_ids text[],
        entity_type text NOT NULL,
        date_reason text,
        caused_by text[] NOT NULL,
        correlation_id text,
        priority text NOT NULL,
        quiet_s double precision NOT NULL,
        max_wait_s double precision NOT NULL,
        max_entities integer NOT NULL,
        PRIMARY KEY (processor, day)
    );
    CREATE INDEX sr_windows_deadline ON sr_windows(deadline);
    CREATE TABLE sr_outbox (
        id bigserial PRIMARY KEY,
        trigger_id text NOT NULL,
        processor text NOT NULL,
        body bytea NOT NULL,
        status text NOT NULL CHECK (status IN ('pending', 'leased', 'done', 'dead')),
        attempts integer NOT NULL DEFAULT 0,
        claims integer NOT NULL DEFAULT 0,
        rescues integer NOT NULL DEFAULT 0,
        created_at double precision NOT NULL,
        available_at double precision NOT NULL,
        lease_owner text,
        lease_until double precision,
        finished_at double precision,
        error text
    );
    CREATE INDEX sr_outbox_available ON sr_outbox(available_at, id) WHERE status = 'pending';
    CREATE INDEX sr_outbox_lease ON sr_outbox(lease_until) WHERE status = 'leased';
    CREATE INDEX sr_outbox_trigger ON sr_outbox(trigger_id);
    CREATE INDEX sr_outbox_finished ON sr_outbox(status, finished_at)
        WHERE status IN ('done', 'dead');
    CREATE TABLE sr_dead_letters (
        id bigserial PRIMARY KEY,
        kind text NOT NULL,
        ref text,
        reason text NOT NULL,
        detail text,
        payload bytea,
        at double precision NOT NULL
    );
    CREATE UNIQUE INDEX sr_dead_letters_ref ON sr_dead_letters(kind, ref);
    CREATE INDEX sr_dead_letters_at ON sr_dead_letters(at);
    CREATE TABLE sr_completions (
        trigger_id text PRIMARY KEY,
        state text NOT NULL,
        first_at double precision NOT NULL,
        last_at double precision NOT NULL,
        reports integer NOT NULL
    );
    CREATE INDEX sr_completions_last ON sr_completions(last_at);
    """,
    # 2: the dispatcher claims each target's backlog on its own (a lane), and expires
    # rows past the target's retry horizon
    """
    CREATE INDEX sr_outbox_lane ON sr_outbox(processor, available_at, id)
        WHERE status = 'pending';
    CREATE INDEX sr_outbox_lane_age ON sr_outbox(processor, created_at)
        WHERE status = 'pending';
    """,
    # 3: a window keeps at most CAUSED_BY_CAP cause ids and counts the rest (a hot
    # window's array grew by every event that joined it)
    """
    ALTER TABLE sr_windows ADD COLUMN caused_more integer NOT NULL DEFAULT 0;
    """,
    # 4: the backfills running on any replica (scoperouter.backfill.shared_claim): what
    # each rewrites, checked for overlap by the next one to start, and its holder's lease
    """
    CREATE TABLE sr_backfill_claims (
        backfill_id text PRIMARY KEY,
        owner text NOT NULL,
        token text NOT NULL,
        processors text[] NOT NULL,
        start_day date NOT NULL,
        end_day date NOT NULL,
        last_days jsonb NOT NULL,
        claimed_at double precision NOT NULL,
        lease_until double precision NOT NULL
    );
    """,
    # 5: the dispatch mode a trigger fired in, sent by it whatever the processor's mode is
    # when the row is dispatched (docs/rollout.md "Flip back"); NULL: a row written before
    # (the processor's mode at dispatch decides, as it did)
    """
    ALTER TABLE sr_outbox ADD COLUMN mode text CHECK (mode IN ('live', 'shadow'));
    """,
    # 6: a window a contribution joined while its processor fired live fires live, whatever
    # its processor's mode is when it fires (docs/rollout.md "Flip back"); false: a row
    # written before (it fires in its processor's mode then, as it did)
    """
    ALTER TABLE sr_windows ADD COLUMN live boolean NOT NULL DEFAULT false;
    """,
    # 7: the processors each replica routes, with when one last said so: a replica leaves
    # the work of a processor only another one routes to it (scoperouter.state.pg_roster)
    """
    CREATE TABLE sr_processors (
        processor text PRIMARY KEY,
        seen_at double precision NOT NULL
    );
    """,
    # 8: the record a dead letter still owes the dead-letter topic, kept until it went out
    # (retried by housekeeping, the letter never pruned before); NULL: nothing owed -- a
    # letter stored before, or with no topic configured (a nullable column without a
    # default: no row is rewritten)
    """
    ALTER TABLE sr_dead_letters ADD COLUMN topic_record bytea;
    CREATE INDEX sr_dead_letters_owed ON sr_dead_letters(id) WHERE topic_record IS NOT NULL;
    """,
)


def migrate(conn: Any) -> int:
    """Bring the database behind ``conn`` (a psycopg connection) to the latest version.

    Replicas starting together migrate once: the others wait for the migration lock, and
    for the locks the DDL takes, however long (``lock_timeout`` is lifted for this
    transaction only: the session's bound, :mod:`scoperouter.state.pg_session`, is for
    the ingests, not for a start waiting behind another replica's migration)."""
    with conn.transaction():
        conn.execute("SET LOCAL lock_timeout = 0")
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS sr_schema_version ("
            "version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        row = conn.execute("SELECT coalesce(max(version), 0) FROM sr_schema_version").fetchone()
        version = int(row[0])
        if version > len(MIGRATIONS):
            raise RuntimeError(
                f"state database is at schema version {version}, newer than this "
                f"scoperouter ({len(MIGRATIONS)}): upgrade scoperouter"
            )
        for n, script in enumerate(MIGRATIONS[version:], start=version + 1):
            conn.execute(script)
            conn.execute("INSERT INTO sr_schema_version(version) VALUES (%s)", (n,))
    return len(MIGRATIONS)

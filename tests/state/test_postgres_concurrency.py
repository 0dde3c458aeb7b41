"""PostgreSQL only: replicas racing on one database (ingest vs fire, ingest vs ingest,
claims, migrations). Timing only drives the interleavings; nothing asserts on it."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from typing import Any

import pytest
from state_support import DAY, batch, contrib, need_psycopg, raw_connection

need_psycopg()

from scoperouter.state.model import Admission, IngestBatch, OutboxItem, StoreOptions  # noqa: E402
from scoperouter.state.pg_schema import MIGRATIONS  # noqa: E402
from scoperouter.state.postgres import PostgresStateStore  # noqa: E402

T0 = 1_700_000_000.0


def _wait_for_lock_wait(dsn: str, timeout: float = 20.0) -> None:
    """Until some backend waits on a lock (the blocked ingest)."""
    import psycopg

    deadline = time.monotonic() + timeout
    with psycopg.connect(dsn, autocommit=True) as c:
        while time.monotonic() < deadline:
            n = c.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            ).fetchone()
            if n is not None and n[0] > 0:
                return
            time.sleep(0.02)
    raise AssertionError("the ingest never waited for the window lock")


def test_ingest_waiting_on_a_firing_row_opens_a_new_window(
    pg_location: str, replicas: Callable[..., PostgresStateStore]
) -> None:
    """A fire holding a window row: an ingest into it waits, then opens a fresh window
    with its contribution (not lost, not added to the fired trigger)."""
    a = replicas("a")
    a.ingest(batch(contrib("e1", ("x",))), T0)
    fire = raw_connection(pg_location)
    pool = ThreadPoolExecutor(1)
    with fire.transaction():
        gone = fire.execute(
            "DELETE FROM sr_windows WHERE (processor, day) IN (SELECT processor, day FROM "
            "sr_windows WHERE deadline <= %s FOR UPDATE SKIP LOCKED) RETURNING caused_by",
            (T0 + 100,),
        ).fetchall()
        assert gone == [(["e1"],)]
        fut = pool.submit(a.ingest, batch(contrib("e2", ("y",))), T0 + 1)
        _wait_for_lock_wait(pg_location)
        assert not fut.done()
    result = fut.result(timeout=20)
    pool.shutdown()
    fire.close()
    assert result.accepted == ("e2",)
    [w] = a.open_windows()
    assert (w.caused_by, w.entity_ids, w.opened_at) == ({"e2"}, {"y"}, T0 + 1)


def test_fire_skips_a_window_an_ingest_holds(
    pg_location: str, replicas: Callable[..., PostgresStateStore]
) -> None:
    """A due window locked by an ingest is skipped (not waited for), then fired later."""
    a, b = replicas("a"), replicas("b")
    a.ingest(batch(contrib("e1")), T0)
    hold = raw_connection(pg_location)
    with hold.transaction():
        hold.execute("SELECT 1 FROM sr_windows FOR UPDATE").fetchall()
        with ThreadPoolExecutor(1) as pool:
            assert pool.submit(b.fire_due, T0 + 100).result(timeout=20) == []
    hold.close()
    [item] = b.fire_due(T0 + 100)
    assert item.trigger.caused_by == ("e1",)


def test_racing_ingest_and_fire_lose_nothing_and_split_nothing(
    replicas: Callable[..., PostgresStateStore],
) -> None:
    """Two ingesting replicas (same events, redelivered to both) and two firing replicas:
    every event is accepted once, and each accepted contribution is in exactly one trigger."""
    ingesters = [replicas("i1"), replicas("i2")]
    firers = [replicas("f1"), replicas("f2")]
    days = [DAY + timedelta(days=d) for d in range(3)]
    ids = [f"e{i:04d}" for i in range(300)]
    base = time.monotonic()

    def now() -> float:
        return T0 + (time.monotonic() - base)

    def contributions_of(eid: str) -> tuple[Any, ...]:
        rng = random.Random(eid)
        return tuple(
            contrib(
                eid,
                (rng.choice("abcdef"),),
                processor=p,
                day=d,
                quiet=0.003,
                max_wait=0.02,
                max_entities=4,
                critical=rng.random() < 0.05,
            )
            for p in rng.sample(["p", "q"], rng.randint(1, 2))
            for d in rng.sample(days, rng.randint(1, 2))
        )

    fired: list[OutboxItem] = []
    accepted: Counter[str] = Counter()
    lock = threading.Lock()
    stop = threading.Event()

    def ingest(store: PostgresStateStore, seed: int) -> None:
        order = ids[:]
        random.Random(seed).shuffle(order)
        for i in range(0, len(order), 7):
            chunk = order[i : i + 7]
            adm = tuple(Admission(e, contributions_of(e)) for e in chunk)
            r = store.ingest(IngestBatch(admissions=adm), now())
            with lock:
                fired.extend(r.fired)
                accepted.update(r.accepted)

    def fire(store: PostgresStateStore) -> None:
        while not stop.is_set():
            got = store.fire_due(now(), limit=5)
            with lock:
                fired.extend(got)

    with ThreadPoolExecutor(4) as pool:
        fs = [pool.submit(fire, f) for f in firers]
        ins = [pool.submit(ingest, s, n) for n, s in enumerate(ingesters)]
        for f in ins:
            f.result(timeout=100)
        stop.set()
        for f in fs:
            f.result(timeout=20)
    fired.extend(firers[0].fire_due(T0 + 1e6))

    assert sorted(accepted) == ids and set(accepted.values()) == {1}
    per_contribution: Counter[tuple[str, str, date]] = Counter()
    for item in fired:
        t = item.trigger
        for eid in t.caused_by:
            per_contribution[(eid, t.processor, t.game_date)] += 1
    expected = {(e, c.processor, c.day) for e in ids for c in contributions_of(e)}
    assert set(per_contribution) == expected  # nothing lost
    assert set(per_contribution.values()) == {1}  # nothing in two triggers
    assert len(firers[0].outbox_rows()) == len(fired)
    assert firers[0].open_window_count() == 0


def test_concurrent_claims_split_the_outbox(replicas: Callable[..., PostgresStateStore]) -> None:
    """Four replicas claiming in a loop: every pending trigger is leased exactly once."""
    a = replicas("a")
    n = 120
    a.ingest(
        IngestBatch(
            admissions=tuple(
                Admission(f"e{i}", (contrib(f"e{i}", processor=f"p{i}", critical=True),))
                for i in range(n)
            )
        ),
        T0,
    )
    a.rescue_expired(T0, all_leases=True)
    stores = [replicas(f"c{i}") for i in range(4)]

    def drain(s: PostgresStateStore) -> list[int]:
        got: list[int] = []
        while batch_ := s.claim(T0 + 1, limit=3):
            got += [i.item_id for i in batch_]
        return got

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(drain, stores))
    flat = [i for r in results for i in r]
    assert len(flat) == n and len(set(flat)) == n


def test_replicas_starting_together_migrate_once(pg_location: str) -> None:
    """Replicas opening a fresh database at once: one migration, every store usable."""
    import psycopg

    with ThreadPoolExecutor(4) as pool:
        stores = list(
            pool.map(
                lambda i: PostgresStateStore(pg_location, StoreOptions(owner=f"r{i}")), range(4)
            )
        )
    for s in stores:
        assert s.open_window_count() == 0
        s.close()
    with psycopg.connect(pg_location) as c:
        want = [(n,) for n in range(1, len(MIGRATIONS) + 1)]
        assert (
            c.execute("SELECT version FROM sr_schema_version ORDER BY version").fetchall() == want
        )


def test_newer_schema_is_refused(pg_location: str) -> None:
    """A database migrated by a newer scoperouter is not written by an older one."""
    import psycopg

    PostgresStateStore(pg_location).close()
    with psycopg.connect(pg_location, autocommit=True) as c:
        c.execute("INSERT INTO sr_schema_version(version) VALUES (99)")
    with pytest.raises(RuntimeError, match="schema version 99"):
        PostgresStateStore(pg_location)

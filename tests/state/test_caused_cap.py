"""A window's stored ``caused_by`` is capped (issue 16: nothing grows without bound in a
hot window): the store keeps the ``CAUSED_BY_CAP`` smallest ids and counts the rest, so a
fired trigger is the one the uncapped window gave (the same ids, the same
``caused_by_more``), and the stored row stays bounded however hot the window."""

from __future__ import annotations

import importlib
import random
import sqlite3

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from state_support import StoreFactory, batch, contrib

from scoperouter.router.window_state import CAUSED_BY_CAP, EventIds
from scoperouter.state.merge import add_cause, union_causes

merge_mod = importlib.import_module("scoperouter.state.merge")  # the package exports merge()
window_mod = importlib.import_module("scoperouter.router.event_ids")  # EventIds' cap
T0 = 1_700_000_000.0
SMALL_CAP = 4
IDS = st.text(alphabet="abcdeé", min_size=1, max_size=3)


def oracle(ids: list[str], carried: int = 0) -> tuple[frozenset[str], int]:
    """The uncapped answer: every distinct id, the smallest ``SMALL_CAP`` kept, the rest
    counted (plus what was already counted)."""
    every = sorted(set(ids))
    return frozenset(every[:SMALL_CAP]), carried + max(0, len(every) - SMALL_CAP)


@settings(max_examples=300, deadline=None)
@given(ids=st.lists(IDS, max_size=12))
def test_add_cause_one_by_one_equals_the_uncapped_set(ids: list[str]) -> None:
    """Adding ids one at a time keeps exactly the smallest ``cap`` ids; on distinct ids
    (the store admits an event id once) it counts exactly the rest."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(merge_mod, "CAUSED_BY_CAP", SMALL_CAP)
        have, more = frozenset[str](), 0
        for i in ids:
            have, more = add_cause(have, more, i)
            assert len(have) <= SMALL_CAP
    assert have == oracle(ids)[0]
    if len(set(ids)) == len(ids):
        assert more == oracle(ids)[1]


@settings(max_examples=300, deadline=None)
@given(
    a=st.lists(IDS, max_size=8, unique=True),
    b=st.lists(IDS, max_size=8, unique=True),
    a_more=st.integers(0, 3),
    b_more=st.integers(0, 3),
)
def test_union_causes_equals_the_uncapped_union(
    a: list[str], b: list[str], a_more: int, b_more: int
) -> None:
    """Two capped halves united keep the smallest ``cap`` ids of the whole; for disjoint
    halves (a stored row and a batch's new events) every overflow is counted once."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(merge_mod, "CAUSED_BY_CAP", SMALL_CAP)
        a_ids, a_over = oracle(a, a_more)
        b_ids, b_over = oracle(b, b_more)
        got = union_causes(a_ids, a_over, b_ids, b_over)
    assert got[0] == oracle(a + b)[0]
    if not set(a) & set(b):
        assert got == oracle(a + b, a_more + b_more)


@settings(max_examples=300, deadline=None)
@given(ids=st.lists(IDS, max_size=12, unique=True))
def test_the_window_books_ids_are_the_ones_the_stores_keep(ids: list[str]) -> None:
    """In any arrival order, EventIds (replay's window book) keeps and counts what add_cause does."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(merge_mod, "CAUSED_BY_CAP", SMALL_CAP)
        mp.setattr(window_mod, "CAUSED_BY_CAP", SMALL_CAP)
        node, have, more = EventIds(), frozenset[str](), 0
        for i in ids:  # distinct: the engine admits an event id once
            node, (have, more) = node.add(i), add_cause(have, more, i)
            assert (node.frozen(), node.more) == (have, more)
    assert (node.frozen(), node.more) == oracle(ids)


@settings(max_examples=300, deadline=None)
@given(ids=st.lists(st.sampled_from("abcdefg"), max_size=14))
def test_an_id_delivered_again_changes_the_window_book_as_the_stores(ids: list[str]) -> None:
    """With ids delivered again (a dedup horizon shorter than the window), EventIds keeps and counts what add_cause does: a repeated kept id adds nothing."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(merge_mod, "CAUSED_BY_CAP", SMALL_CAP)
        mp.setattr(window_mod, "CAUSED_BY_CAP", SMALL_CAP)
        node, have, more = EventIds(), frozenset[str](), 0
        for i in ids:
            kept = node
            node, (have, more) = node.add(i), add_cause(have, more, i)
            assert (node.frozen(), node.more) == (have, more)
            if i in kept:
                assert node == kept
    assert node.frozen() == oracle(ids)[0]


def test_a_legacy_row_above_the_cap_is_capped_on_its_next_cause() -> None:
    """A row written before the cap (more ids than the cap) is capped by the next merge."""
    ids = frozenset(f"e{i:05d}" for i in range(CAUSED_BY_CAP + 7))
    have, more = add_cause(ids, 2, "a-first")
    assert len(have) == CAUSED_BY_CAP and "a-first" in have
    assert more == 2 + 8


@pytest.mark.parametrize("batches", [1, 7])
def test_a_hot_window_row_stays_capped_and_fires_the_uncapped_trigger(
    make_store: StoreFactory, batches: int
) -> None:
    """``cap`` + 40 events in shuffled order into one window (in one batch or several):
    the open window holds ``cap`` ids and counts 40; its trigger lists the smallest
    ``cap`` ids with ``caused_by_more`` 40, on SQLite and PostgreSQL alike."""
    s = make_store()
    names = [f"e{i:05d}" for i in range(CAUSED_BY_CAP + 40)]
    random.Random(7).shuffle(names)
    step = -(-len(names) // batches)
    for k in range(0, len(names), step):
        part = names[k : k + step]
        s.ingest(batch(*(contrib(n, ("a",), max_entities=5) for n in part)), T0 + k / 1000)
    [w] = s.open_windows()
    assert len(w.caused_by) == CAUSED_BY_CAP and w.caused_more == 40
    [item] = s.fire_due(T0 + 1000)
    assert list(item.trigger.caused_by) == sorted(names)[:CAUSED_BY_CAP]
    assert item.trigger.caused_by_more == 40


def test_sqlite_state_file_from_schema_3_opens_with_uncounted_windows(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A state file written before migration 4 opens: its windows count no extra causes."""
    from scoperouter.state import StoreOptions, open_state_store

    path = tmp_path / "state.db"
    s = open_state_store(str(path), StoreOptions(owner="a"), sync="normal")
    s.ingest(batch(contrib("e1", ("a",))), T0)
    s.close()
    db = sqlite3.connect(path, isolation_level=None)  # back to version 3, column dropped
    db.execute("INSERT INTO sr_seen SELECT event_id, seen_at FROM sr_seen_recent")
    db.execute("DROP TABLE sr_seen_recent")  # (migration 5)
    db.execute("ALTER TABLE sr_windows DROP COLUMN caused_more")
    db.execute("ALTER TABLE sr_outbox DROP COLUMN mode")  # (migration 7)
    db.execute("ALTER TABLE sr_windows DROP COLUMN live")  # (migration 8)
    db.execute("DROP INDEX sr_dead_letters_owed")  # (migration 9)
    db.execute("ALTER TABLE sr_dead_letters DROP COLUMN topic_record")
    db.execute("PRAGMA user_version = 3")
    db.close()
    s = open_state_store(str(path), StoreOptions(owner="a"), sync="normal")
    [w] = s.open_windows()
    assert w.caused_by == frozenset({"e1"}) and w.caused_more == 0 and s.seen_at("e1") == T0
    s.close()


def test_the_kept_ids_are_the_smallest_in_code_point_order(make_store: StoreFactory) -> None:
    """Ids past ASCII, capped across two batches (PostgreSQL re-caps the row in SQL): the
    kept ids are the ones Python's sort keeps, so the trigger is the same on both stores."""
    s = make_store()
    base = [f"m{i:04d}" for i in range(CAUSED_BY_CAP - 5)]
    late = ["é1", "z1", "😀", "Z1", "a1", "~", "ü"]
    s.ingest(batch(*(contrib(n, ("a",), max_entities=5) for n in base)), T0)
    s.ingest(batch(*(contrib(n, ("a",), max_entities=5) for n in late)), T0 + 1)
    [item] = s.fire_due(T0 + 1000)
    assert list(item.trigger.caused_by) == sorted(base + late)[:CAUSED_BY_CAP]
    assert item.trigger.caused_by_more == 2
    assert {"ü", "😀"}.isdisjoint(item.trigger.caused_by)


def test_postgres_keeps_code_point_order_under_a_linguistic_collation(pg_location: str) -> None:
    """The row re-capped in SQL keeps Python's order even where the column's collation is
    linguistic (ICU: 'a1' < 'Z1', 'é1' next to 'e'), as a database created with a
    en_US.UTF-8 locale has it; the test cluster's own locale is C."""
    import psycopg

    from scoperouter.state import StoreOptions, open_state_store

    s = open_state_store(pg_location, StoreOptions(owner="a"), sync="normal")
    with psycopg.connect(pg_location, autocommit=True) as c:
        c.execute('ALTER TABLE sr_windows ALTER COLUMN caused_by TYPE text[] COLLATE "und-x-icu"')
    base = [f"m{i:04d}" for i in range(CAUSED_BY_CAP - 3)]
    late = ["é1", "z1", "Z1", "a1", "e1"]
    s.ingest(batch(*(contrib(n, ("a",), max_entities=5) for n in base)), T0)
    s.ingest(batch(*(contrib(n, ("a",), max_entities=5) for n in late)), T0 + 1)
    [item] = s.fire_due(T0 + 1000)
    s.close()
    assert list(item.trigger.caused_by) == sorted(base + late)[:CAUSED_BY_CAP]
    assert "é1" not in item.trigger.caused_by and item.trigger.caused_by_more == 2

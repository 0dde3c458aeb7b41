"""The state-store contract: every test runs on SQLite and on PostgreSQL (``make_store``)."""

from __future__ import annotations

from datetime import date

import pytest
from state_support import DAY, StoreFactory, batch, contrib

from scoperouter.state.model import (
    Admission,
    Attempted,
    Dead,
    DeadLetterIn,
    Done,
    IngestBatch,
    Reported,
    Retention,
    RetryLater,
)

T0 = 1_700_000_000.0


# ---------------------------------------------------------------------- dedupe
def test_reseen_event_id_keeps_its_first_time(make_store: StoreFactory) -> None:
    """A re-seen event id is a duplicate, keeps its FIRST time, and adds nothing."""
    s = make_store()
    r1 = s.ingest(batch(contrib("e1", ("a",))), T0)
    r2 = s.ingest(batch(contrib("e1", ("b",))), T0 + 5)
    assert (r1.accepted, r1.duplicates) == (("e1",), ())
    assert (r2.accepted, r2.duplicates) == ((), ("e1",))
    assert s.seen_at("e1") == T0
    [w] = s.open_windows()
    assert w.entity_ids == frozenset({"a"}) and w.last_at == T0


def test_repeated_id_in_one_batch_counts_once(make_store: StoreFactory) -> None:
    """The same id twice in one batch: the first is accepted, the second a duplicate."""
    s = make_store()
    r = s.ingest(batch(contrib("e1", ("a",)), contrib("e1", ("b",))), T0)
    assert (r.accepted, r.duplicates) == (("e1",), ("e1",))
    assert s.open_windows()[0].entity_ids == frozenset({"a"})


def test_skip_only_event_is_remembered(make_store: StoreFactory) -> None:
    """An event with no contributions opens nothing but is deduplicated later."""
    s = make_store()
    s.ingest(IngestBatch(admissions=(Admission("e1"),)), T0)
    assert s.open_window_count() == 0 and s.seen_at("e1") == T0
    assert s.ingest(batch(contrib("e1")), T0 + 1).duplicates == ("e1",)


# ---------------------------------------------------------------------- windows
@pytest.mark.parametrize(
    ("contribs", "ids", "etype", "reason"),
    [
        ([("a",), ("b",)], {"a", "b"}, "player", None),
        ([("a",), None], None, "player", "no_entities_in_event"),
        ([None, ("a",)], None, "player", "no_entities_in_event"),
        ([("a", "b"), ("c", "d")], None, "player", "fallback_threshold"),
        ([("a", "b"), ("b", "c")], {"a", "b", "c"}, "player", None),  # exactly max: entities
    ],
)
def test_window_merge_rules(
    make_store: StoreFactory,
    contribs: list[tuple[str, ...] | None],
    ids: set[str] | None,
    etype: str,
    reason: str | None,
) -> None:
    """Entity sets unite, date absorbs, passing max_entities (3) becomes full date."""
    s = make_store()
    for i, c in enumerate(contribs):
        s.ingest(batch(contrib(f"e{i}", c)), T0 + i)
    [w] = s.open_windows()
    assert w.entity_ids == (None if ids is None else frozenset(ids))
    assert (w.entity_type, w.date_reason) == (etype, reason)
    assert w.caused_by == frozenset(f"e{i}" for i in range(len(contribs)))


def test_window_round_trips_every_field(make_store: StoreFactory) -> None:
    """A reopened store returns each window exactly (times, type, correlation, params)."""
    s = make_store()
    s.ingest(batch(contrib("e1", ("a",), etype="team", correlation="c-1")), T0)
    s.ingest(batch(contrib("e2", ("b",), etype="team", correlation="c-2", quiet=99)), T0 + 3)
    before = s.open_windows()
    s.close()
    [w] = make_store().open_windows()
    assert [w] == before
    assert (w.opened_at, w.last_at, w.entity_type) == (T0, T0 + 3, "team")
    assert (w.correlation_id, w.quiet_s, w.max_wait_s, w.max_entities) == ("c-1", 10, 60, 3)
    assert w.deadline == T0 + 13


def test_entity_type_comes_from_the_decision(make_store: StoreFactory) -> None:
    """A window's entity type is the decision's, and the trigger carries it."""
    s = make_store()
    s.ingest(batch(contrib("e1", ("LAL",), etype="team")), T0)
    [w] = s.open_windows()
    assert w.entity_type == "team"
    [item] = s.fire_due(T0 + 100)
    assert item.trigger.entity_type == "team" and item.trigger.entity_ids == ("LAL",)


def test_ids_of_another_entity_type_make_the_window_full_date(make_store: StoreFactory) -> None:
    """A stored window of player ids that gets team ids (the processor's granularity changed
    over a restart) fires at full date, never the player ids labelled as team ids."""
    s = make_store()
    s.ingest(batch(contrib("e1", ("lebronjames",))), T0)
    s.close()
    s = make_store()
    s.ingest(batch(contrib("e2", ("LAL",), etype="team")), T0 + 1)
    [item] = s.fire_due(T0 + 100)
    t = item.trigger
    assert (t.scope, t.entity_ids, t.entity_type) == ("date", None, None)
    assert (t.reason, t.caused_by) == ("unmapped_entity_type", ("e1", "e2"))


def test_windows_fire_at_their_deadline_only(make_store: StoreFactory) -> None:
    """quiet after the last decision, capped by max_wait after opening; earliest first."""
    s = make_store()
    s.ingest(batch(contrib("e1", processor="p1", quiet=10, max_wait=15)), T0)
    s.ingest(batch(contrib("e2", processor="p1", quiet=10, max_wait=15)), T0 + 8)
    s.ingest(batch(contrib("e3", processor="p2", quiet=5)), T0 + 1)
    assert s.next_deadline() == T0 + 6
    assert s.fire_due(T0 + 5.9) == []
    assert [i.trigger.processor for i in s.fire_due(T0 + 6)] == ["p2"]
    assert s.next_deadline() == T0 + 15  # max_wait caps quiet (8 + 10)
    assert s.fire_due(T0 + 14.9) == []
    [p1] = s.fire_due(T0 + 15)
    assert p1.trigger.caused_by == ("e1", "e2") and s.next_deadline() is None


def test_critical_fires_at_once_and_next_opens_anew(make_store: StoreFactory) -> None:
    """A critical contribution fires its window in the ingest; later ones open a new one."""
    s = make_store()
    r = s.ingest(
        batch(contrib("e1", ("a",)), contrib("e2", ("b",), critical=True), contrib("e3", ("c",))),
        T0,
    )
    [item] = r.fired
    t = item.trigger
    assert (t.caused_by, t.entity_ids, t.priority) == (("e1", "e2"), ("a", "b"), "critical")
    [w] = s.open_windows()
    assert w.caused_by == frozenset({"e3"}) and w.priority == "normal"


def test_event_after_the_deadline_opens_a_new_window(make_store: StoreFactory) -> None:
    """A due window not yet fired fires as it was; the late event opens a new one."""
    s = make_store()
    s.ingest(batch(contrib("e1", ("a",))), T0)
    r = s.ingest(batch(contrib("e2", ("b",))), T0 + 10)  # quiet 10 s: due at T0 + 10
    [item] = r.fired
    assert (item.trigger.caused_by, item.trigger.entity_ids) == (("e1",), ("a",))
    [w] = s.open_windows()
    assert (w.caused_by, w.opened_at) == ({"e2"}, T0 + 10)


def test_zero_quiet_fires_in_the_ingest(make_store: StoreFactory) -> None:
    """A window with quiet 0 fires with the event that opened it (one trigger per event)."""
    s = make_store()
    r = s.ingest(batch(contrib("e1", quiet=0), contrib("e2", quiet=0)), T0)
    assert [i.trigger.caused_by for i in r.fired] == [("e1",), ("e2",)]
    assert s.open_window_count() == 0 and r.next_deadline is None


def test_fired_trigger_is_leased_to_the_firing_owner(make_store: StoreFactory) -> None:
    """Fired triggers enter the outbox leased to their firer for lease_s (PostgreSQL: from the
    end of the call's lock waits, so at least), with fired_at = now."""
    s = make_store(owner="r1", lease_s=30)
    [item] = s.ingest(batch(contrib("e1", critical=True)), T0).fired
    [row] = s.outbox_rows()
    assert (row.item_id, row.status, row.lease_owner) == (item.item_id, "leased", "r1")
    assert row.lease_until is not None and row.lease_until >= T0 + 30
    assert item.trigger.fired_at is not None and item.trigger.fired_at.timestamp() == T0
    assert item.trigger.game_date == DAY and (item.attempts, item.claims) == (0, 1)


def test_fired_body_keys_the_date_by_date_field(store_location: str) -> None:
    """A store told the registry's date_field writes the date under it; claims read it."""
    import json

    from scoperouter.state import StoreOptions, open_state_store

    s = open_state_store(store_location, StoreOptions(date_field="business_date"), sync="normal")
    try:
        [item] = s.ingest(batch(contrib("e1", critical=True)), T0).fired
        wire = json.loads(item.body)
        assert wire["business_date"] == DAY.isoformat() and "game_date" not in wire
        s.rescue_expired(T0, all_leases=True)
        [again] = s.claim(T0)
        assert (again.trigger.game_date, again.trigger.date_field) == (DAY, "business_date")
    finally:
        s.close()


def test_one_batch_many_windows(make_store: StoreFactory) -> None:
    """One event reaching several processors and dates opens one window per key."""
    s = make_store()
    cs = tuple(contrib("e1", processor=p, day=date(2025, 11, d)) for p in "xy" for d in (1, 2))
    s.ingest(IngestBatch(admissions=(Admission("e1", cs),)), T0)
    assert [w.key for w in s.open_windows()] == sorted(c.key for c in cs)
    assert len(s.fire_due(T0 + 10)) == 4


# ---------------------------------------------------------------------- outbox and leases
def _fired(s: object, n: int = 1) -> list[int]:
    from scoperouter.state.api import StateStore

    assert isinstance(s, StateStore)
    r = s.ingest(batch(*(contrib(f"f{i}", processor=f"p{i}", critical=True) for i in range(n))), T0)
    return [i.item_id for i in r.fired]


def test_expired_lease_is_rescued_by_another_replica(make_store: StoreFactory) -> None:
    """A dead replica's lease is rescued after it runs out, and then claimable once."""
    a, b = make_store("a", lease_s=10), make_store("b", lease_s=10)
    [item_id] = _fired(a)
    assert b.claim(T0 + 5) == []  # leased to a
    assert b.rescue_expired(T0 + 9.9) == 0
    assert b.rescue_expired(T0 + 10.1) == 1
    [got] = b.claim(T0 + 10.2)
    assert (got.item_id, got.claims) == (item_id, 2)
    assert a.claim(T0 + 10.3) == []
    [row] = b.outbox_rows()
    assert (row.lease_owner, row.rescues) == ("b", 1)


def test_extended_lease_is_not_rescued(make_store: StoreFactory) -> None:
    """Renewing a lease keeps it from rescue; only the owner can renew."""
    a, b = make_store("a", lease_s=10), make_store("b", lease_s=10)
    [item_id] = _fired(a)
    assert b.extend_leases([item_id], T0 + 8) == frozenset()
    assert a.extend_leases([item_id], T0 + 8) == {item_id}
    assert b.rescue_expired(T0 + 15) == 0
    assert b.rescue_expired(T0 + 18.1) == 1


def test_stale_owner_cannot_touch_a_reclaimed_row(make_store: StoreFactory) -> None:
    """After rescue and reclaim, the old owner's attempt/retry marks change nothing."""
    a, b = make_store("a", lease_s=10), make_store("b", lease_s=10)
    [i] = _fired(a)
    b.rescue_expired(T0 + 11)
    b.claim(T0 + 11)
    assert a.apply_marks([Attempted(i, 3, "x"), RetryLater(i, 3, T0 + 20, "x")]) == (
        False,
        False,
    )
    [row] = b.outbox_rows()
    assert (row.status, row.attempts, row.lease_owner) == ("leased", 0, "b")
    assert a.apply_marks([Done(i, 1, T0 + 12)]) == (True,)  # delivery happened: recorded


def test_retry_later_returns_the_row_at_its_time(make_store: StoreFactory) -> None:
    """RetryLater gives the lease back; the row is claimable from available_at on."""
    a = make_store("a")
    [i] = _fired(a)
    assert a.apply_marks([RetryLater(i, 2, T0 + 50, "boom")]) == (True,)
    assert a.claim(T0 + 49) == []
    [got] = a.claim(T0 + 50)
    assert (got.item_id, got.attempts, got.claims) == (i, 2, 2)


@pytest.mark.parametrize("final", ["done", "dead"])
def test_finished_rows_never_change(make_store: StoreFactory, final: str) -> None:
    """No mark (attempts, retry, done, dead) overwrites a done or dead row."""
    a = make_store("a")
    [i] = _fired(a)
    first = Done(i, 1, T0 + 1) if final == "done" else Dead(i, 4, T0 + 1, "max_attempts", "e")
    assert a.apply_marks([first]) == (True,)
    before = a.outbox_rows()
    later = [Attempted(i, 9, "x"), RetryLater(i, 9, T0, "x"), Done(i, 9, T0 + 2)]
    later.append(Dead(i, 9, T0 + 2, "permanent_error", "x"))
    assert a.apply_marks(later) == (False,) * 4
    assert a.outbox_rows() == before
    assert before[0].status == final and before[0].finished_at == T0 + 1
    assert a.rescue_expired(T0 + 1e6, all_leases=True) == 0


def test_dead_mark_stores_a_dead_letter_with_the_body(make_store: StoreFactory) -> None:
    """Dead stores a ``trigger`` dead letter with the trigger's body in the same step."""
    a = make_store("a")
    item = a.ingest(batch(contrib("e1", critical=True)), T0).fired[0]
    a.apply_marks([Dead(item.item_id, 5, T0 + 2, "max_attempts", "HTTP 500")])
    [dl] = a.dead_letters()
    assert (dl.kind, dl.ref, dl.reason, dl.detail, dl.payload, dl.at) == (
        "trigger",
        f"{item.trigger.trigger_id}#{item.item_id}",
        "max_attempts",
        "HTTP 500",
        item.body,
        T0 + 2,
    )
    assert a.outbox_counts() == {"dead": 1}


def test_attempts_survive_a_restart(make_store: StoreFactory) -> None:
    """Attempts recorded while leased are returned by the next claim after a restart."""
    a = make_store("a")
    [i] = _fired(a)
    a.apply_marks([Attempted(i, 3, "timeout")])
    a.close()
    a2 = make_store("a")
    assert a2.rescue_expired(T0, all_leases=True) == 1
    [got] = a2.claim(T0)
    assert (got.item_id, got.attempts) == (i, 3)


def test_concurrent_claims_are_disjoint(make_store: StoreFactory) -> None:
    """Two replicas claiming the same pending rows get each row once."""
    a, b = make_store("a"), make_store("b")
    ids = _fired(a, 6)
    a.rescue_expired(T0, all_leases=True)
    got_a = [i.item_id for i in a.claim(T0, limit=4)]
    got_b = [i.item_id for i in b.claim(T0, limit=4)]
    assert sorted(got_a + got_b) == ids and len(got_a) == 4


# ---------------------------------------------------------------------- dead letters
def test_dead_letters_unique_per_kind_and_ref(make_store: StoreFactory) -> None:
    """One letter per (kind, ref, payload): the same letter again is skipped, another payload
    under a taken ref is kept under another ref; letters without ref are all kept."""
    s = make_store()
    letters = (
        DeadLetterIn("event", "m1", "invalid_json", "x", b"{", T0),
        DeadLetterIn("event", "m1", "other", "y", b"[", T0 + 1),
        DeadLetterIn("trigger", "m1", "r", None, None, T0),
        DeadLetterIn("event", None, "r", None, None, T0),
        DeadLetterIn("event", None, "r", None, None, T0),
        DeadLetterIn("event", "m1", "invalid_json", "x", b"{", T0 + 2),  # a redelivery
    )
    r = s.ingest(IngestBatch(dead_letters=letters), T0)
    assert r.dead_lettered == (True, True, True, True, True, False)
    assert s.dead_letter(letters[0]) is False and s.dead_letter(letters[1]) is False
    rows = [(d.kind, d.ref, d.reason) for d in s.dead_letters()][:3]
    assert rows[0] == ("event", "m1", "invalid_json") and rows[2] == ("trigger", "m1", "r")
    assert rows[1][0::2] == ("event", "other") and str(rows[1][1]).startswith("m1~")


@pytest.mark.parametrize(
    ("copied", "keep_owed", "left"),
    [
        pytest.param(False, True, {"owed"}, id="owed-kept-while-a-topic-is-configured"),
        pytest.param(True, True, set(), id="copied-pruned"),
        pytest.param(False, False, set(), id="no-topic-pruned"),
    ],
)
def test_a_letter_owed_to_the_dead_letter_topic_is_kept_until_copied(
    make_store: StoreFactory, copied: bool, keep_owed: bool, left: set[str]
) -> None:
    """A letter stored with a topic record is owed (oldest first) until letters_copied;
    a prune with keep_owed never deletes it before, one without does; a letter with no
    record is owed nothing and pruned as before."""
    s = make_store()
    letters = (
        DeadLetterIn("event", "owed", "not_json", "x", b"\xff{", T0, b'{"ref":"owed"}'),
        DeadLetterIn("event", "plain", "not_json", "x", b"{", T0),
    )
    assert s.ingest(IngestBatch(dead_letters=letters), T0).dead_lettered == (True, True)
    [(owed_id, record)] = s.letters_owed(10)
    assert record == b'{"ref":"owed"}'
    assert [(d.ref, d.topic_record) for d in s.dead_letters()] == [
        ("owed", b'{"ref":"owed"}'),
        ("plain", None),
    ]
    if copied:
        assert s.letters_copied([owed_id]) == 1
        assert s.letters_owed(10) == [] and s.letters_copied([owed_id]) == 0
    p = s.prune(Retention(letters_s=10, keep_owed=keep_owed), T0 + 100)
    assert p.dead_letters == 2 - len(left)
    assert {d.ref for d in s.dead_letters()} == left


# ---------------------------------------------------------------------- completion ledger
def test_completion_ledger_latest_report_wins(make_store: StoreFactory) -> None:
    """Latest report time gives the state (out-of-order safe); first time and count kept."""
    s = make_store()
    assert s.completion("t-1") is None
    s.record_completion("t-1", "failed", T0 + 10)
    s.record_completion("t-1", "success", T0 + 20)
    s.record_completion("t-1", "partial", T0 + 15)  # late report of an older run
    c = s.completion("t-1")
    assert c is not None
    assert (c.state, c.first_at, c.last_at, c.reports) == ("success", T0 + 10, T0 + 20, 3)


@pytest.mark.parametrize(
    ("before", "reports", "want"),
    [
        # an admitted event's report is recorded with its batch
        pytest.param((), [("e1", "failed")], ("failed", 1), id="admitted"),
        # a redelivered event is a duplicate: its report is not recorded again
        pytest.param(("e1",), [("e1", "failed")], None, id="duplicate"),
        # the same event twice in one batch: recorded once
        pytest.param((), [("e1", "success"), ("e1", "success")], ("success", 1), id="repeated"),
        # a bare report (no event admitted): recorded whatever came before
        pytest.param(("e1",), [(None, "no_data")], ("no_data", 1), id="bare-report"),
    ],
)
def test_ingest_records_the_reports_of_its_batch_in_the_ledger(
    make_store: StoreFactory,
    before: tuple[str, ...],
    reports: list[tuple[str | None, str]],
    want: tuple[str, int] | None,
) -> None:
    """A batch's reported completions go into the ledger in its transaction: an event's only when the event is admitted (new), a bare report always."""
    s = make_store()
    for eid in before:
        s.ingest(IngestBatch(admissions=(Admission(eid),)), T0)
    done = tuple(Reported("bf-1", st, eid) for eid, st in reports)  # type: ignore[arg-type]
    admitted = tuple(Admission(eid) for eid, _ in reports if eid is not None)
    s.ingest(IngestBatch(admissions=admitted, completions=done), T0 + 1)
    c = s.completion("bf-1")
    assert (None if c is None else (c.state, c.reports)) == want


# ---------------------------------------------------------------------- housekeeping
def test_prune_uses_each_horizon(make_store: StoreFactory) -> None:
    """Done rows go at done_s, dead rows and letters at dead_s, pending rows never."""
    s = make_store("a")
    done, dead, pending = _fired(s, 3)
    s.apply_marks([Done(done, 1, T0), Dead(dead, 1, T0, "max_attempts", "e")])
    s.ingest(batch(contrib("open")), T0)
    s.record_completion("t-1", "success", T0)
    keep = Retention(seen_s=1e9, done_s=10, dead_s=100, completions_s=1e9)
    p = s.prune(keep, T0 + 50)
    assert (p.seen, p.done, p.dead, p.dead_letters, p.completions) == (0, 1, 0, 0, 0)
    assert {r.item_id for r in s.outbox_rows()} == {dead, pending}
    p = s.prune(Retention(seen_s=10, done_s=10, dead_s=100, completions_s=10), T0 + 101)
    assert (p.seen, p.dead, p.dead_letters, p.completions) == (4, 1, 1, 1)
    assert [r.item_id for r in s.outbox_rows()] == [pending]
    assert s.open_window_count() == 1 and s.seen_at("open") is None


def test_schema_migration_is_idempotent(make_store: StoreFactory) -> None:
    """Opening a store twice (two replicas starting) migrates once and keeps the data."""
    a = make_store("a")
    a.ingest(batch(contrib("e1")), T0)
    b = make_store("b")
    assert b.open_window_count() == 1 and b.seen_at("e1") == T0

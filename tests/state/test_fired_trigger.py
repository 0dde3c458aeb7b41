"""A fired window's trigger and outbox body, built by hand (state/core.py ``fired_trigger``),
equal byte for byte what the previous construction gave: pydantic's ``Trigger`` of the
same fields, the id hashed from ``json.dumps`` of its parts, the body from pydantic-core or
``json.dumps(t.wire())``. The previous construction is copied here as the reference."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scoperouter.messages.models import DEFAULT_DATE_FIELD, Trigger
from scoperouter.router.window_state import CAUSED_BY_CAP, trigger_id
from scoperouter.state.core import fired_trigger, fired_triggers, trigger_body
from scoperouter.state.merge import to_trigger
from scoperouter.state.model import WindowState


def reference_trigger_id(
    processor: str,
    day: date,
    scope: str,
    ids: tuple[str, ...] | None,
    caused_by: tuple[str, ...],
    caused_by_more: int = 0,
) -> str:
    """router/window_state.py ``trigger_id`` before it encoded the parts by hand."""
    parts: list[Any] = [
        processor,
        day.isoformat(),
        scope,
        list(ids) if ids is not None else None,
        list(caused_by),
    ]
    if caused_by_more:
        parts.append(caused_by_more)
    payload = json.JSONEncoder(separators=(",", ":")).encode(parts)
    return "t-" + hashlib.sha256(payload.encode("utf-8")).hexdigest()[:24]


def reference_trigger(w: WindowState, fired_at: datetime, date_field: str) -> Trigger:
    """The previous ``to_trigger`` (capped ``caused_by``, scope rules), validated."""
    every = sorted(w.caused_by)
    caused = tuple(every[:CAUSED_BY_CAP])
    more = max(0, len(every) - CAUSED_BY_CAP) + w.caused_more  # capped in the store too
    if w.entity_ids is None or not w.entity_ids:
        scope, ids, etype = "date", None, None
        reason = (w.date_reason if w.entity_ids is None else None) or "no_entities_in_event"
    else:
        scope, ids = "entities", tuple(sorted(w.entity_ids))
        reason, etype = "entity_scope", w.entity_type or None
    return Trigger(
        trigger_id=reference_trigger_id(w.processor, w.day, scope, ids, caused, more),
        processor=w.processor,
        game_date=w.day,
        start_date=w.day,
        end_date=w.day,
        scope=scope,
        entity_type=etype,
        entity_ids=ids,
        reason=reason,
        caused_by=caused,
        caused_by_more=more,
        correlation_id=w.correlation_id,
        priority=w.priority,
        fired_at=fired_at,
        date_field=date_field,
    )


def reference_body(t: Trigger) -> bytes:
    """state/core.py ``trigger_body`` (pydantic-core for the common printable shape)."""
    if t.date_field == DEFAULT_DATE_FIELD and not t.caused_by_more:
        body: bytes = t.__pydantic_serializer__.to_json(t)
        if body.isascii() and b"\x7f" not in body:
            return body
    return json.dumps(t.wire(), separators=(",", ":")).encode()


TEXT = st.text(max_size=12)  # any code point but lone surrogates: controls, DEL, non-ASCII
IDS = st.frozensets(TEXT, max_size=4)
CAUSED = st.one_of(
    st.frozensets(TEXT, max_size=5),
    st.integers(CAUSED_BY_CAP - 1, CAUSED_BY_CAP + 2).map(
        lambda n: frozenset(f"e-{i:05d}" for i in range(n))
    ),
)
WINDOWS = st.builds(
    WindowState,
    processor=TEXT,
    day=st.dates(),
    opened_at=st.just(1.0),
    last_at=st.just(2.0),
    entity_ids=st.none() | IDS,
    entity_type=TEXT,
    date_reason=st.none() | TEXT,
    caused_by=CAUSED,
    correlation_id=st.none() | TEXT,
    priority=st.sampled_from(["normal", "critical"]),
    quiet_s=st.just(0.0),
    max_wait_s=st.just(0.0),
    max_entities=st.just(100),
    caused_more=st.sampled_from([0, 0, 3]),
)
NOW = st.one_of(st.integers(0, 4_000_000_000).map(float), st.floats(0, 4e9))
DATE_FIELDS = st.sampled_from(["game_date", "business_date", "dé", 'date"\\x'])


@settings(max_examples=400, deadline=None)
@given(w=WINDOWS, now=NOW, date_field=DATE_FIELDS)
def test_fired_trigger_equals_the_previous_construction(
    w: WindowState, now: float, date_field: str
) -> None:
    """Same trigger (fields, set fields, id) and same body bytes as before, any window."""
    ref = reference_trigger(w, datetime.fromtimestamp(now, UTC), date_field)
    t, body = fired_trigger(w, now, date_field)
    assert t == ref and t.model_fields_set == ref.model_fields_set
    assert list(dict(t)) == list(dict(ref))
    assert body == reference_body(ref)
    assert to_trigger(w, ref.fired_at, date_field) == ref  # the in-memory book's builder


@settings(max_examples=150, deadline=None)
@given(ws=st.lists(WINDOWS, max_size=5), now=NOW, date_field=DATE_FIELDS)
def test_a_batch_of_fired_windows_equals_each_on_its_own(
    ws: list[WindowState], now: float, date_field: str
) -> None:
    """fired_triggers of several windows: the previous construction of each, in order,
    and its outbox row (trigger id, processor, body)."""
    triggers, rows = fired_triggers(ws, now, date_field)
    refs = [reference_trigger(w, datetime.fromtimestamp(now, UTC), date_field) for w in ws]
    assert triggers == refs
    assert [t.model_fields_set for t in triggers] == [r.model_fields_set for r in refs]
    assert rows == [(r.trigger_id, r.processor, reference_body(r)) for r in refs]


@settings(max_examples=300, deadline=None)
@given(
    processor=TEXT,
    day=st.dates(),
    scope=st.sampled_from(["date", "entities"]),
    ids=st.none() | st.lists(TEXT, max_size=4).map(tuple),
    caused=st.lists(TEXT, max_size=4).map(tuple),
    more=st.integers(0, 5),
)
def test_trigger_id_equals_the_previous_hash(
    processor: str,
    day: date,
    scope: str,
    ids: tuple[str, ...] | None,
    caused: tuple[str, ...],
    more: int,
) -> None:
    """trigger_id hashes the same bytes as json.dumps of its parts did."""
    got = trigger_id(processor, day, scope, ids, caused, more)
    assert got == reference_trigger_id(processor, day, scope, ids, caused, more)


@pytest.mark.parametrize(
    ("now", "same"),
    [
        (1_763_580_062.345678, True),  # the stamp of one batch is computed once
        (1_763_580_062.0, False),  # a whole second: pydantic writes no fraction
    ],
)
def test_one_batch_shares_its_fired_at(now: float, same: bool) -> None:
    """Two windows fired at one ``now`` carry the same fired_at, as pydantic writes it."""
    w = WindowState(
        "p", date(2025, 11, 19), 1.0, 2.0, None, "", "date_granularity",
        frozenset({"e1"}), None, "normal", 0.0, 0.0, 100,
    )  # fmt: skip
    a, body_a = fired_trigger(w, now, DEFAULT_DATE_FIELD)
    b, _ = fired_trigger(replace(w, processor="q"), now, DEFAULT_DATE_FIELD)
    assert a.fired_at is b.fired_at and a.fired_at == datetime.fromtimestamp(now, UTC)
    assert (b"." in body_a.split(b'"fired_at":')[1]) is same


@pytest.mark.parametrize("date_field", ["start_date", "caused_by_more", "fired_at"])
def test_a_date_key_shadowing_a_field_takes_the_long_way(date_field: str) -> None:
    """A date_field naming another field of the trigger is built as before (to_trigger and
    trigger_body), not by hand."""
    w = WindowState(
        "p", date(2025, 11, 19), 1.0, 2.0, frozenset({"a"}), "player", None,
        frozenset({"e1", "e2"}), "c", "critical", 0.0, 0.0, 100,
    )  # fmt: skip
    now = 1_763_580_062.5
    t, body = fired_trigger(w, now, date_field)
    old = to_trigger(w, datetime.fromtimestamp(now, UTC), date_field)
    assert t == old and body == trigger_body(old)


def test_key_parts_cache_stays_bounded_and_right() -> None:
    """The per-window-key encoded parts are evicted past their bound, and a key built
    again after that (or under another date field) gives the same bytes."""
    from scoperouter.state import core

    core._key_parts.cache_clear()
    bound = core._key_parts.cache_info().maxsize
    assert bound is not None
    w = WindowState("p", date(2025, 11, 19), 1.0, 2.0, None, "x", "r", frozenset({"e"}),
                    None, "normal", 0.0, 0.0, 100)  # fmt: skip
    first = {f: fired_trigger(w, 5.0, f)[1] for f in ("game_date", "business_date")}
    for i in range(bound + 20):
        fired_trigger(replace(w, processor=f"p{i}"), 5.0, "game_date")
        assert core._key_parts.cache_info().currsize <= bound
    for f, body in first.items():
        assert fired_trigger(w, 5.0, f)[1] == body
        ref = reference_trigger(w, datetime.fromtimestamp(5.0, UTC), f)
        assert body == reference_body(ref)

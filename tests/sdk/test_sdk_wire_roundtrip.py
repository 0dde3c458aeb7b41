"""Router <-> SDK on the wire: every trigger the router renders parses into exactly its scope,
and every completion the SDK publishes names its trigger and outcome as the closed loop
reads it (``completion_ref`` and the daemon's ``completion_of``)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from datetime import date, timedelta
from typing import Any

import aiohttp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sdk_fakes import REGISTRY, SOURCE, FakeClient, PulledMessage

from scoperouter.messages.models import Trigger
from scoperouter.messages.normalize import parse_event_bytes
from scoperouter.processor_registry.target_format import Shaper
from scoperouter.router.completion_ref import completion_ref
from scoperouter.router.ledger_book import LedgerBook
from scoperouter.router.loop_params import LoopParams
from scoperouter.runtime.http_sink import HttpSink
from scoperouter.runtime.loop_runtime import completion_of
from scoperouter.runtime.outcomes import Inbound
from scoperouter.runtime.payloads import trigger_bytes
from scoperouter.runtime.sinks import PubSubSink
from scoperouter.sdk import ChangeDetector, CompletionPublisher, Scope, parse_trigger

_ID = st.text("abcdefghijklmnopqrstuvwxyz0123456789-_.:", min_size=1, max_size=12)
_NAME = st.from_regex(r"[a-z_][a-z0-9_]{0,10}", fullmatch=True)
_DAY = st.dates(date(2000, 1, 1), date(2040, 12, 31))


@st.composite
def triggers(draw: st.DrawFn) -> Trigger:
    """Any trigger the router can fire (planner shapes: one date, sorted ids)."""
    day = draw(_DAY)
    entities = draw(st.booleans())
    ids = draw(st.lists(_ID, min_size=1, max_size=6, unique=True)) if entities else None
    return Trigger(
        trigger_id=draw(_ID),
        processor=draw(_NAME),
        game_date=day,
        start_date=day,
        end_date=day,
        scope="entities" if entities else "date",
        entity_type=draw(_NAME) if entities else None,
        entity_ids=tuple(sorted(ids)) if ids else None,
        reason=draw(st.sampled_from(["entity_scope", "date_granularity", "backfill"])),
        caused_by=tuple(draw(st.lists(_ID, max_size=3))),
        caused_by_more=draw(st.sampled_from([0, 0, 7])),
        correlation_id=draw(st.none() | _ID),
        priority=draw(st.sampled_from(["normal", "critical"])),
        date_field=draw(st.sampled_from(["game_date", "business_date", "analysis_date"])),
    )


class _Publisher:
    """Stands in for the sinks' shared Pub/Sub publisher: records what was published."""

    def __init__(self) -> None:
        self.sent: list[tuple[bytes, dict[str, str]]] = []

    async def publish(
        self,
        topic: str,
        data: bytes,
        attributes: dict[str, str],
        ordering: str | None,
        *,
        timeout_s: float | None = None,
    ) -> str:
        self.sent.append((data, dict(attributes)))
        return f"ps-{len(self.sent)}"


def _no_session() -> aiohttp.ClientSession:
    raise AssertionError("rendering a request opens no session")


def _http(shaper: Shaper | None) -> HttpSink:
    """An HTTP target (only its request rendering is used: nothing is sent)."""
    return HttpSink(
        "http://p.invalid/process", timeout_s=1, session_factory=_no_session, shaper=shaper
    )


def rendered(t: Trigger, how: str) -> object:
    """What the processor receives from a target of kind ``how``."""
    if how == "http_envelope":  # the default HTTP format: a push envelope
        return _http(None)._request(t, f"{t.trigger_id}-7", None)[0]
    if how == "http_trigger":  # format: trigger
        return _http(Shaper("trigger", None))._request(t, f"{t.trigger_id}-7", None)[0]
    if how == "outbox":
        return trigger_bytes(t)
    pub = _Publisher()
    sink = PubSubSink("projects/x/topics/p", publisher=pub)  # type: ignore[arg-type]
    mid = asyncio.run(sink.send(t, message_id="ignored"))
    ((data, attrs),) = pub.sent
    return PulledMessage(data, attrs, mid)


@settings(max_examples=150, deadline=None)
@given(triggers(), st.sampled_from(["http_envelope", "http_trigger", "outbox", "pubsub"]))
def test_every_rendered_trigger_parses_into_exactly_its_scope(t: Trigger, how: str) -> None:
    """Each target kind's rendering of a trigger parses into the trigger's ids, type and dates."""
    s = parse_trigger(rendered(t, how), expect_processor=t.processor)
    assert (s.scope, s.entity_type, s.entity_ids) == (t.scope, t.entity_type, t.entity_ids or ())
    assert s.dates == (t.game_date,) and s.game_date == t.game_date
    assert (s.trigger_id, s.processor, s.correlation_id, s.priority, s.caused_by) == (
        t.trigger_id,
        t.processor,
        t.correlation_id,
        t.priority,
        t.caused_by,
    )
    assert s.covers("not-an-id-of-the-trigger") is (t.scope == "date")


def _scope(t: Trigger) -> Scope:
    return parse_trigger(trigger_bytes(t))


def read_back(data: bytes, attrs: dict[str, str], mid: str, date_field: str = "game_date") -> Any:
    """The completion the daemon reads from one published message (``completion_of``), by a
    router whose registry keys the date by ``date_field`` (the trigger's)."""
    registry = dataclasses.replace(REGISTRY, date_field=date_field)
    inbound = Inbound("pubsub", data=data, message_id=mid, trigger_id=attrs.get("trigger_id"))
    try:
        parsed: Any = parse_event_bytes(data, registry, message_id=mid)
    except Exception as exc:  # a bare report is not an event
        parsed = exc
    return completion_of(inbound, parsed, registry)


_STATUS = st.sampled_from(["success", "partial", "no_data", "failed"])


@settings(max_examples=100, deadline=None)
@given(triggers(), _STATUS, st.lists(_ID, max_size=4), st.none() | st.text(max_size=600))
def test_every_report_names_its_trigger_and_outcome(
    t: Trigger, status: Any, missed: list[str], error: str | None
) -> None:
    """report() -> the router's completion reader: same trigger, outcome, missed ids, date."""
    client = FakeClient()
    pub = CompletionPublisher("done", source=SOURCE, project="x", client=client)
    pub.report(_scope(t), status, missed_entities=missed, error=error)
    ((data, attrs),) = client.sent
    ref = completion_ref(json.loads(data), date_field=t.date_field)
    assert ref is not None
    # missed ids make any status but failed a partial (the ledger closes a success)
    outcome = "partial" if missed and status != "failed" else status
    assert (ref.trigger_id, ref.outcome, ref.missed) == (
        t.trigger_id,
        outcome,
        tuple(sorted(set(missed))),
    )
    assert ref.day == t.game_date and ref.processor == t.processor
    assert ref.error == (error[:500] if error else None)
    assert read_back(data, attrs, "m-1", t.date_field) == ref


@settings(max_examples=100, deadline=None)
@given(triggers(), st.sampled_from(["success", "partial", "no_data", "failed"]))
def test_every_change_event_names_its_trigger_and_outcome(t: Trigger, status: Any) -> None:
    """publish(scope=...) -> the daemon's completion reader: the trigger and the status."""
    client = FakeClient()
    pub = CompletionPublisher("done", source=SOURCE, project="x", client=client)
    res = pub.publish(
        game_date=t.game_date,
        affected_entities={"players": ["a"]},
        changed_fields=["x"],
        scope=_scope(t),
        status=status,
    )
    ((data, attrs),) = client.sent
    ref = read_back(data, attrs, "m-1", t.date_field)
    assert ref is not None and (ref.trigger_id, ref.outcome) == (t.trigger_id, status)
    assert ref.event_id == res.event["event_id"]  # type: ignore[index]


# ------------------------------------------------------------------ partial runs


D = date(2025, 11, 19)


def _entity_trigger(tid: str = "t-1", ids: tuple[str, ...] = ("a", "b")) -> Trigger:
    return Trigger(
        trigger_id=tid,
        processor="p",
        game_date=D,
        start_date=D,
        end_date=D,
        scope="entities",
        entity_type="player",
        entity_ids=ids,
        reason="entity_scope",
    )


def _book() -> LedgerBook:
    return LedgerBook(lambda _p: LoopParams(1, None, None, backoff_base_s=10.0))


def test_change_event_of_a_partial_run_carries_its_missed_ids_to_the_loop() -> None:
    """A change event naming its trigger by attribute and its missed ids reads as partial + missed."""
    body = {
        "event_id": "e-1",
        "source": SOURCE,
        "game_date": D.isoformat(),
        "status": "partial",
        "affected_entities": {"players": ["a"]},
        "missed_entities": ["b"],
    }
    ref = read_back(json.dumps(body).encode(), {"trigger_id": "t-1"}, "m-1")
    assert (ref.trigger_id, ref.outcome, ref.missed) == ("t-1", "partial", ("b",))


@pytest.mark.parametrize("order", ["events_first", "report_first"])
def test_partial_run_that_published_changes_reruns_its_missed_ids(order: str) -> None:
    """Changed a, missed b: whichever of the run's messages arrives first, b is re-run."""
    t = _entity_trigger()
    scope = _scope(t)
    detector = ChangeDetector(SOURCE, "player")
    detector.observe(D, before={"a": {"x": 1}}, after={"a": {"x": 2}})
    client = FakeClient()
    pub = CompletionPublisher("done", source=SOURCE, project="x", client=client)
    pub.publish_detected(detector, scope, missed_entities=["b"])
    pub.report(scope, "partial", missed_entities=["b"])
    msgs = client.sent if order == "events_first" else client.sent[::-1]
    book = _book()
    book.open(t, 0.0)
    for i, (data, attrs) in enumerate(msgs):
        book.complete(read_back(data, attrs, f"m-{i}"), 1.0 + i)
    (rerun,) = book.due(1000.0)
    assert rerun.trigger.trigger_id == "t-1" and rerun.trigger.entity_ids == ("b",)


def test_report_of_a_trigger_without_id_names_the_message_it_came_in() -> None:
    """A mapped trigger with no trigger_id: the report names the Pub/Sub message id, so the
    router closes that trigger, not the oldest open one of the processor on the date."""
    first, second = _entity_trigger("t-1", ("a",)), _entity_trigger("t-2", ("b",))
    book = _book()
    book.open(first, 0.0)
    book.open(second, 0.0)
    book.alias("ps-2", "t-2", 0.5)  # the Pub/Sub id the second trigger was published with
    body = {"game_date": D.isoformat(), "entity_ids": ["b"], "entity_type": "player"}
    attrs = {"processor": "p", "game_date": D.isoformat(), "scope": "entities"}
    scope = parse_trigger(PulledMessage(json.dumps(body).encode(), attrs, "ps-2"))
    client = FakeClient()
    pub = CompletionPublisher("done", source=SOURCE, project="x", client=client)
    pub.report(scope, "failed", error="boom")
    ((data, rattrs),) = client.sent
    book.complete(read_back(data, rattrs, "m-9"), 1.0)
    assert book.get("t-2").phase == "backoff"  # type: ignore[union-attr]
    assert book.get("t-1").phase == "dispatched"  # type: ignore[union-attr]


def test_mapped_body_without_ids_under_an_entities_attribute_is_full_date() -> None:
    """A date-only body (a mapping that leaves the ids out) is the whole date, whatever the
    Pub/Sub attribute ``scope`` says: never a rejected trigger."""
    attrs = {"processor": "p", "game_date": D.isoformat(), "scope": "entities"}
    scope = parse_trigger(PulledMessage(json.dumps({"game_date": D.isoformat()}).encode(), attrs))
    assert scope.is_full_date and scope.dates == (D,) and scope.covers("anyone")


def test_dates_helper_spans_ranges() -> None:
    """A legacy range start..end parses into every date of the range (no collapse)."""
    scope = parse_trigger({"start_date": "2025-11-17", "end_date": "2025-11-19"})
    assert scope.dates == tuple(D - timedelta(days=n) for n in (2, 1, 0)) and scope.is_full_date


def test_change_event_of_a_trigger_without_id_names_the_message_it_came_in() -> None:
    """A mapped trigger's run that changed something: its event closes that trigger."""
    book = _book()
    book.open(_entity_trigger("t-1", ("a",)), 0.0)
    book.open(_entity_trigger("t-2", ("b",)), 0.0)
    book.alias("ps-2", "t-2", 0.5)
    body = {"game_date": D.isoformat(), "entity_ids": ["b"], "entity_type": "player"}
    attrs = {"processor": "p", "game_date": D.isoformat(), "scope": "entities"}
    scope = parse_trigger(PulledMessage(json.dumps(body).encode(), attrs, "ps-2"))
    client = FakeClient()
    pub = CompletionPublisher("done", source=SOURCE, project="x", client=client)
    pub.publish(game_date=D, affected_entities={"players": ["b"]}, scope=scope)
    ((data, rattrs),) = client.sent
    ref = read_back(data, rattrs, "m-9")
    assert ref is not None
    book.complete(ref, 1.0)
    assert book.get("t-2").phase == "succeeded"  # type: ignore[union-attr]
    assert book.get("t-1").phase == "dispatched"  # type: ignore[union-attr]

"""The SDK names the attempt: a run's change events and reports carry the message id its
trigger came in (``trigger_message_id``) next to the trigger id, and its change events' ids
derive from both (and, by default, the detection's nonce), so a re-dispatch's events are new
while a redelivery's are the same only with the run's ids alone (``attempt=""``)."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest
from sdk_fakes import REGISTRY, SOURCE, FakeClient, PulledMessage

from scoperouter.messages.models import Trigger
from scoperouter.messages.normalize import parse_event_bytes
from scoperouter.router.ledger_book import LedgerBook
from scoperouter.router.loop_params import LoopParams
from scoperouter.runtime.loop_runtime import completion_of
from scoperouter.runtime.outcomes import Inbound
from scoperouter.sdk import ChangeDetector, CompletionPublisher, Scope, parse_trigger
from scoperouter.sdk.change_detection import completion_event

D = date(2025, 11, 19)
TRIGGER = {
    "trigger_id": "t-1",
    "processor": "p",
    "game_date": D.isoformat(),
    "scope": "entities",
    "entity_type": "player",
    "entity_ids": ["a", "b"],
}


def received(message_id: str | None) -> Scope:
    """The trigger t-1 as its processor got it: in Pub/Sub message ``message_id``, or as a
    plain dict (no message id)."""
    if message_id is None:
        return parse_trigger(TRIGGER)
    return parse_trigger(PulledMessage(json.dumps(TRIGGER).encode(), {}, message_id))


def detector(changed: tuple[str, ...] = ("a",)) -> ChangeDetector:
    det = ChangeDetector(SOURCE, "player")
    det.observe(D, before={i: {"x": 1} for i in changed}, after={i: {"x": 2} for i in changed})
    return det


def published(scope: Scope, **kw: Any) -> list[tuple[bytes, dict[str, str]]]:
    client = FakeClient()
    CompletionPublisher("done", source=SOURCE, project="x", client=client).publish_detected(
        detector(), scope, **kw
    )
    return client.sent


def read_back(data: bytes, attrs: dict[str, str], mid: str) -> Any:
    """The completion the daemon reads from one published message (``completion_of``)."""
    inbound = Inbound("pubsub", data=data, message_id=mid, trigger_id=attrs.get("trigger_id"))
    try:
        parsed: Any = parse_event_bytes(data, REGISTRY, message_id=mid)
    except Exception as exc:  # a bare report is not an event
        parsed = exc
    return completion_of(inbound, parsed, REGISTRY)


def test_change_events_name_the_attempt_and_are_new_per_attempt() -> None:
    """Events carry trigger_message_id; with the run's ids alone (attempt="") a re-dispatch
    (new message id) gets new event ids, a redelivery the same; by default (the detection's
    nonce) a redelivery's detection is new too."""
    first, again, rerun = (published(received(m), attempt="") for m in ("ps-1", "ps-1", "ps-2"))
    ids = [[json.loads(d)["event_id"] for d, _a in sent] for sent in (first, again, rerun)]
    assert ids[0] == ids[1] and ids[0] != ids[2]
    default = [json.loads(published(received("ps-1"))[0][0])["event_id"] for _ in range(2)]
    assert default[0] != default[1] and ids[0][0] not in default
    assert [json.loads(d)["trigger_message_id"] for d, _a in first + rerun] == ["ps-1", "ps-2"]
    assert all(a["trigger_id"] == "t-1" for _d, a in first + rerun)


def test_without_a_message_id_each_run_gets_new_event_ids() -> None:
    """A trigger passed as a dict (no message id): each parse is a run of its own (new event ids, so a re-run is heard), its publishes the same ids; no message id is named."""
    run1, run2 = received(None), received(None)
    assert run1.run_nonce and run2.run_nonce and run1.run_nonce != run2.run_nonce
    ids = [
        [json.loads(d)["event_id"] for d, _a in published(s, attempt="")]
        for s in (run1, run1, run2)
    ]
    assert ids[0] == ids[1] and ids[0] != ids[2]
    ((data, _attrs),) = published(run1)
    assert "trigger_message_id" not in json.loads(data)
    built = Scope(**{**run1.model_dump(), "run_nonce": None})  # built by hand: as before
    ((data, _attrs),) = published(built, attempt="")
    old = completion_event(
        source=SOURCE,
        game_date=D,
        entity_type="player",
        changes=detector().changes[D],
        run_id="t-1",
    )
    assert old is not None and json.loads(data)["event_id"] == old["event_id"]


@pytest.mark.parametrize("kind", ["change_event", "report"])
def test_the_router_reads_the_trigger_and_the_attempt(kind: str) -> None:
    """A change event (trigger id as attribute) and a report both read as trigger t-1, message ps-1."""
    scope = received("ps-1")
    if kind == "change_event":
        ((data, attrs),) = published(scope)
    else:
        client = FakeClient()
        CompletionPublisher("done", source=SOURCE, project="x", client=client).report(
            scope, "partial", missed_entities=["b"]
        )
        ((data, attrs),) = client.sent
    ref = read_back(data, attrs, "c-1")
    assert ref is not None and (ref.trigger_id, ref.message_id) == ("t-1", "ps-1")


def test_a_rerun_republishing_the_same_changes_closes_its_trigger() -> None:
    """Attempt 1 reports b missed, its change events say success (stale: b is re-run); attempt 2 republishes the same change and closes the trigger."""
    book = LedgerBook(lambda _p: LoopParams(1, 600.0, None, backoff_base_s=10.0))
    book.open(
        Trigger.model_validate(
            {**TRIGGER, "start_date": D, "end_date": D, "reason": "entity_scope"}
        ),
        0.0,
    )
    book.alias("ps-1", "t-1", 0.5)
    one = received("ps-1")
    client = FakeClient()
    pub = CompletionPublisher("done", source=SOURCE, project="x", client=client)
    pub.report(one, "partial", missed_entities=["b"])
    pub.publish_detected(detector(), one)  # a producer that did not pass the missed ids
    for i, (data, attrs) in enumerate(client.sent):
        book.complete(read_back(data, attrs, f"c-{i}"), 1.0 + i)
    e = book.get("t-1")
    assert e is not None
    assert e.phase == "backoff", e.phase
    (rerun,) = book.due(100.0)
    assert rerun.trigger.entity_ids == ("b",)
    book.alias("ps-2", "t-1", 100.5)
    # the idempotent re-run finds nothing new and publishes the first run's change again
    ((data, attrs),) = published(received("ps-2"))
    book.complete(read_back(data, attrs, "c-9"), 101.0)
    e = book.get("t-1")
    assert e is not None
    assert e.phase == "succeeded", e.phase

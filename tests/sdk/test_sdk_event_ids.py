"""An SDK event id names one change of one run: the same run reporting the same change
repeats it (the router drops the copy as a redelivery), while a different change -- other
values, a row removed instead of rewritten -- gets another id, even in the same run (a
redelivered trigger whose upstream was corrected in between), so it is never deduplicated
away."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest
from sdk_fakes import FakeClient, PulledMessage

from scoperouter.sdk import ChangeDetector, CompletionPublisher, completion_event, diff_rows
from scoperouter.sdk.scope import parse_trigger

DAY = date(2025, 11, 19)
SOURCE = "nba_analytics.player_game_summary"
TRIGGER = json.dumps(
    {
        "trigger_id": "t-77",
        "processor": "player_game_summary",
        "game_date": "2025-11-19",
        "scope": "entities",
        "entity_type": "player",
        "entity_ids": ["lebronjames"],
    }
).encode()

Rows = dict[str, dict[str, Any]]


def _delivery_event(before: Rows, after: Rows) -> dict[str, Any]:
    """The event one delivery of trigger message m-77 publishes for ``before -> after``."""
    det = ChangeDetector(SOURCE, "player", ignore_fields=["processed_at"])
    det.observe(DAY, before, after)
    client = FakeClient()
    scope = parse_trigger(PulledMessage(TRIGGER, message_id="m-77"))
    CompletionPublisher("done", source=SOURCE, project="p", client=client).publish_detected(
        det,
        scope,
        attempt="",  # the run's ids alone (the default adds the detection's nonce)
    )
    [(data, _)] = client.sent
    event: dict[str, Any] = json.loads(data)
    return event


L = "lebronjames"


@pytest.mark.parametrize(
    ("first", "second", "same_id"),
    [
        pytest.param(
            ({L: {"points": 25}}, {L: {"points": 27}}),
            ({L: {"points": 25}}, {L: {"points": 27}}),
            True,
            id="identical-re-report",
        ),
        pytest.param(
            ({L: {"points": 25}}, {L: {"points": 27}}),
            ({L: {"points": 26}}, {L: {"points": 27}}),
            True,
            id="same-new-row",
        ),
        pytest.param(
            ({L: {"points": 25, "processed_at": 1}}, {L: {"points": 27, "processed_at": 2}}),
            ({L: {"points": 25, "processed_at": 1}}, {L: {"points": 27, "processed_at": 3}}),
            True,
            id="only-an-ignored-field-differs",
        ),
        pytest.param(
            ({L: {"points": 25}}, {L: {"points": 27}}),
            ({L: {"points": 27}}, {L: {"points": 30}}),
            False,
            id="upstream-corrected-in-between",
        ),
        pytest.param(
            ({L: {"points": 25}}, {L: {"points": 27}}),
            ({L: {"points": 27}}, {}),
            False,
            id="rewritten-then-removed",
        ),
        pytest.param(
            ({L: {"points": 25}}, {}),
            ({L: {"points": 26}}, {}),
            False,
            id="different-rows-removed",
        ),
    ],
)
def test_redelivered_trigger_ids_follow_the_change(
    first: tuple[Rows, Rows], second: tuple[Rows, Rows], same_id: bool
) -> None:
    """With the run's ids alone, two deliveries of one trigger message share an event id
    exactly when they report the same change (same entities, fields and new or removed rows)."""
    a, b = _delivery_event(*first), _delivery_event(*second)
    assert (a["event_id"] == b["event_id"]) is same_id


def _injury_event(old: str, new: str, **kwargs: Any) -> dict[str, Any] | None:
    return completion_event(
        source="nba_raw.nbac_injury_report",
        game_date=DAY,
        entity_type="player",
        changes=diff_rows({L: {"injury_status": old}}, {L: {"injury_status": new}}),
        **kwargs,
    )


@pytest.mark.parametrize(
    ("first", "second", "kwargs", "same_id"),
    [
        pytest.param(
            ("questionable", "out"), ("out", "questionable"), {}, False, id="Q-O-then-O-Q"
        ),
        pytest.param(("questionable", "out"), ("questionable", "out"), {}, False, id="no-run-id"),
        pytest.param(
            ("questionable", "out"), ("questionable", "out"), {"run_id": "r"}, True, id="one-run"
        ),
        pytest.param(
            ("questionable", "out"), ("out", "questionable"), {"run_id": "r"}, False, id="one-run-2"
        ),
    ],
)
def test_completion_event_ids(
    first: tuple[str, str], second: tuple[str, str], kwargs: dict[str, Any], same_id: bool
) -> None:
    """completion_event without a run_id takes a random nonce (each call a new event); with
    one, the id is the run's and the change's."""
    a, b = _injury_event(*first, **kwargs), _injury_event(*second, **kwargs)
    assert a is not None and b is not None
    assert (a["event_id"] == b["event_id"]) is same_id


@pytest.mark.parametrize(
    ("attempts", "same_id"),
    [
        # the default is the detection's nonce: a redelivery (a new detector) is a new event
        pytest.param((None, None), False, id="redelivery"),
        pytest.param(("", ""), True, id="run-ids-alone"),
        pytest.param(("a1", "a1"), True, id="one-attempt-retrying-its-publish"),
        pytest.param(("a1", "a2"), False, id="two-attempts"),
        pytest.param(("", "a2"), False, id="plain-then-attempt"),
    ],
)
def test_attempt_gives_each_attempt_its_ids(
    attempts: tuple[str | None, str | None], same_id: bool
) -> None:
    """publish_detected adds the attempt (default: the detection's nonce) to the run id: the
    same change reported by two detections of one trigger message gets two ids (both routed:
    a flip-flop or a failed commit in between is never dropped), by one attempt one."""
    ids = []
    for attempt in attempts:
        det = ChangeDetector(SOURCE, "player")
        det.observe(DAY, {L: {"points": 25}}, {L: {"points": 27}})
        client = FakeClient()
        scope = parse_trigger(PulledMessage(TRIGGER, message_id="m-77"))
        CompletionPublisher("done", source=SOURCE, project="p", client=client).publish_detected(
            det, scope, attempt=attempt
        )
        [(data, _)] = client.sent
        ids.append(json.loads(data)["event_id"])
    assert (ids[0] == ids[1]) is same_id


def test_detected_events_are_what_publish_detected_sends() -> None:
    """detected_events (for an outbox) builds the events publish_detected sends with the
    detection's nonce as its attempt: the same ids, and publish_event with the trigger's
    scope publishes them as publish_detected does."""
    sent = []
    det = ChangeDetector(SOURCE, "player")
    det.observe(DAY, {L: {"points": 25}}, {L: {"points": 27}})
    for outbox in (False, True):
        client = FakeClient()
        scope = parse_trigger(PulledMessage(TRIGGER, message_id="m-77"))
        publisher = CompletionPublisher("done", source=SOURCE, project="p", client=client)
        if outbox:
            stored = json.loads(json.dumps(publisher.detected_events(det, scope)))
            for event in stored:
                publisher.publish_event(event, scope=scope)
        else:
            publisher.publish_detected(det, scope, attempt=det.run_nonce)
        [(data, attrs)] = client.sent
        event = json.loads(data)
        del event["produced_at"]
        sent.append((event, attrs))
    assert sent[0] == sent[1]


@pytest.mark.parametrize(
    ("detections", "same_id"),
    [
        pytest.param(1, True, id="one-detection-republished"),
        pytest.param(2, False, id="two-detections-of-one-change"),
    ],
)
def test_outbox_ids_are_per_detection(detections: int, same_id: bool) -> None:
    """detected_events draws each detection's ids from its own nonce: asked twice of one
    detector (a stored event republished) the same ids, of two detectors of the same change
    under one trigger message (a redelivery after an upstream flip-flop) distinct ones."""
    scope = parse_trigger(PulledMessage(TRIGGER, message_id="m-77"))
    publisher = CompletionPublisher("done", source=SOURCE, project="p", client=FakeClient())
    dets = [ChangeDetector(SOURCE, "player") for _ in range(detections)]
    for det in dets:
        det.observe(DAY, {L: {"points": 25}}, {L: {"points": 27}})
    ids = [publisher.detected_events(dets[i % detections], scope)[0]["event_id"] for i in (0, 1)]
    assert (ids[0] == ids[1]) is same_id

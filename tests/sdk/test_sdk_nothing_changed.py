"""What "nothing changed" is to the publisher: only the SDK's own change detection saying so
(an empty :class:`EntityChanges`: ``completion_event`` -> None, ``ChangeDetector.events`` ->
[]). A caller-built event is always published: the router routes every one of them (SPEC
section 2: an empty or missing ``changed_fields`` is unknown, relevant; section 3: an empty
entity list is no entity information, date scope)."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from sdk_fakes import REGISTRY, FakeClient

from scoperouter.messages.normalize import parse_event_bytes
from scoperouter.router.planner import plan
from scoperouter.sdk import ChangeDetector, CompletionPublisher, EntityChanges, completion_event

DAY = date(2025, 11, 19)
SOURCE = "raw.a"  # the input of the registry's one processor, p


def _publisher(client: FakeClient) -> CompletionPublisher:
    return CompletionPublisher("projects/p/topics/t", source=SOURCE, client=client)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"affected_entities": {"players": []}, "changed_fields": ["points"]},
        {"affected_entities": {"players": []}},
        {"affected_entities": {"players": []}, "changed_fields": []},
        {"affected_entities": {}},
        {"affected_entities": None, "changed_fields": []},
        {"affected_entities": None, "changed_fields": ["points"]},
    ],
)
def test_a_caller_built_success_is_always_published(kwargs: dict[str, Any]) -> None:
    """An empty entity list or changed_fields is published, and the router runs its reader for the date."""
    client = FakeClient()
    res = _publisher(client).publish(game_date=DAY, **kwargs)
    assert (res.published, res.reason, len(client.sent)) == (True, "published", 1)
    [(data, _)] = client.sent
    event = parse_event_bytes(data, REGISTRY)
    decisions = plan(REGISTRY, {}, event, DAY)
    assert [(d.processor, d.action, d.scope) for d in decisions] == [("p", "run", "date")]


@pytest.mark.parametrize(
    "publish",
    [
        lambda pub, det: pub.publish_detected(det),
        lambda pub, det: [pub.publish_event(e) for e in pub.detected_events(det)],
        lambda pub, det: [
            pub.publish_event(
                completion_event(
                    source=SOURCE,
                    game_date=DAY,
                    entity_type="player",
                    changes=EntityChanges((), ()),
                )
            )
        ],
    ],
)
def test_a_detection_that_found_no_change_publishes_nothing(publish: Any) -> None:
    """No differing row: no event (publish_event(None) is the detection's "nothing changed")."""
    det = ChangeDetector(SOURCE, "player")
    det.observe(DAY, before={"a": {"points": 1}}, after={"a": {"points": 1}})
    client = FakeClient()
    results = publish(_publisher(client), det)
    assert client.sent == []
    assert all((r.published, r.reason) == (False, "nothing_changed") for r in results)

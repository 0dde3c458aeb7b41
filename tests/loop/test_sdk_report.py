"""The SDK's bare completion report: what a processor publishes when a run changed nothing,
failed, or missed entities; the router reads it as a completion of that trigger."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest

from scoperouter.router.completion_ref import completion_ref, is_report_only
from scoperouter.sdk import CompletionPublisher
from scoperouter.sdk.scope import Scope


class _Future:
    def result(self, timeout: float | None = None) -> str:
        return "m-1"


class FakeClient:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, dict[str, str]]] = []

    def publish(self, topic: str, data: bytes, **attrs: str) -> _Future:
        self.sent.append((topic, data, attrs))
        return _Future()


SCOPE = Scope(
    scope="entities",
    start_date=date(2025, 11, 19),
    end_date=date(2025, 11, 19),
    game_date=date(2025, 11, 19),
    entity_type="player",
    entity_ids=("a", "b"),
    processor="p",
    trigger_id="t-1",
)


@pytest.mark.parametrize(
    ("kwargs", "outcome", "missed", "error"),
    [
        ({}, "success", (), None),
        ({"status": "failed", "error": "disk full"}, "failed", (), "disk full"),
        ({"status": "partial", "missed_entities": ["b"]}, "partial", ("b",), None),
    ],
)
def test_report_is_a_completion_of_its_trigger(
    kwargs: dict[str, Any], outcome: str, missed: tuple[str, ...], error: str | None
) -> None:
    """The report names the trigger (body and attribute), no source, and reads back."""
    client = FakeClient()
    pub = CompletionPublisher("done", source="an.p", project="proj", client=client)
    pub.report(SCOPE, **kwargs)
    ((_topic, data, attrs),) = client.sent
    raw = json.loads(data)
    assert attrs["trigger_id"] == "t-1" and is_report_only(raw)
    ref = completion_ref(raw)
    assert ref is not None
    assert (ref.trigger_id, ref.outcome, ref.missed, ref.error, ref.processor) == (
        "t-1",
        outcome,
        missed,
        error,
        "p",
    )

"""Shared in-memory stand-ins of the SDK's wire tests (test_sdk_wire_roundtrip.py,
test_sdk_attempts.py): a one-processor registry whose processor publishes ``SOURCE``, a
pulled Pub/Sub message, and (from tests/pubsub_fakes.py, shared with tests/loop) a
PublisherClient that keeps what was published.

Not a test module: no fixtures and no assertions here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pubsub_fakes import FakeClient
from scoperouter.processor_registry.compiled import compile_registry
from scoperouter.processor_registry.models import RoutesSpec

SOURCE = "an.p"


def one_processor_registry(name: str, inp: dict[str, object], publishes: str | None = None) -> Any:
    """A compiled registry of one player processor ``name`` reading ``inp`` (an input)."""
    proc: dict[str, object] = {"phase": 3, "granularity": "player", "inputs": [inp]}
    if publishes is not None:
        proc["publishes"] = publishes
    spec = {"version": 1, "entities": {"player": {}}, "processors": {name: proc}}
    return compile_registry(RoutesSpec.model_validate(spec))


REGISTRY = one_processor_registry("p", {"source": "raw.a"}, publishes=SOURCE)


@dataclass
class PulledMessage:
    """The shape of a pulled ``google.cloud.pubsub_v1`` message."""

    data: bytes
    attributes: dict[str, str] = field(default_factory=dict)
    message_id: str = ""


__all__ = ["REGISTRY", "SOURCE", "FakeClient", "PulledMessage", "one_processor_registry"]

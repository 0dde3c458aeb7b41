"""Shared in-memory stand-ins of the SDK's wire tests (test_sdk_wire_roundtrip.py,
test_sdk_attempts.py): a one-processor registry whose processor publishes ``SOURCE``, a
pulled Pub/Sub message, and (from tests/pubsub_fakes.py, shared with tests/loop) a
PublisherClient that keeps what was published.

Not a test module: no fixtures and no assertions here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pubsub_fakes import FakeClient
from scoperouter.processor_registry.compiled import compile_registry
from scoperouter.processor_registry.models import RoutesSpec

SOURCE = "an.p"
REGISTRY = compile_registry(
    RoutesSpec.model_validate(
        {
            "version": 1,
            "entities": {"player": {}},
            "processors": {
                "p": {
                    "phase": 3,
                    "granularity": "player",
                    "inputs": [{"source": "raw.a"}],
                    "publishes": SOURCE,
                }
            },
        }
    )
)


@dataclass
class PulledMessage:
    """The shape of a pulled ``google.cloud.pubsub_v1`` message."""

    data: bytes
    attributes: dict[str, str] = field(default_factory=dict)
    message_id: str = ""


__all__ = ["REGISTRY", "SOURCE", "FakeClient", "PulledMessage"]

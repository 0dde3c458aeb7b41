"""Shared in-memory stand-ins of the SDK's wire tests (test_sdk_wire_roundtrip.py,
test_sdk_attempts.py): a one-processor registry whose processor publishes ``SOURCE``, a
pulled Pub/Sub message, and a PublisherClient that keeps what was published.

Not a test module: no fixtures and no assertions here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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


class PublishFuture:
    """A publish's future, already answered with its message id."""

    def __init__(self, mid: str) -> None:
        self.mid = mid

    def result(self, timeout: float | None = None) -> str:
        return self.mid


class FakeClient:
    """A PublisherClient that keeps what was published (message ids c-1, c-2, ...)."""

    def __init__(self) -> None:
        self.sent: list[tuple[bytes, dict[str, str]]] = []

    def publish(self, topic: str, data: bytes, **attrs: str) -> PublishFuture:
        self.sent.append((data, attrs))
        return PublishFuture(f"c-{len(self.sent)}")

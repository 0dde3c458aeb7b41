"""An in-memory Pub/Sub PublisherClient for tests that publish through the SDK (tests/sdk,
tests/loop): it keeps what was published and answers each publish with message ids
c-1, c-2, ...

Not a test module: no fixtures and no assertions here.
"""

from __future__ import annotations


class PublishFuture:
    """A publish's future, already answered with its message id."""

    def __init__(self, mid: str) -> None:
        self.mid = mid

    def result(self, timeout: float | None = None) -> str:
        return self.mid


class FakeClient:
    """A PublisherClient that keeps what was published (message ids c-1, c-2, ...); the
    publish calls numbered in ``fail_on`` (1-based, over every call) raise instead."""

    def __init__(self, fail_on: tuple[int, ...] = ()) -> None:
        self.sent: list[tuple[bytes, dict[str, str]]] = []
        self.attempts = 0
        self.fail_on = fail_on

    def publish(self, topic: str, data: bytes, **attrs: str) -> PublishFuture:
        self.attempts += 1
        if self.attempts in self.fail_on:
            raise RuntimeError("publish failed")
        self.sent.append((data, attrs))
        return PublishFuture(f"c-{len(self.sent)}")

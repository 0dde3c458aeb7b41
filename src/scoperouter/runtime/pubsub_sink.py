"""The Pub/Sub sink: publish a trigger with attributes ``processor``, the date (keyed by the
registry's ``date_field``), ``scope``, ``trigger_id`` (dedupe key, whatever the data
carries) and an ordering key per processor and date, through one shared publisher client.

Invariant: a message Pub/Sub would refuse (too many or too long attributes, an ordering key
or a whole publish request over its limits, counted as the client library counts it) is a
local, permanent refusal -- a non-retryable :class:`DispatchError`, raised before anything
is sent and never retried; ``send`` returns the message id Pub/Sub assigned. A publish
that Pub/Sub does not confirm within the target's ``timeout`` is a retryable failure
(``timeout``): the client library, whose ordered publisher retries a publish without end,
never holds a dispatch slot longer than that, and the circuit breaker hears of an
unreachable Pub/Sub in ``timeout``. The library may still deliver that message later (a
duplicate of the retry: dedupe on the ``trigger_id`` attribute). Whether a publish was
confirmed in time is read from the client library's future at the deadline: one confirmed
in time whose news reached a stalled event loop late is sent, never retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
from collections.abc import Mapping
from typing import Any

from scoperouter.errors import DispatchError
from scoperouter.messages.models import Trigger
from scoperouter.runtime.payloads import ordering_key, trigger_attributes, trigger_bytes

# Pub/Sub quotas (https://cloud.google.com/pubsub/quotas#resource_limits)
MAX_ATTRIBUTES = 100
MAX_ATTRIBUTE_KEY_BYTES = 256
MAX_ATTRIBUTE_VALUE_BYTES = 1024
MAX_ORDERING_KEY_BYTES = 1024
# a publish request (topic, data, attributes, ordering key), as google-cloud-pubsub checks
# it before sending (publisher/_batch/thread.py _SERVER_PUBLISH_MAX_BYTES)
MAX_MESSAGE_BYTES = 10_000_000


def _varint_bytes(n: int) -> int:
    size = 1
    while n >= 0x80:
        n >>= 7
        size += 1
    return size


def _field_bytes(n: int, *, always: bool = False) -> int:
    """A length-delimited protobuf field of ``n`` bytes (tag, length, bytes); proto3 leaves
    an empty one out, except in a map entry."""
    return 1 + _varint_bytes(n) + n if n or always else 0


def publish_request_bytes(
    topic: str, data: bytes, attributes: Mapping[str, str], ordering: str | None
) -> int:
    """The size of the Pub/Sub ``PublishRequest`` carrying this one message: what the client
    library compares with :data:`MAX_MESSAGE_BYTES` (it raises ``MessageTooLargeError``)."""
    msg = _field_bytes(len(data))
    for k, v in attributes.items():  # map entries carry both key and value, even empty
        entry = _field_bytes(len(k.encode()), always=True) + _field_bytes(
            len(v.encode()), always=True
        )
        msg += _field_bytes(entry, always=True)
    msg += _field_bytes(len((ordering or "").encode()))
    return _field_bytes(len(topic.encode())) + _field_bytes(msg, always=True)


def check_pubsub_limits(
    data: bytes,
    attributes: Mapping[str, str],
    ordering: str | None,
    *,
    processor: str,
    target: str,
    topic: str = "",
) -> None:
    """Raise a non-retryable DispatchError when Pub/Sub would refuse the message (to
    ``topic``: its name counts towards the request size)."""

    def fail(why: str) -> DispatchError:
        return DispatchError(processor, target, why, retryable=False, local=True)

    if len(attributes) > MAX_ATTRIBUTES:
        raise fail(f"{len(attributes)} attributes (max {MAX_ATTRIBUTES})")
    for k, v in attributes.items():
        if len(k.encode()) > MAX_ATTRIBUTE_KEY_BYTES:
            raise fail(f"attribute key {k[:40]!r}... exceeds {MAX_ATTRIBUTE_KEY_BYTES} bytes")
        if len(v.encode()) > MAX_ATTRIBUTE_VALUE_BYTES:
            raise fail(f"attribute {k!r} exceeds {MAX_ATTRIBUTE_VALUE_BYTES} bytes")
    if ordering is not None and len(ordering.encode()) > MAX_ORDERING_KEY_BYTES:
        raise fail(f"ordering key exceeds {MAX_ORDERING_KEY_BYTES} bytes")
    size = publish_request_bytes(topic, data, attributes, ordering)
    if size > MAX_MESSAGE_BYTES:
        raise fail(
            f"publish request of {size} bytes (data {len(data)}) exceeds {MAX_MESSAGE_BYTES}"
        )


def topic_path(topic: str, project: str | None) -> str:
    if topic.startswith("projects/"):
        return topic
    proj = project or os.environ.get("GOOGLE_CLOUD_PROJECT") or os.environ.get("PUBSUB_PROJECT_ID")
    if not proj:
        raise ValueError(
            f"topic {topic!r} needs a project: set target.pubsub.project, use "
            "projects/P/topics/T, or set GOOGLE_CLOUD_PROJECT"
        )
    return f"projects/{proj}/topics/{topic}"


class PublishUnconfirmed(Exception):
    """Pub/Sub did not confirm a publish within its sender's deadline (a retryable failure;
    the client library may still deliver the message later)."""

    def __init__(self, timeout_s: float) -> None:
        super().__init__(f"not confirmed within {timeout_s:g}s")
        self.timeout_s = timeout_s


class PubSubPublisher:
    """One shared google-cloud-pubsub PublisherClient (message ordering enabled), created
    lazily; honours PUBSUB_EMULATOR_HOST."""

    def __init__(self) -> None:
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            pubsub_v1: Any = importlib.import_module("google.cloud.pubsub_v1")

            self._client = pubsub_v1.PublisherClient(
                publisher_options=pubsub_v1.types.PublisherOptions(enable_message_ordering=True),
                batch_settings=pubsub_v1.types.BatchSettings(max_latency=0.005, max_messages=100),
            )
        return self._client

    async def publish(
        self,
        topic: str,
        data: bytes,
        attributes: Mapping[str, str],
        ordering: str | None,
        *,
        timeout_s: float | None = None,
    ) -> str:
        """Publish and wait for Pub/Sub's message id; with ``timeout_s``, raise
        :class:`PublishUnconfirmed` when it has not confirmed the publish by then. Whether it
        has is read from the client's own future when the deadline comes, not from the
        event loop's copy: a loop that stalled past the deadline hears of a confirmation
        late, and a publish confirmed in time is sent, not failed and published again."""
        kwargs: dict[str, Any] = dict(attributes)
        if ordering:
            kwargs["ordering_key"] = ordering
        client = self.client
        try:
            # (inside the try: a key paused by a publish that failed after its sender gave
            # up waiting, its timeout, refuses at once, and is resumed below)
            fut = client.publish(topic, data, **kwargs)
            waiting = asyncio.wrap_future(fut)
            if timeout_s is not None:
                # asyncio.wait, not asyncio.timeout: the deadline never cancels this task,
                # which would throw into it even after the confirmation had arrived
                await asyncio.wait((waiting,), timeout=timeout_s)
                if not waiting.done():
                    waiting.cancel()
                    if fut.done() and not fut.cancelled():  # the loop had not heard yet
                        failed = fut.exception()
                        if failed is not None:
                            raise failed  # the publish's own outcome, not a timeout
                        return str(fut.result())  # confirmed in time: sent
                    raise PublishUnconfirmed(timeout_s)
            mid: str = await waiting
        except BaseException:  # failed, unconfirmed, or cancelled (a stop)
            if ordering:
                # a failed ordered publish pauses its key until resumed
                with contextlib.suppress(Exception):
                    client.resume_publish(topic, ordering)
            raise
        return mid

    def close(self) -> None:
        if self._client is not None:
            with contextlib.suppress(Exception):
                self._client.stop()
            self._client = None


DEFAULT_TIMEOUT_S = 60.0  # target.pubsub.timeout's default


class PubSubSink:
    def __init__(
        self,
        topic: str,
        *,
        publisher: PubSubPublisher,
        ordering: bool = True,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        self.topic = topic
        self.name = f"pubsub:{topic}"
        self._publisher = publisher
        self._ordering = ordering
        # the longest wait for Pub/Sub's confirmation of one publish (target.pubsub.timeout):
        # with message ordering the client library itself retries a publish for ever
        self.timeout_s = timeout_s

    async def send(self, trigger: Trigger, *, message_id: str, body: bytes | None = None) -> str:
        """Publish ``trigger``; returns the message id Pub/Sub assigned (the processor's
        ``trigger_message_id``: the closed loop records it against the trigger)."""
        data = body or trigger_bytes(trigger)
        attrs = trigger_attributes(trigger)
        key = ordering_key(trigger) if self._ordering else None
        check_pubsub_limits(
            data, attrs, key, processor=trigger.processor, target=self.name, topic=self.topic
        )
        try:
            return await self._publisher.publish(
                self.topic, data, attrs, key, timeout_s=self.timeout_s
            )
        except PublishUnconfirmed:
            raise DispatchError(
                trigger.processor,
                self.name,
                f"timeout: Pub/Sub did not confirm the publish within {self.timeout_s:g}s",
                trigger_id=trigger.trigger_id,
            ) from None
        except Exception as exc:
            if type(exc).__name__ == "MessageTooLargeError":  # the client's own size check
                raise DispatchError(
                    trigger.processor,
                    self.name,
                    f"{type(exc).__name__}: {exc}",
                    retryable=False,
                    trigger_id=trigger.trigger_id,
                    local=True,
                ) from exc
            raise DispatchError.from_exception(
                trigger.processor, self.name, exc, trigger_id=trigger.trigger_id
            ) from exc

    async def close(self) -> None:
        return None

"""Pub/Sub's size limit is the publish request's: 10 MB counting the topic, the attributes
and the ordering key with the data, as google-cloud-pubsub counts it before it refuses a
message (``MessageTooLargeError``, raised by ``publish`` itself). A trigger that Pub/Sub
would refuse is a local, permanent refusal (dead-lettered at once, the breaker untouched),
never a "retryable" failure retried for the whole horizon against a target that is up."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scoperouter.errors import DispatchError
from scoperouter.messages.models import Trigger
from scoperouter.runtime.sinks import PubSubSink, ordering_key, trigger_attributes

TOPIC = "projects/nba-props-platform/topics/nba-phase3-trigger"
LIMIT = 10_000_000  # google.cloud.pubsub_v1.publisher._batch.thread._SERVER_PUBLISH_MAX_BYTES
DAY = date(2025, 11, 19)
TRIGGER = Trigger(
    trigger_id="t-1", processor="player_game_summary", game_date=DAY, start_date=DAY,
    end_date=DAY, scope="entities", entity_type="player", entity_ids=("lebronjames",),
    reason="entity_scope",
)  # fmt: skip


def client_request_bytes(
    topic: str, data: bytes, attributes: Mapping[str, str], ordering: str | None
) -> int:
    """The size the client library checks: its PublishRequest protobuf with this message."""
    from google.pubsub_v1 import types

    msg = types.PubsubMessage(data=data, attributes=dict(attributes), ordering_key=ordering or "")
    return int(types.PublishRequest(topic=topic, messages=[msg])._pb.ByteSize())


class ClientLike:
    """A publisher that refuses as google-cloud-pubsub's ``publish`` does (synchronously,
    before anything is sent) and otherwise records what it published."""

    def __init__(self) -> None:
        self.published: list[int] = []

    async def publish(
        self,
        topic: str,
        data: bytes,
        attributes: Mapping[str, str],
        ordering: str | None,
        *,
        timeout_s: float | None = None,
    ) -> str:
        from google.cloud.pubsub_v1.publisher.exceptions import MessageTooLargeError

        if client_request_bytes(topic, data, attributes, ordering) > LIMIT:
            raise MessageTooLargeError("too large a publish request")
        self.published.append(len(data))
        return "mid-1"


def _data_of(n: int) -> bytes:
    return b"x" * n


@pytest.mark.parametrize("slack", [0, 1, 60, 150])
async def test_a_message_the_client_refuses_is_a_local_permanent_refusal(slack: int) -> None:
    """Data at or just under 10 MB whose request (topic, attributes, key) exceeds it: refused locally and permanently, never published or retried."""
    sink = PubSubSink(TOPIC, publisher=ClientLike())  # type: ignore[arg-type]
    data = _data_of(LIMIT - slack)
    assert (
        client_request_bytes(TOPIC, data, trigger_attributes(TRIGGER), ordering_key(TRIGGER))
        > LIMIT
    )
    with pytest.raises(DispatchError) as exc:
        await sink.send(TRIGGER, message_id="m", body=data)
    assert (exc.value.retryable, exc.value.local) == (False, True)
    assert "exceeds" in exc.value.detail


async def test_a_message_within_the_request_limit_is_published() -> None:
    """The largest data whose request fits is published (the check is not stricter than Pub/Sub's)."""
    pub = ClientLike()
    sink = PubSubSink(TOPIC, publisher=pub)  # type: ignore[arg-type]
    attrs, key = trigger_attributes(TRIGGER), ordering_key(TRIGGER)
    n = LIMIT - (client_request_bytes(TOPIC, b"x" * (LIMIT - 300), attrs, key) - (LIMIT - 300))
    assert client_request_bytes(TOPIC, _data_of(n), attrs, key) == LIMIT
    assert await sink.send(TRIGGER, message_id="m", body=_data_of(n)) == "mid-1"
    assert pub.published == [n]


async def test_the_clients_own_refusal_is_permanent() -> None:
    """Should the client refuse a message as too large anyway, that is a local permanent refusal too."""

    class Refusing:
        async def publish(self, *args: Any, **kwargs: Any) -> str:
            from google.cloud.pubsub_v1.publisher.exceptions import MessageTooLargeError

            raise MessageTooLargeError("too large a publish request")

    sink = PubSubSink(TOPIC, publisher=Refusing())  # type: ignore[arg-type]
    with pytest.raises(DispatchError) as exc:
        await sink.send(TRIGGER, message_id="m", body=b"{}")
    assert (exc.value.retryable, exc.value.local) == (False, True)


_text = st.text(max_size=40)


@given(
    topic=_text,
    size=st.integers(0, 70_000),
    attributes=st.dictionaries(_text, _text, max_size=4),
    ordering=st.none() | _text,
)
def test_the_request_size_is_the_client_librarys(
    topic: str, size: int, attributes: dict[str, str], ordering: str | None
) -> None:
    """publish_request_bytes is exactly the client's PublishRequest size (varint lengths included)."""
    from scoperouter.runtime.pubsub_sink import publish_request_bytes

    data = _data_of(size)
    assert publish_request_bytes(topic, data, attributes, ordering) == client_request_bytes(
        topic, data, attributes, ordering
    )

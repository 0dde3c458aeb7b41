"""The Pub/Sub push envelope, parsed once for the router and the SDK.

``{"message": {"data": <base64>, "attributes": {...}, "messageId": ...}, "subscription": ...}``
is what Pub/Sub push subscriptions POST, what the router's HTTP targets send, and what the
router's own ``/events`` endpoint accepts. Invariant: :func:`parse_push_envelope` is pure
and never raises for a bad ``data`` field -- it reports the problem as a value
(:attr:`PushMessage.problem`), because the router dead-letters such a message (Pub/Sub
redelivers anything not acked) while the SDK rejects it; a message that is not an object,
or a ``messageId`` of the wrong type, raises :class:`PushEnvelopeError`.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from scoperouter.messages.event_fields import encodable

Problem = Literal["no_data", "data_not_string", "bad_base64"]

PROBLEM_TEXT: dict[Problem, str] = {
    "no_data": "push message without data",
    "data_not_string": "push message.data is not a string",
    "bad_base64": "push message.data is not valid base64",
}

_MESSAGE_KEYS = ("data", "messageId", "message_id", "attributes")
MAX_SUBSCRIPTION_CHARS = 300  # "projects/<30>/subscriptions/<255>" and some room


class PushEnvelopeError(ValueError):
    """The envelope's structure is wrong (not its data)."""


@dataclass(frozen=True, slots=True)
class PushMessage:
    """One pushed message. ``data`` is the decoded payload (None when ``problem``)."""

    data: bytes | None
    attributes: object  # as received: a mapping of strings, or anything (validate on use)
    message_id: str | None
    problem: Problem | None
    recognisable: bool  # has a subscription name or a message id: really from Pub/Sub

    def attribute(self, key: str) -> str | None:
        return attribute(self.attributes, key)


def is_push_envelope(obj: object) -> bool:
    """A push envelope has a ``message`` object carrying Pub/Sub message keys (a plain
    event or trigger with a ``message`` string field is not one)."""
    if not isinstance(obj, Mapping):
        return False
    message = obj.get("message")
    return isinstance(message, Mapping) and any(k in message for k in _MESSAGE_KEYS)


def parse_push_envelope(obj: Mapping[Any, Any]) -> PushMessage:
    """The message of a push envelope (see the module docstring for what raises)."""
    msg = obj.get("message")
    if not isinstance(msg, Mapping):
        raise PushEnvelopeError("message must be an object")
    mid = msg.get("messageId", msg.get("message_id"))
    if mid is not None and not isinstance(mid, str | int):
        raise PushEnvelopeError("message.messageId must be a string")
    data = msg.get("data")
    problem: Problem | None = None
    raw: bytes | None = None
    if data is None:
        problem = "no_data"
    elif not isinstance(data, str):
        problem = "data_not_string"
    else:
        try:
            raw = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            problem = "bad_base64"
    recognisable = isinstance(obj.get("subscription"), str) or isinstance(mid, str | int)
    return PushMessage(
        data=raw,
        attributes=msg.get("attributes"),
        message_id=str(mid) if mid is not None and mid != "" else None,
        problem=problem,
        recognisable=recognisable,
    )


def message_key(message_id: str | None, subscription: object) -> str | None:
    """The id an event without ``event_id`` or ``execution_id`` is known by: its Pub/Sub
    message id, qualified by the subscription it came through as
    ``<subscription>#<message id>`` (the form of a rejected message's dead-letter ref).
    Pub/Sub promises a message id unique within its topic only, and one subscription
    reads one topic: by the bare id, a message of one topic whose id another topic's
    message had already used would be answered ``duplicate`` and route nothing. A
    redelivery comes through the same subscription with the same id, so it keeps its
    key. A subscription that is not printable text of at most
    :data:`MAX_SUBSCRIPTION_CHARS` characters (no Pub/Sub name is) is left out."""
    if (
        message_id is None
        or not isinstance(subscription, str)
        or not subscription
        or len(subscription) > MAX_SUBSCRIPTION_CHARS
        or not subscription.isprintable()
    ):
        return message_id
    return f"{subscription}#{message_id}"


def attribute(attributes: object, key: str) -> str | None:
    """One non-empty string attribute of a Pub/Sub message (pulled or pushed), else None.
    A pushed value UTF-8 cannot encode (a lone surrogate escape in the envelope's JSON; no
    id the router issued, none Pub/Sub delivers) reads as absent: stores and the execution
    log cannot keep it (the log lost the whole batch's rows on one)."""
    if attributes is None or not hasattr(attributes, "get"):
        return None
    value = attributes.get(key)
    return value if isinstance(value, str) and value and encodable(value) else None

"""The id an event without its own id is known by: its message id, qualified by the
subscription it came through (``messages.push.message_key``)."""

from __future__ import annotations

import pytest

from scoperouter.messages.push import MAX_SUBSCRIPTION_CHARS, message_key

SUB = "projects/nba-props-platform/subscriptions/phase2-raw-complete"


@pytest.mark.parametrize(
    ("message_id", "subscription", "key"),
    [
        ("17", SUB, f"{SUB}#17"),  # a pushed or pulled message
        ("17", None, "17"),  # no subscription known (a POST that names none)
        (None, SUB, None),  # no message id: the event's body names it
        ("17", "", "17"),  # an empty subscription names nothing
        ("17", 42, "17"),  # not text: as a push envelope may carry it
        ("17", "projects/p/subscriptions/s\n", "17"),  # a control character
        ("17", "s" * (MAX_SUBSCRIPTION_CHARS + 1), "17"),  # longer than any Pub/Sub name
        ("17", "s" * MAX_SUBSCRIPTION_CHARS, "s" * MAX_SUBSCRIPTION_CHARS + "#17"),
    ],
)
def test_message_key(message_id: str | None, subscription: object, key: str | None) -> None:
    """A message id is qualified by a printable subscription name, else left as it is."""
    assert message_key(message_id, subscription) == key


def test_two_topics_one_message_id_are_two_keys() -> None:
    """Pub/Sub's ids are unique per topic only: two subscriptions' messages never share a key."""
    a = message_key("17", "projects/p/subscriptions/a")
    b = message_key("17", "projects/p/subscriptions/b")
    assert a != b

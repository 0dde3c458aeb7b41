"""The Pub/Sub source's settle lines: at DEBUG, one ``ack``/``nack`` line per message with
its message id and the router's outcome, written BEFORE the settle (bench/replicas.py holds
every event the store never saw to these lines: an ack line for one is a loss)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from scoperouter.runtime.outcomes import Outcome
from scoperouter.runtime.pubsub import PubSubSource

LOGGER = "scoperouter.runtime.pubsub"


class Message:
    """The part of a google-cloud-pubsub message the source uses; records its settle."""

    def __init__(self, journal: list[str], message_id: str = "m-1") -> None:
        self.journal = journal
        self.message_id = message_id
        self.data = b"{}"
        self.attributes: dict[str, str] = {}

    def ack(self) -> None:
        self.journal.append("settled:ack")

    def nack(self) -> None:
        self.journal.append("settled:nack")


class Journal(logging.Handler):
    def __init__(self, journal: list[str]) -> None:
        super().__init__(logging.DEBUG)
        self.journal = journal
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        self.journal.append(f"logged:{record.getMessage()}")


def settle(outcome: Outcome, level: int) -> tuple[list[str], list[logging.LogRecord]]:
    journal: list[str] = []
    handler = Journal(journal)
    logger = logging.getLogger(LOGGER)
    old = logger.level
    logger.addHandler(handler)
    logger.setLevel(level)
    try:
        source = PubSubSource("projects/p/subscriptions/s", None)  # type: ignore[arg-type]
        source._settle(Message(journal), outcome)  # the one place a pulled message is settled
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old)
    return journal, [r for r in handler.records if r.getMessage() in ("ack", "nack")]


@pytest.mark.parametrize(
    ("outcome", "verb"),
    [
        (Outcome("accepted", "e-1", triggers=1), "ack"),
        (Outcome("duplicate", "e-1"), "ack"),
        (Outcome("rejected", "e-1", "invalid_field", dead_lettered=True), "ack"),
        (Outcome("rejected", "e-1", "invalid_field"), "nack"),
        (Outcome("unavailable", reason="store_error"), "nack"),
    ],
)
def test_settle_line_comes_before_the_settle(outcome: Outcome, verb: str) -> None:
    """At DEBUG each message gets one settle line (id, outcome) written before its ack/nack."""
    journal, lines = settle(outcome, logging.DEBUG)
    assert journal == [f"logged:{verb}", f"settled:{verb}"]
    extra: Any = lines[0].__dict__
    assert (extra["message_id"], extra["outcome"], extra["event_id"], extra["reason"]) == (
        "m-1",
        outcome.status,
        outcome.event_id,
        outcome.reason,
    )


@pytest.mark.parametrize("level", [logging.INFO, logging.WARNING])
def test_no_settle_line_above_debug(level: int) -> None:
    """Above DEBUG the message is settled without a line."""
    journal, lines = settle(Outcome("accepted", "e-1"), level)
    assert (journal, lines) == (["settled:ack"], [])

"""What enters the ingest queue (:meth:`Router.enqueue`): the message normalised, and the
:class:`Settle` its answer goes to.

Invariants: a :class:`Settle` is answered exactly once, after the batch holding its message
commits (or fails) -- the moment a source may ack; :func:`parse_inbound` never raises -- every message becomes an
:class:`~scoperouter.messages.models.Event` or the
:class:`~scoperouter.errors.EventError` that rejects it (a normaliser bug included: it is
logged and the message rejected as ``invalid_field``, never a crashed router).
"""

from __future__ import annotations

import logging
from typing import Protocol

from scoperouter.errors import EventError
from scoperouter.messages.models import Event
from scoperouter.messages.normalize import normalize_event, parse_event_bytes
from scoperouter.processor_registry.compiled import CompiledRegistry
from scoperouter.runtime.outcomes import Inbound, Outcome

logger = logging.getLogger("scoperouter.runtime")


class Settle(Protocol):
    """Where the router answers one queued message: an ``asyncio.Future``
    (:meth:`Router.submit`) or a source's own object (Pub/Sub pull acks from it: no task
    or future per message)."""

    def done(self) -> bool: ...

    def set_result(self, result: Outcome, /) -> None: ...


def parse_inbound(inbound: Inbound, registry: CompiledRegistry) -> Event | EventError:
    """``inbound``'s raw bytes (or parsed JSON) as an event, or why it is rejected."""
    if inbound.event is not None:
        return inbound.event
    try:
        if inbound.data is not None:
            return parse_event_bytes(inbound.data, registry, message_id=inbound.message_id)
        return normalize_event(inbound.obj, registry, message_id=inbound.message_id)
    except EventError as exc:
        return exc
    except Exception as exc:  # a normaliser bug must never crash the router
        logger.exception("normaliser raised unexpectedly")
        return EventError("invalid_field", f"could not normalise: {type(exc).__name__}")

"""What enters the ingest queue (:meth:`Router.enqueue`): the message normalised, and the
:class:`Settle` its answer goes to; the queue itself (:class:`IntakeQueue`).

Invariants: a :class:`Settle` is answered exactly once, after the batch holding its message
commits (or fails) -- the moment a source may ack; :func:`parse_inbound` never raises -- every message becomes an
:class:`~scoperouter.messages.models.Event` or the
:class:`~scoperouter.errors.EventError` that rejects it (a normaliser bug included: it is
logged and the message rejected as ``invalid_field``, never a crashed router); the queue
hands items out in arrival order to its one consumer (the ingest worker), in batches
that linger briefly for company (:func:`take_lingering`).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Generic, Protocol, TypeVar

from scoperouter.errors import EventError
from scoperouter.messages.event_fields import is_id_text
from scoperouter.messages.models import BACKFILL_TRIGGER_PREFIX, Event
from scoperouter.messages.normalize import normalize_event, parse_event_bytes
from scoperouter.messages.push import message_key
from scoperouter.processor_registry.compiled import CompiledRegistry
from scoperouter.runtime.outcomes import Inbound, Outcome

logger = logging.getLogger("scoperouter.runtime")
_T = TypeVar("_T")


class Settle(Protocol):
    """Where the router answers one queued message: an ``asyncio.Future``
    (:meth:`Router.submit`) or a source's own object (Pub/Sub pull acks from it: no task
    or future per message)."""

    def done(self) -> bool: ...

    def set_result(self, result: Outcome, /) -> None: ...


def parse_inbound(
    inbound: Inbound, registry: CompiledRegistry, unread: list[str] | None = None
) -> Event | EventError:
    """``inbound``'s raw bytes (or parsed JSON) as an event, or why it is rejected;
    ``unread`` gets the fields read as absent (:func:`~scoperouter.messages.normalize.
    normalize_event`'s)."""
    if inbound.event is not None:
        return inbound.event
    mid = message_key(inbound.message_id, inbound.subscription)
    try:
        if inbound.data is not None:
            return parse_event_bytes(inbound.data, registry, message_id=mid, unread=unread)
        return normalize_event(inbound.obj, registry, message_id=mid, unread=unread)
    except EventError as exc:
        return exc
    except Exception as exc:  # a normaliser bug must never crash the router
        logger.exception("normaliser raised unexpectedly")
        return EventError("invalid_field", f"could not normalise: {type(exc).__name__}")


def names_backfill_run(trigger_id: str | None) -> bool:
    """Whether a message naming ``trigger_id`` (a ``trigger_id`` attribute, a bare report's
    ``trigger_id``) names a backfill run's trigger: the id begins with
    :data:`~scoperouter.messages.models.BACKFILL_TRIGGER_PREFIX` and is id text
    (:func:`~scoperouter.messages.event_fields.is_id_text`: at most 512 characters, no
    control character). Any other names no backfill run -- no backfill issues one, and
    on a shared store the completion ledger keys it (PostgreSQL refuses a NUL, and a long
    id overflows its primary key: the whole ingest batch failed, redelivered for ever)."""
    return (
        trigger_id is not None
        and trigger_id.startswith(BACKFILL_TRIGGER_PREFIX)
        and is_id_text(trigger_id)
    )


def backfill_completion(parsed: Event | EventError) -> Event | EventError:
    """``parsed``, the completion event of a backfill run (its message names a backfill
    trigger's id, :data:`~scoperouter.messages.models.BACKFILL_TRIGGER_PREFIX`), marked
    ``skip_downstream``: it routes nothing (every decision ``skip_downstream``) and is
    recorded as ever (seen id, completion). The backfill runs the downstream processors
    itself, in order; routing the completion too would run them again (the double
    cascade production's ``skip_downstream_trigger`` prevents, docs/backfill.md)."""
    if isinstance(parsed, Event) and not parsed.skip_downstream:
        return parsed.model_copy(update={"skip_downstream": True})
    return parsed


class IntakeQueue(Generic[_T]):
    """The ingest queue: a deque and at most one waiting future (one consumer). Per message
    it costs an append and a pop -- ``asyncio.Queue`` adds a getter future per wait, a
    wake-up list and an unfinished-task count nobody joins."""

    __slots__ = ("_items", "_loop", "_waiter")

    def __init__(self) -> None:
        self._items: deque[_T] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # its consumer's

    def __len__(self) -> int:
        return len(self._items)

    def empty(self) -> bool:
        return not self._items

    def put_nowait(self, item: _T) -> None:
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():  # (cancelled: its consumer was stopped)
                waiter.set_result(None)

    def put_back(self, items: list[_T]) -> None:
        """``items`` (taken last) back at the front, in their order."""
        self._items.extendleft(reversed(items))

    def get_nowait(self) -> _T:
        """The oldest item (IndexError when empty)."""
        return self._items.popleft()

    async def take(self, most: int) -> list[_T]:
        """The oldest items, at least one (waits for it), at most ``most``."""
        items = self._items
        while not items:
            loop = self._loop
            if loop is None:
                loop = self._loop = asyncio.get_running_loop()
            waiter = self._waiter = loop.create_future()
            await waiter
        if len(items) <= most:
            out = list(items)
            items.clear()
            return out
        return [items.popleft() for _ in range(most)]


LINGER_BELOW = 16
"""A batch this big already shares its fsync: it does not linger (at saturation, waiting
would idle the state thread: ``bench/daemon.py`` throughput -8% without this bound)."""


async def take_lingering(queue: IntakeQueue[_T], most: int, linger: float) -> list[_T]:
    """The next batch of at most ``most``: waits for one item; then, when fewer than
    :data:`LINGER_BELOW` came, up to ``linger`` seconds for more to join it (group commit:
    one fsync and one state-thread job for all of them)."""
    items = await queue.take(most)
    if linger > 0.0 and len(items) < min(most, LINGER_BELOW):
        try:
            await asyncio.sleep(linger)
        except asyncio.CancelledError:  # a stop: they go back, first, to be answered there
            queue.put_back(items)
            raise
        while queue and len(items) < most:
            items.append(queue.get_nowait())
    return items

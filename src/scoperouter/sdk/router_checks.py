"""The router's own field checks, run on an event the SDK built (pure, no registry).

Invariant: :func:`check_event` raises ValueError for exactly the fields the router's
normaliser (:mod:`scoperouter.messages.event_fields`) would reject -- an id or a
``correlation_id`` with control characters, text that is no valid UTF-8 (a lone
surrogate), a bad status or priority -- so an event the SDK hands back is never dead-lettered
for them. Only what the router reads from the event itself is checked: whether the registry
knows its source or date key is the router's to say.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from scoperouter.errors import EventError
from scoperouter.messages.event_fields import (
    Ctx,
    event_id_of,
    merge_entities,
    merge_fields,
    opt_id,
    opt_str,
    priority_of,
    status_of,
)


def check_event(event: Mapping[str, Any]) -> None:
    """ValueError (naming the field and the router's reason) when the router would reject
    ``event`` for one of its fields."""
    ctx = Ctx()
    try:
        ctx.event_id = event_id_of(event, None, ctx)
        opt_str(event, "source", ctx)
        status_of(event, ctx)
        priority_of(event, ctx)
        opt_id(event, "correlation_id", ctx)
        merge_entities(event.get("affected_entities"), "affected_entities", ctx, {})
        merge_fields(event.get("changed_fields"), "changed_fields", ctx, set())
    except EventError as exc:
        raise ValueError(
            f"{exc.detail} (the router would reject the event: {exc.reason})"
        ) from None

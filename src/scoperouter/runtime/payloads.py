"""What a trigger looks like on the wire: the SPEC section 3 JSON, its bytes, and the
Pub/Sub attributes (SPEC's three and ``trigger_id``) and ordering key every
Pub/Sub-shaped delivery carries (the Pub/Sub sink, the HTTP push envelope). Pure helpers
shared by the sinks and the router."""

from __future__ import annotations

import json
from typing import Any

from scoperouter.messages.models import DEFAULT_DATE_FIELD, Trigger


def trigger_json(trigger: Trigger) -> dict[str, Any]:
    """The SPEC section 3 trigger shape (dates as ISO strings, lists not tuples, the date
    under the registry's ``date_field``)."""
    return trigger.wire()


def trigger_bytes(trigger: Trigger) -> bytes:
    """Compact JSON of the trigger (the outbox line, the Pub/Sub data, the push data).
    The common wire shape (default date key, no capped ``caused_by``) is the model's own
    JSON, serialised once by pydantic-core; otherwise :func:`trigger_json`'s object."""
    if trigger.date_field == DEFAULT_DATE_FIELD and not trigger.caused_by_more:
        return trigger.__pydantic_serializer__.to_json(trigger)
    return json.dumps(trigger_json(trigger), separators=(",", ":")).encode()


def trigger_attributes(trigger: Trigger) -> dict[str, str]:
    """SPEC section 3's ``processor``, the date (under ``date_field``) and ``scope``, plus
    ``trigger_id``: a publish that timed out after Pub/Sub took it is sent again, and the
    message data may not carry the id (a target ``mapping`` that leaves it out), so the
    attribute is the dedupe key a subscriber can always read (docs/targets.md)."""
    return {
        "processor": trigger.processor,
        trigger.date_field: trigger.game_date.isoformat(),
        "scope": trigger.scope,
        "trigger_id": trigger.trigger_id,
    }


def ordering_key(trigger: Trigger) -> str:
    return f"{trigger.processor}:{trigger.game_date.isoformat()}"

"""The trigger a window fires, and its deterministic id.

Invariant: a trigger id is a function of the window's content only -- the SHA-256 of the
compact JSON ``[processor, day, scope, ids, caused_by(, caused_by_more)]``, byte for byte
what ``json.dumps(..., separators=(",", ":"))`` writes -- so the same window content gives
the same id (idempotent dispatch) in the in-memory book and in every store; the trigger is
built from typed window fields without a second validation
(tests/planner/test_trigger_construct.py checks it equals ``Trigger(...)``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from datetime import date, datetime
from typing import TYPE_CHECKING, Literal

from scoperouter.messages.models import DEFAULT_DATE_FIELD, Trigger
from scoperouter.messages.unchecked import unchecked

if TYPE_CHECKING:
    from scoperouter.router.window_state import WindowState

json_string = json.encoder.encode_basestring_ascii  # json.dumps's string encoder (C)


def json_strings(items: Iterable[str]) -> str:
    """The compact JSON array of ``items`` exactly as ``json.dumps`` writes it."""
    return "[" + ",".join(map(json_string, items)) + "]"


def trigger_id(
    processor: str,
    day: date,
    scope: str,
    ids: tuple[str, ...] | None,
    caused_by: tuple[str, ...],
    caused_by_more: int = 0,
) -> str:
    """Deterministic id of a trigger: same window content -> same id (idempotent dispatch)."""
    return trigger_id_of_json(
        json_string(processor),
        day.isoformat(),
        scope,
        None if ids is None else json_strings(ids),
        json_strings(caused_by),
        caused_by_more,
    )


def trigger_id_of_json(
    processor_json: str,
    day_iso: str,
    scope: str,
    ids_json: str | None,
    caused_json: str,
    caused_by_more: int,
) -> str:
    """:func:`trigger_id` from the parts already JSON-encoded (a caller writing the body
    encodes them once): the SHA-256 of the compact JSON array ``[processor, day, scope,
    ids, caused_by]`` (``caused_by_more`` appended when not 0: ids of uncapped windows are
    unchanged), byte for byte what ``json.dumps(..., separators=(",", ":"))`` writes."""
    more = f",{int(caused_by_more)}]" if caused_by_more else "]"
    ids = "null" if ids_json is None else ids_json
    payload = f'[{processor_json},"{day_iso}",{json_string(scope)},{ids},{caused_json}{more}'
    return "t-" + hashlib.sha256(payload.encode("ascii")).hexdigest()[:24]


def trigger_scope(
    entity_ids: frozenset[str] | None, date_reason: str | None, entity_type: str
) -> tuple[Literal["date", "entities"], tuple[str, ...] | None, str, str | None]:
    """A fired window's ``(scope, entity_ids, reason, entity_type)`` on its trigger: entity
    scope with the ids sorted, or date scope (an empty id set cannot happen: a run decision
    names ids or is date scope)."""
    if entity_ids is None or not entity_ids:
        reason = (date_reason if entity_ids is None else None) or "no_entities_in_event"
        return "date", None, reason, None
    return "entities", tuple(sorted(entity_ids)), "entity_scope", entity_type or None


def to_trigger(
    w: WindowState, date_field: str = DEFAULT_DATE_FIELD, fired_at: datetime | None = None
) -> Trigger:
    """The trigger a window fires (``fired_at``: when the driver stamps it, else None);
    ``date_field``: the registry's key of the date on the wire."""
    caused = tuple(w.caused_by)  # sorted, unique
    scope, ids, reason, etype = trigger_scope(w.entity_ids, w.date_reason, w.entity_type)
    # every field is built here from typed window state: no second validation
    # (tests/planner/test_trigger_construct.py checks it equals Trigger(...))
    tid = trigger_id(w.processor, w.day, scope, ids, caused, w.caused_by.more)
    return window_trigger(
        tid, w.processor, w.day, scope, etype, ids, reason, caused, w.caused_by.more,
        w.correlation_id, w.priority, fired_at, date_field,
    )  # fmt: skip


# fmt: off
def window_trigger(
    tid: str, processor: str, day: date, scope: str, etype: str | None,
    ids: tuple[str, ...] | None, reason: str | None, caused: tuple[str, ...], more: int,
    correlation_id: str | None, priority: str, fired_at: datetime | None, date_field: str,
) -> Trigger:
    # fmt: on
    """The trigger of a one-day window from fields already checked (no second validation;
    tests/planner/test_trigger_construct.py checks it equals ``Trigger(...)``)."""
    return unchecked(
        Trigger,
        {
            "trigger_id": tid,
            "processor": processor,
            "game_date": day,
            "start_date": day,
            "end_date": day,
            "scope": scope,
            "entity_type": etype,
            "entity_ids": ids,
            "reason": reason,
            "caused_by": caused,
            "caused_by_more": more,
            "correlation_id": correlation_id,
            "priority": priority,
            "fired_at": fired_at,
            "date_field": date_field,
        },
    )

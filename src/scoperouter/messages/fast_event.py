"""The normaliser's fast path: the common well-formed canonical event, checked straight from
its bytes (one pydantic ``validate_json``, no ``json.loads`` and no generic field walk).

Invariant: :func:`fast_event` returns exactly what the full path
(``normalize_event(json.loads(data), registry)``) returns -- an equal :class:`Event` with
the same fields set -- or None whenever the message is anything but the narrow common case:
another key than those of :data:`KEYS` (another shape, ``metadata``, a backfill...), a
value of another JSON type, or a value the full path rejects or rewrites in a rarer way (a
blank or over-long id, an entity id that names nobody, a date that is not ``YYYY-MM-DD``, more than
:data:`~scoperouter.messages.event_fields.MAX_EVENT_ENTITIES` ids, an ambiguous source).
Then the full path decides: the fast path never rejects an event.
``tests/messages/test_fast_event.py`` checks the equality with Hypothesis.
"""

from __future__ import annotations

from datetime import date
from functools import lru_cache
from typing import Any, NotRequired

from pydantic import ConfigDict, TypeAdapter
from typing_extensions import TypedDict

from scoperouter.field_names import changed_field_names
from scoperouter.messages.event_fields import (
    DATE_RE,
    MAX_EVENT_ENTITIES,
    MAX_ID_CHARS,
    PRIORITIES,
    STATUSES,
    unnamed_id,
)
from scoperouter.messages.models import DEFAULT_DATE_FIELD, Event
from scoperouter.messages.unchecked import unchecked
from scoperouter.processor_registry.compiled import CompiledRegistry

__all__ = ["KEYS", "fast_event"]

_STRICT = ConfigDict(extra="forbid", strict=True)


class _Common(TypedDict):
    """The common canonical event with its date under ``game_date`` (the default
    ``date_field``). Strict: every value is of its JSON type, no other key."""

    __pydantic_config__ = _STRICT  # type: ignore[misc]

    event_id: str
    source: str
    game_date: str
    affected_entities: NotRequired[dict[str, list[str]]]
    changed_fields: NotRequired[list[str]]
    status: NotRequired[str]
    priority: NotRequired[str]
    correlation_id: NotRequired[str]


KEYS: frozenset[str] = frozenset(_Common.__annotations__) - {"__pydantic_config__"}
_ADAPTER: TypeAdapter[Any] = TypeAdapter(_Common)
# the core validator itself (TypeAdapter.validate_json adds a Python call and its checks)
_validate_json = _ADAPTER.validator.validate_json


@lru_cache(maxsize=4096)  # an event stream names few days
def _day(text: str) -> date | None:
    """``text`` stripped, as a ``YYYY-MM-DD`` date, or None (defer)."""
    text = text.strip()
    if not DATE_RE.fullmatch(text):
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def _choice(value: str, allowed: frozenset[str]) -> str | None:
    """``value`` normalised, or None when not one of ``allowed``."""
    value = value.strip().lower()
    return value if value in allowed else None


def _sorted_ids(values: list[str]) -> tuple[str, ...] | None:
    """Deduplicated and sorted (one id: as is), or None (defer) when one is empty."""
    if len(values) == 1:
        return None if values[0] == "" else (values[0],)
    return None if "" in values else tuple(sorted(set(values)))


def _entity_ids(values: list[str]) -> tuple[str, ...] | None:
    """:func:`_sorted_ids` of entity ids, or None (defer) when one names nobody
    (:func:`~scoperouter.messages.event_fields.unnamed_id`: the full path routes the date)."""
    for v in values:
        if unnamed_id(v):
            return None
    return _sorted_ids(values)


def _field_names(values: list[str]) -> tuple[str, ...]:
    """The full path's ``changed_fields``
    (:func:`~scoperouter.field_names.changed_field_names`: stripped, lower-case, deduplicated
    and sorted; ``()`` when one is blank or not printable, or the list is empty); one name
    without a loop."""
    if len(values) == 1:
        key = values[0].strip().lower()
        return (key,) if key and key.isprintable() else ()
    return changed_field_names(values)


def fast_event(data: bytes, registry: CompiledRegistry) -> Event | None:
    """``data``'s event when it is the common case, else None (see the module docstring)."""
    if registry.date_field != DEFAULT_DATE_FIELD:
        return None  # the schema names game_date: another date_field takes the full path
    try:
        # every string it returns is valid Unicode: invalid UTF-8 and lone surrogate
        # escapes fail validation (the full path then rejects them), so no string here
        # needs the full path's UTF-8 check
        raw = _validate_json(data)
    except ValueError:  # a ValidationError: not the common case (or not JSON at all)
        return None
    eid: str = raw["event_id"]
    if len(eid) > MAX_ID_CHARS or not eid.isprintable() or not eid.strip():
        return None
    name = raw["source"].strip()
    if not name:
        return None
    try:
        source = registry.resolve_source(name) or name
    except ValueError:  # ambiguous: the full path says so
        return None
    day = _day(raw["game_date"])
    if day is None:
        return None
    get = raw.get
    status = get("status")
    if status is None:
        status = "success"
    elif (status := _choice(status, STATUSES)) is None:
        return None
    priority = get("priority")
    if priority is None:
        priority = "normal"
    elif (priority := _choice(priority, PRIORITIES)) is None:
        return None
    correlation = get("correlation_id")
    if correlation is not None:
        # blank: absent, as the full path reads it (a number is not text: the full path)
        correlation = correlation.strip() or None
        if correlation is not None and not correlation.isprintable():  # the full path decides
            return None
    entities: dict[str, tuple[str, ...]] | None = None
    given = get("affected_entities")
    if given is not None:
        entities, named = {}, 0
        for etype in sorted(given) if len(given) > 1 else given:
            ids = given[etype]
            named += len(ids)
            if not etype or named > MAX_EVENT_ENTITIES:
                return None  # past the cap: the full path's cap decides
            got = _entity_ids(ids)
            if got is None:
                return None
            entities[etype] = got
    changed = get("changed_fields")
    fields = None if changed is None else _field_names(changed)
    return unchecked(
        Event,
        {
            "event_id": eid,
            "source": source,
            "game_date": day,
            "start_date": None,
            "end_date": None,
            "status": status,
            "affected_entities": entities,
            "changed_fields": fields,
            "priority": priority,
            "correlation_id": correlation,
            "produced_at": None,
            "skip_downstream": False,
            "record_count": None,
            "referenced_tables": None,
            "shape": "canonical",
        },
    )

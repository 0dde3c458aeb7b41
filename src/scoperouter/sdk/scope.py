"""Parse what a processor receives into a typed, immutable :class:`Scope`.

A processor is triggered either by a Pub/Sub push request (``POST /process`` with the
envelope ``{"message": {"data": <base64 JSON>, "attributes": {...}, "messageId": ...},
"subscription": ...}``), by a pulled message (``google.cloud.pubsub_v1`` ``Message`` or
``ReceivedMessage``) or directly with a dict. All of them end up here::

    scope = parse_trigger(await request.read())
    if scope.is_full_date:
        ...  # today's date-level code path, unchanged
    else:
        ...  # only scope.entity_ids on scope.dates

Backward compatibility: a legacy date-only message (``{"game_date": ...}`` or
``{"start_date": ..., "end_date": ...}``) parses as a full-date scope, so a processor that
ignores the scope keeps doing exactly what it does today. So does a body with neither
``scope`` nor ``entity_ids`` under a Pub/Sub attribute ``scope: entities`` (a target
``mapping`` that leaves the ids out): the ids did not reach the processor, so it runs the
whole date. Entity ids without their ``entity_type`` (a mapping that sends the ids but not
the processor's granularity) cannot be scoped either: the full date too, and
:attr:`Scope.widened` says why.

Malformed triggers raise :class:`TriggerError` (an :class:`~scoperouter.errors.EventError`)
with a reason code and a message naming the offending field.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, model_validator

from scoperouter.errors import EventError
from scoperouter.messages.push import PushEnvelopeError, is_push_envelope, parse_push_envelope

ScopeKind = Literal["entities", "date"]
Priority = Literal["normal", "critical"]

# Patterns are used with ``fullmatch`` only: ``$`` would accept a trailing newline.
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_PRIORITIES: tuple[Priority, ...] = ("normal", "critical")
#: Longest date range a trigger may span (about ten years); guards against typos such as
#: ``0025-01-01`` expanding into a million dates.
MAX_RANGE_DAYS = 3660


class TriggerError(EventError):
    """A trigger the processor cannot understand.

    ``reason`` is one of the :data:`~scoperouter.errors.EventRejectReason` codes
    (``invalid_envelope``, ``not_json``, ``not_an_object``, ``missing_date``,
    ``invalid_date``, ``invalid_date_range``, ``invalid_field``). A push endpoint answers
    it with HTTP 400.
    """


class Scope(BaseModel):
    """The work one trigger asks for: some entities, or the whole date, on some dates."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    scope: ScopeKind
    start_date: date
    end_date: date
    game_date: date | None = None
    # the key of the date on the wire (the registry's date_field, named by the trigger):
    # the SDK keys its completion events' date by it (sdk/events.py)
    date_field: str = "game_date"
    entity_type: str | None = None
    entity_ids: tuple[str, ...] = ()
    processor: str | None = None
    trigger_id: str | None = None
    reason: str | None = None
    caused_by: tuple[str, ...] = ()
    correlation_id: str | None = None
    priority: Priority = "normal"
    message_id: str | None = None
    # set by parse_trigger when no message id came with the trigger (a dict): this run's
    # identity, so a re-run's change events are new events (sdk/events.py run_id)
    run_nonce: str | None = None
    attributes: tuple[tuple[str, str], ...] = ()
    legacy: bool = False
    # why parse_trigger widened an entity trigger to the full date (None: it did not): a
    # trigger naming entity ids without their entity_type cannot be scoped, so its dates are
    # processed whole -- the safe reading (processing more never loses an update)
    widened: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Scope:
        """Reject scopes :func:`parse_trigger` would never produce (also when built directly)."""
        if self.end_date < self.start_date:
            raise ValueError(f"end_date {self.end_date} is before start_date {self.start_date}")
        if self.game_date is not None and not self.start_date <= self.game_date <= self.end_date:
            raise ValueError(
                f"game_date {self.game_date} lies outside {self.start_date}..{self.end_date}"
            )
        if not _NAME_RE.fullmatch(self.date_field):
            raise ValueError(
                f"date_field must be a name (letters, digits, _), got {self.date_field!r}"
            )
        if self.entity_type is not None and not _NAME_RE.fullmatch(self.entity_type):
            raise ValueError(
                f"entity_type must be a name (letters, digits, _), got {self.entity_type!r}"
            )
        if self.scope == "entities":
            if not self.entity_ids:
                raise ValueError("an 'entities' scope needs at least one entity id")
            if not all(self.entity_ids):
                raise ValueError("entity ids must be non-empty strings")
            if self.entity_type is None:
                raise ValueError("an 'entities' scope needs an entity_type")
        elif self.entity_ids:
            raise ValueError("a 'date' scope must not carry entity ids")
        return self

    @property
    def is_full_date(self) -> bool:
        """True when the processor must (re)process every entity of its dates."""
        return self.scope == "date"

    @property
    def dates(self) -> tuple[date, ...]:
        """Every date from ``start_date`` to ``end_date`` inclusive."""
        n = (self.end_date - self.start_date).days
        return tuple(self.start_date + timedelta(days=i) for i in range(n + 1))

    def covers(self, entity_id: str) -> bool:
        """Whether this scope includes ``entity_id`` (a full-date scope covers everything)."""
        return self.is_full_date or entity_id in self.entity_ids

    def to_trigger_dict(self) -> dict[str, object]:
        """The trigger in SPEC section 3 form (JSON-able), the date under :attr:`date_field`
        (named in ``date_field`` when it is not ``game_date``, as the router's trigger is)."""
        out: dict[str, object] = {
            "trigger_id": self.trigger_id,
            "processor": self.processor,
            self.date_field: self.game_date.isoformat() if self.game_date else None,
            "start_date": self.start_date.isoformat(),
            "end_date": self.end_date.isoformat(),
            "scope": self.scope,
            "entity_type": self.entity_type,
            "entity_ids": list(self.entity_ids) if not self.is_full_date else None,
            "reason": self.reason,
            "caused_by": list(self.caused_by),
            "correlation_id": self.correlation_id,
            "priority": self.priority,
        }
        if self.date_field != "game_date":
            out["date_field"] = self.date_field
        return out


def date_key(date_field: str | None, scope: Scope | None, what: str = "date_field") -> str:
    """The key of an event's date: ``date_field`` when given, else the scope's (the
    registry's, named by the trigger), else ``game_date``. A ``date_field`` other than the
    scope's raises ValueError: the router reads the date under its registry's key only, so
    such an event would be rejected (``missing_date``)."""
    if date_field is not None and scope is not None and date_field != scope.date_field:
        raise ValueError(
            f"{what} {date_field!r} contradicts the trigger's date_field {scope.date_field!r} "
            "(the registry's): leave it out to use the scope's"
        )
    return date_field or (scope.date_field if scope is not None else "game_date")


# --------------------------------------------------------------------------- parsing


def parse_trigger(raw: object, *, expect_processor: str | None = None) -> Scope:
    """Parse any trigger transport into a :class:`Scope`.

    ``raw`` may be: the body of a Pub/Sub push request (``bytes``/``str`` JSON, or the
    decoded envelope dict); a pulled ``google.cloud.pubsub_v1`` ``Message`` or
    ``ReceivedMessage`` (anything with ``.data``/``.attributes``/``.message_id``, or
    ``.message`` holding that); or a plain trigger dict. With ``expect_processor``, a
    trigger addressed to another processor is rejected.
    """
    message_id: str | None = None
    attributes: dict[str, str] = {}
    payload: object
    if isinstance(raw, bytes | bytearray | memoryview | str):
        payload = _json(bytes(raw) if not isinstance(raw, str) else raw.encode(), "request body")
    elif isinstance(raw, Mapping):
        payload = raw
    else:
        payload, attributes, message_id = _from_pubsub_message(raw)
    if isinstance(payload, Mapping) and is_push_envelope(payload):
        payload, attributes, message_id = _from_envelope(payload)
    if not isinstance(payload, Mapping):
        raise TriggerError("not_an_object", f"trigger must be a JSON object, got {_kind(payload)}")
    scope = _scope_from_dict(payload, attributes, message_id)
    if (
        expect_processor is not None
        and scope.processor is not None
        and scope.processor != expect_processor
    ):
        raise TriggerError(
            "invalid_field",
            f"trigger is for processor {scope.processor!r}, this is {expect_processor!r}",
            event_id=scope.trigger_id,
        )
    return scope


def _kind(value: object) -> str:
    if value is None:
        return "null"
    return {
        list: "an array",
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
    }.get(type(value), type(value).__name__)


def _json(data: bytes, what: str) -> object:
    try:
        return json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TriggerError("not_json", f"{what} is not valid JSON: {exc}") from exc


def _attributes(value: object, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise TriggerError("invalid_envelope", f"{where} must map strings to strings")
    return {str(k): str(v) for k, v in value.items()}


def _from_envelope(envelope: Mapping[Any, Any]) -> tuple[object, dict[str, str], str | None]:
    try:
        push = parse_push_envelope(envelope)
    except PushEnvelopeError as exc:
        raise TriggerError("invalid_envelope", f"push envelope {exc}") from exc
    if push.problem == "bad_base64":
        raise TriggerError("invalid_envelope", "push envelope 'message.data' is not base64")
    if push.problem is not None or not push.data:
        raise TriggerError(
            "invalid_envelope", "push envelope 'message.data' must be a non-empty base64 string"
        )
    attributes = _attributes(push.attributes, "push envelope 'message.attributes'")
    return _json(push.data, "push envelope 'message.data'"), attributes, push.message_id


def _from_pubsub_message(obj: object) -> tuple[object, dict[str, str], str | None]:
    # ReceivedMessage (pubsub_v1.types) wraps the message; subscriber Message exposes it.
    inner = getattr(obj, "message", None)
    if inner is not None and hasattr(inner, "data"):
        obj = inner
    data = getattr(obj, "data", None)
    if not isinstance(data, bytes | bytearray):
        raise TriggerError(
            "invalid_envelope",
            f"cannot read a trigger from {type(obj).__name__}: expected bytes, str, dict or a Pub/Sub message",
        )
    raw_attrs = getattr(obj, "attributes", None)
    attributes = _attributes(
        dict(raw_attrs) if raw_attrs is not None else None, "message attributes"
    )
    mid = getattr(obj, "message_id", None)
    return (
        _json(bytes(data), "message data"),
        attributes,
        (mid if isinstance(mid, str) and mid else None),
    )


def _opt_str(d: Mapping[Any, Any], key: str) -> str | None:
    value = d.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise TriggerError("invalid_field", f"'{key}' must be a non-empty string, got {value!r}")
    return value


def _opt_date(d: Mapping[Any, Any], key: str) -> date | None:
    value = d.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not _DATE_RE.fullmatch(value):
        raise TriggerError("invalid_date", f"'{key}' must be a YYYY-MM-DD date, got {value!r}")
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise TriggerError(
            "invalid_date", f"'{key}' is not a valid date: {value!r} ({exc})"
        ) from exc


def _scope_from_dict(
    d: Mapping[Any, Any], attributes: Mapping[str, str], message_id: str | None
) -> Scope:
    # the data's id, else the attribute the router sets on every Pub/Sub-shaped delivery
    # (runtime/payloads.py: a target mapping may leave the id out of the data)
    trigger_id = _opt_str(d, "trigger_id") or attributes.get("trigger_id") or None

    def fail(reason: Any, detail: str) -> TriggerError:
        return TriggerError(reason, detail, event_id=trigger_id or message_id)

    try:
        # a registry with another date_field keys the date by it and names it (Trigger.wire)
        key = d.get("date_field")
        key = key if isinstance(key, str) and key else "game_date"
        if not _NAME_RE.fullmatch(key):
            raise TriggerError(
                "invalid_field", f"'date_field' must be a name (letters, digits, _), got {key!r}"
            )
        game_date = _opt_date(d, key)
        if game_date is None and key not in d and key in attributes:
            game_date = _opt_date(attributes, key)
        start = _opt_date(d, "start_date")
        end = _opt_date(d, "end_date")
    except TriggerError as exc:
        raise fail(exc.reason, exc.detail) from None
    if (start is None) != (end is None):
        missing = "end_date" if end is None else "start_date"
        raise fail(
            "invalid_date_range",
            f"'start_date' and 'end_date' come together; '{missing}' is missing",
        )
    if start is None or end is None:
        if game_date is None:
            raise fail("missing_date", "trigger has no 'game_date' and no 'start_date'/'end_date'")
        start = end = game_date
    if end < start:
        raise fail("invalid_date_range", f"end_date {end} is before start_date {start}")
    if game_date is not None and not start <= game_date <= end:
        raise fail(
            "invalid_date_range",
            f"game_date {game_date} lies outside start_date..end_date {start}..{end}",
        )
    if (end - start).days > MAX_RANGE_DAYS:
        raise fail("invalid_date_range", f"{start}..{end} spans more than {MAX_RANGE_DAYS} days")

    raw_scope = d.get("scope", attributes.get("scope") if "scope" not in d else None)
    if raw_scope is not None and raw_scope not in ("entities", "date"):
        raise fail("invalid_field", f"'scope' must be 'entities' or 'date', got {raw_scope!r}")
    if "scope" not in d and d.get("entity_ids") is None:
        # a body without scope and ids is date-only (a legacy message, or a target mapping
        # that leaves the ids out): the whole date, whatever the Pub/Sub attribute says
        raw_scope = None

    entity_type = d.get("entity_type")
    if entity_type is not None and (
        not isinstance(entity_type, str) or not _NAME_RE.fullmatch(entity_type)
    ):
        raise fail(
            "invalid_field",
            f"'entity_type' must be a name (letters, digits, _), got {entity_type!r}",
        )
    raw_ids = d.get("entity_ids")
    ids: tuple[str, ...] = ()
    if raw_ids is not None:
        if not isinstance(raw_ids, list | tuple) or not all(
            isinstance(i, str) and i for i in raw_ids
        ):
            raise fail("invalid_field", "'entity_ids' must be a list of non-empty strings")
        ids = tuple(sorted(set(raw_ids)))

    kind: ScopeKind
    widened: str | None = None
    if raw_scope == "date" or (raw_scope is None and raw_ids is None):
        if ids:
            raise fail("invalid_field", "a 'date' scope must not carry 'entity_ids'")
        kind = "date"
    else:
        if not ids:
            raise fail("invalid_field", "an 'entities' scope needs a non-empty 'entity_ids' list")
        if entity_type is None:
            # ids of an unknown type (a target mapping that leaves entity_type out): they
            # cannot be scoped, so the whole date -- safe, where a refusal dead-letters it
            widened = (
                f"{len(ids)} entity id(s) without 'entity_type' (a target mapping that leaves "
                "it out): processed as the full date"
            )
            kind, ids = "date", ()
        else:
            kind = "entities"

    caused = d.get("caused_by")
    if caused is None:
        caused_by: tuple[str, ...] = ()
    elif isinstance(caused, str) and caused:
        caused_by = (caused,)
    elif isinstance(caused, list | tuple) and all(isinstance(c, str) and c for c in caused):
        caused_by = tuple(caused)
    else:
        raise fail("invalid_field", "'caused_by' must be a string or a list of strings")

    priority = d.get("priority", "normal")
    if priority is None:
        priority = "normal"
    if priority not in _PRIORITIES:
        raise fail("invalid_field", f"'priority' must be 'normal' or 'critical', got {priority!r}")

    try:
        processor = _opt_str(d, "processor")
        if processor is None and "processor" not in d:
            processor = attributes.get("processor") or None
        reason = _opt_str(d, "reason")
        correlation_id = _opt_str(d, "correlation_id")
    except TriggerError as exc:
        raise fail(exc.reason, exc.detail) from None

    return Scope(
        scope=kind,
        start_date=start,
        end_date=end,
        game_date=game_date,
        date_field=key,
        entity_type=entity_type if kind == "entities" else None,
        entity_ids=ids,
        processor=processor,
        trigger_id=trigger_id,
        reason=reason,
        caused_by=caused_by,
        correlation_id=correlation_id,
        priority=priority,
        message_id=message_id,
        run_nonce=None if message_id else uuid.uuid4().hex[:12],
        attributes=tuple(sorted(attributes.items())),
        legacy="scope" not in d,
        widened=widened,
    )

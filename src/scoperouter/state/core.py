"""The store-independent half of an ingest or fire transaction.

Invariant: both stores run the same steps in the same order -- dedupe (ids sorted),
lock or read the touched windows (keys sorted), :func:`fold` them with the pure merge,
write the survivors, delete the fired, insert the fired triggers -- so the only thing an
implementation adds is how it locks and writes rows.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import lru_cache

from pydantic_core import to_json

from scoperouter.messages.models import DEFAULT_DATE_FIELD, Trigger
from scoperouter.router.window_state import (
    CAUSED_BY_CAP,
    json_string,
    json_strings,
    trigger_id_of_json,
    trigger_scope,
    window_trigger,
)
from scoperouter.state.merge import apply, to_trigger
from scoperouter.state.model import Admission, Contribution, WindowKey, WindowState


@dataclass
class Fold:
    """The outcome of merging one batch into its windows."""

    write: list[WindowState] = field(default_factory=list)  # windows left open (upsert)
    delete: list[WindowKey] = field(default_factory=list)  # keys with nothing left open
    fired: list[WindowState] = field(default_factory=list)  # in firing order
    # Parallel to ``write`` / ``fired``: True when that window is the stored row's window
    # continued (it existed before the batch and had not fired yet). A store that loads
    # windows without their ``caused_by`` (PostgreSQL, for hot windows) appends the new
    # causes to such a row, or reads the stored ones when it fires.
    write_continues: list[bool] = field(default_factory=list)
    fired_continues: list[bool] = field(default_factory=list)


def split_admissions(
    admissions: Iterable[Admission], new_ids: set[str]
) -> tuple[list[str], list[str], dict[WindowKey, list[Contribution]]]:
    """Accepted ids, duplicate ids (re-seen or repeated in the batch) and the accepted
    contributions grouped by window key in arrival order."""
    accepted: list[str] = []
    duplicates: list[str] = []
    grouped: dict[WindowKey, list[Contribution]] = {}
    taken: set[str] = set()
    for a in admissions:
        if a.event_id not in new_ids or a.event_id in taken:
            duplicates.append(a.event_id)
            continue
        taken.add(a.event_id)
        accepted.append(a.event_id)
        for c in a.contributions:
            grouped.setdefault(c.key, []).append(c)
    return accepted, duplicates, grouped


def fold(
    existing: Mapping[WindowKey, WindowState | None],
    grouped: Mapping[WindowKey, list[Contribution]],
    now: float,
) -> Fold:
    """Merge every key's contributions into its current window (keys in sorted order)."""
    out = Fold()
    for key in sorted(grouped):
        stored = existing.get(key) is not None
        window, fired = apply(existing.get(key), grouped[key], now)
        out.fired.extend(fired)
        out.fired_continues.extend(stored and i == 0 for i in range(len(fired)))
        if window is None:
            out.delete.append(key)
        else:
            out.write.append(window)
            out.write_continues.append(stored and not fired)
    return out


def fired_trigger(w: WindowState, now: float, date_field: str) -> tuple[Trigger, bytes]:
    """The trigger of a fired window stamped ``fired_at = now``, and its outbox body.

    Built once from the window's fields, each string JSON-encoded once for both the trigger
    id and the body (the same values, id and bytes as :func:`to_trigger` and
    :func:`trigger_body`: tests/state/test_fired_trigger.py)."""
    if date_field in _TRIGGER_KEYS:  # the date's key would shadow a field: the long way
        t = to_trigger(w, datetime.fromtimestamp(now, UTC), date_field)
        return t, trigger_body(t)
    at, at_json = _stamp(now)
    scope, ids, reason, etype = trigger_scope(w.entity_ids, w.date_reason, w.entity_type)
    every = sorted(w.caused_by)
    caused = tuple(every[:CAUSED_BY_CAP])
    more = len(every) - len(caused) + w.caused_more
    processor, day, middle, tail = _key_parts(w.processor, w.day, date_field)
    ids_json = None if ids is None else json_strings(ids)
    caused_json = json_strings(caused)
    tid = trigger_id_of_json(processor, day, scope, ids_json, caused_json, more)
    t = window_trigger(
        tid, w.processor, w.day, scope, etype, ids, reason, caused, more, w.correlation_id,
        w.priority, at, date_field,
    )  # fmt: skip
    if more:
        tail = f',"caused_by_more":{more}' + tail
    body = "".join(
        (
            '{"trigger_id":"',
            tid,
            middle,
            scope,
            '","entity_type":',
            "null" if etype is None else json_string(etype),
            ',"entity_ids":',
            "null" if ids_json is None else ids_json,
            ',"reason":',
            json_string(reason),
            ',"caused_by":',
            caused_json,
            ',"correlation_id":',
            "null" if w.correlation_id is None else json_string(w.correlation_id),
            ',"priority":',
            json_string(w.priority),
            ',"fired_at":',
            at_json,
            tail,
        )
    )
    return t, body.encode("ascii")


# the Trigger's keys on the wire: a date_field among them takes the long way
_TRIGGER_KEYS = (frozenset(Trigger.model_fields) | {"caused_by_more"}) - {DEFAULT_DATE_FIELD}
_DEFAULT_KEY = json_string(DEFAULT_DATE_FIELD)
_last_stamp: tuple[float, datetime, str] = (float("nan"), datetime.min, "")


@lru_cache(maxsize=4096)  # window keys remembered
def _key_parts(processor: str, day: date, date_field: str) -> tuple[str, str, str, str]:
    """What a trigger's id and body take from its window key and the date field, encoded
    once per key: the processor's JSON, the ISO day, the body from the trigger id's
    closing quote to the scope's opening one, and the body's end."""
    p_json, iso = json_string(processor), day.isoformat()
    date_key = _DEFAULT_KEY if date_field == DEFAULT_DATE_FIELD else json_string(date_field)
    middle = "".join(
        (
            '","processor":', p_json, ",", date_key, ':"', iso, '","start_date":"', iso,
            '","end_date":"', iso, '","scope":"',
        )
    )  # fmt: skip
    tail = "}" if date_field == DEFAULT_DATE_FIELD else ',"date_field":' + date_key + "}"
    return p_json, iso, middle, tail


def _stamp(now: float) -> tuple[datetime, str]:
    """``fired_at`` for ``now`` and its JSON (pydantic's text of it), computed once per
    ``now`` (a batch fires its windows at one time)."""
    global _last_stamp
    last = _last_stamp
    if last[0] == now:
        return last[1], last[2]
    at = datetime.fromtimestamp(now, UTC)
    text = to_json(at).decode("ascii")
    _last_stamp = (now, at, text)
    return at, text


def trigger_body(t: Trigger) -> bytes:
    """Compact JSON of the trigger as sinks send it (SPEC section 3, the date under the
    registry's ``date_field``); ``Trigger.model_validate_json`` reads it back. The common
    shape (default date key, uncapped ``caused_by``) is serialised once by pydantic-core;
    its bytes equal ``json.dumps``'s when they are printable ASCII (``json.dumps`` escapes
    the rest, pydantic-core writes UTF-8 and DEL as is), else ``json.dumps`` writes them."""
    if t.date_field == DEFAULT_DATE_FIELD and not t.caused_by_more:
        body: bytes = t.__pydantic_serializer__.to_json(t)
        if body.isascii() and b"\x7f" not in body:
            return body
    return json.dumps(t.wire(), separators=(",", ":")).encode()


def ids_json(ids: frozenset[str] | None) -> str | None:
    return None if ids is None else json.dumps(sorted(ids), separators=(",", ":"))


def ids_from_json(text: str | None) -> frozenset[str] | None:
    return None if text is None else frozenset(json.loads(text))

"""The store-independent half of an ingest or fire transaction.

Invariant: both stores run the same steps in the same order -- dedupe (ids sorted),
lock or read the touched windows (keys sorted), :func:`fold` them with the pure merge,
write the survivors, delete the fired, insert the fired triggers -- so the only thing an
implementation adds is how it locks and writes rows.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import lru_cache
from hashlib import sha256

from pydantic_core import to_json

from scoperouter.messages.models import DEFAULT_DATE_FIELD, Trigger
from scoperouter.router.window_state import (
    CAUSED_BY_CAP,
    json_string,
    json_strings,
    window_trigger,
)
from scoperouter.state.merge import apply, to_trigger
from scoperouter.state.model import (
    Admission,
    Contribution,
    FireModes,
    Reported,
    WindowKey,
    WindowState,
)


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
            grouped.setdefault((c.processor, c.day), []).append(c)  # c.key, without a call
    return accepted, duplicates, grouped


def to_record(completions: Iterable[Reported], accepted: Iterable[str]) -> list[Reported]:
    """The reported completions an ingest records in the ledger: a bare report's, and an
    event's when the batch admits that event (``accepted``: its first occurrence only)."""
    admitted = set(accepted)
    out: list[Reported] = []
    for r in completions:
        if r.event_id is None:
            out.append(r)
        elif r.event_id in admitted:
            admitted.discard(r.event_id)  # a repeat later in the batch: a duplicate
            out.append(r)
    return out


def fold(
    existing: Mapping[WindowKey, WindowState | None],
    grouped: Mapping[WindowKey, list[Contribution]],
    now: float,
    modes: FireModes | None = None,
) -> Fold:
    """Merge every key's contributions into its current window (keys in sorted order); a
    window of a processor ``modes`` says fires live now is marked ``live``."""
    out = Fold()
    get = existing.get
    of = modes.of if modes is not None else None
    for key in sorted(grouped):
        prev = get(key)
        live = of is not None and of(key[0]) == "live"
        window, fired = apply(prev, grouped[key], now, live)
        stored = prev is not None
        if fired:
            out.fired.extend(fired)
            out.fired_continues.append(stored)  # the first only continues the stored row
            if len(fired) > 1:
                out.fired_continues.extend([False] * (len(fired) - 1))
        if window is None:
            out.delete.append(key)
        else:
            out.write.append(window)
            out.write_continues.append(stored and not fired)
    return out


def fired_trigger(w: WindowState, now: float, date_field: str) -> tuple[Trigger, bytes]:
    """The trigger of a fired window stamped ``fired_at = now``, and its outbox body
    (:func:`fired_triggers` of one window)."""
    triggers, rows = fired_triggers((w,), now, date_field)
    return triggers[0], rows[0][2]


def fired_modes(
    modes: FireModes | None, windows: Sequence[WindowState], rows: list[tuple[str, str, bytes]]
) -> list[str | None]:
    """The dispatch mode stored with each outbox row of :func:`fired_triggers` of
    ``windows``: ``live`` for a window a contribution joined while its processor fired
    live, else the mode its processor fires in now (None when the store was given no
    modes)."""
    if modes is None:
        return ["live" if w.live else None for w in windows]
    of = modes.of
    return ["live" if w.live else of(r[1]) for w, r in zip(windows, rows, strict=True)]


def fired_triggers(
    windows: Iterable[WindowState], now: float, date_field: str
) -> tuple[list[Trigger], list[tuple[str, str, bytes]]]:
    """The triggers of fired windows stamped ``fired_at = now``, in order, and their outbox
    rows ``(trigger_id, processor, body)``.

    Built once from each window's fields, each string JSON-encoded once for both the
    trigger id and the body, with the steps of
    :func:`scoperouter.router.window_state.trigger_scope` and ``trigger_id_of_json``
    written out here (no call per step: a trigger per event at saturation; what every
    window of the batch shares -- the stamp, the date key -- is looked up once), the
    trigger itself made by ``window_trigger``; the same values, id and bytes as
    :func:`to_trigger` and :func:`trigger_body` (tests/state/test_fired_trigger.py)."""
    triggers: list[Trigger] = []
    rows: list[tuple[str, str, bytes]] = []
    if date_field in _TRIGGER_KEYS:  # the date's key would shadow a field: the long way
        at_dt = datetime.fromtimestamp(now, UTC)
        for w in windows:
            t = to_trigger(w, at_dt, date_field)
            triggers.append(t)
            rows.append((t.trigger_id, t.processor, trigger_body(t)))
        return triggers, rows
    at, at_json = _stamp(now)
    at_tail = ',"fired_at":' + at_json
    add_trigger, add_row = triggers.append, rows.append
    key_parts, json_list, js, hash_of = _key_parts, _json_list, json_string, sha256
    make = window_trigger
    cap, priorities = CAUSED_BY_CAP, _PRIORITY_JSON
    for w in windows:
        have = w.entity_ids
        if not have:  # trigger_scope: full date (None) or no ids at all
            scope, scope_json, ids, etype, ids_json = "date", '"date"', None, None, "null"
            reason = (w.date_reason if have is None else None) or "no_entities_in_event"
            reason_json = js(reason)
        else:
            scope, scope_json = "entities", '"entities"'
            reason, reason_json = "entity_scope", '"entity_scope"'
            ids = tuple(have) if len(have) == 1 else tuple(sorted(have))  # one: no list
            etype = w.entity_type or None
            ids_json = json_list(ids)
        causes = w.caused_by
        if len(causes) == 1:  # a window fired by the event that opened it
            caused, more = tuple(causes), w.caused_more
        elif len(causes) <= cap:
            caused, more = tuple(sorted(causes)), w.caused_more
        else:
            every = sorted(causes)
            caused = tuple(every[:cap])
            more = len(every) - cap + w.caused_more
        processor, day = w.processor, w.day
        id_head, middle, tail = key_parts(processor, day, date_field)
        caused_json = json_list(caused)
        # trigger_id_of_json: the SHA-256 of [processor, day, scope, ids, caused_by(, more)]
        payload = "".join(
            (id_head, scope_json, ",", ids_json, ",", caused_json, f",{more}]" if more else "]")
        )
        tid = "t-" + hash_of(payload.encode("ascii")).hexdigest()[:24]
        corr, priority = w.correlation_id, w.priority
        t = make(
            tid, processor, day, scope, etype, ids, reason, caused, more, corr, priority, at,
            date_field,
        )  # fmt: skip
        add_trigger(t)
        if more:
            tail = f',"caused_by_more":{more}' + tail
        body = "".join(
            (
                '{"trigger_id":"',
                tid,
                middle,
                scope,
                '","entity_type":',
                "null" if etype is None else js(etype),
                ',"entity_ids":',
                ids_json,
                ',"reason":',
                reason_json,
                ',"caused_by":',
                caused_json,
                ',"correlation_id":',
                "null" if corr is None else js(corr),
                ',"priority":',
                priorities.get(priority) or js(priority),
                at_tail,
                tail,
            )
        )
        add_row((tid, processor, body.encode("ascii")))
    return triggers, rows


def _json_list(items: tuple[str, ...]) -> str:
    """:func:`scoperouter.router.window_state.json_strings` of a tuple (one item: no
    join)."""
    if len(items) == 1:
        return "[" + json_string(items[0]) + "]"
    return json_strings(items)


# the Trigger's keys on the wire: a date_field among them takes the long way
_TRIGGER_KEYS = (frozenset(Trigger.model_fields) | {"caused_by_more"}) - {DEFAULT_DATE_FIELD}
_DEFAULT_KEY = json_string(DEFAULT_DATE_FIELD)
_PRIORITY_JSON = {p: json_string(p) for p in ("normal", "critical")}
_last_stamp: tuple[float, datetime, str] = (float("nan"), datetime.min, "")


@lru_cache(maxsize=4096)  # window keys remembered
def _key_parts(processor: str, day: date, date_field: str) -> tuple[str, str, str]:
    """What a trigger's id and body take from its window key and the date field, encoded
    once per key: the id's hashed array up to its scope (``[processor,"day",``), the body
    from the trigger id's closing quote to the scope's opening one, and the body's end."""
    p_json, iso = json_string(processor), day.isoformat()
    date_key = _DEFAULT_KEY if date_field == DEFAULT_DATE_FIELD else json_string(date_field)
    middle = "".join(
        (
            '","processor":', p_json, ",", date_key, ':"', iso, '","start_date":"', iso,
            '","end_date":"', iso, '","scope":"',
        )
    )  # fmt: skip
    tail = "}" if date_field == DEFAULT_DATE_FIELD else ',"date_field":' + date_key + "}"
    return f'[{p_json},"{iso}",', middle, tail


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

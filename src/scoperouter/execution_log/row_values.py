"""The values of the log's rows as they are stored: ids, times, id lists, skip counts and
the event JSON, each encoded once (memoised where a stream repeats them) for every writer.

Invariant: each encoder gives exactly what its plain definition gives (``iso``:
``utc(ts).isoformat(timespec="microseconds")``; ``ids_json``: compact ``json.dumps``;
``dispatch_key``: :func:`dispatch_id`; ``skips_json``: sorted compact JSON), so the hot
path's shortcuts never change a stored value (``tests/execution_log/test_row_values.py``);
and :func:`event_from_row_json` undoes :func:`compact_event_json`. The row builders that use
them are :mod:`.rows`.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from datetime import UTC, date, datetime
from functools import lru_cache
from json.encoder import encode_basestring, encode_basestring_ascii
from typing import Any, overload

from scoperouter.messages.models import Event
from scoperouter.router.decisions import Decision

# encoders built once (``json.dumps`` with arguments builds one per call); same output
_text_json = encode_basestring  # json.dumps(text, ensure_ascii=False) of a str, in C
_sorted_json = json.JSONEncoder(sort_keys=True, separators=(",", ":")).encode


def _h(*parts: object) -> str:
    return hashlib.sha1("|".join("" if p is None else str(p) for p in parts).encode()).hexdigest()[
        :20
    ]


def _sha20(text: str) -> str:
    """``prefix + _h(a, b, c)`` for ``text = prefix + "a|b|c"`` (2-char prefix), cheaper."""
    return text[:2] + hashlib.sha1(text[2:].encode()).hexdigest()[:20]


_compact_json = json.JSONEncoder(separators=(",", ":")).encode  # built once


def ids_json(ids: Sequence[Any]) -> str:
    """``json.dumps(list(ids), separators=(",", ":"))``; strings without the encoder."""
    try:
        if len(ids) == 1:  # the common case (one entity, one causing event): no join
            return "[" + encode_basestring_ascii(ids[0]) + "]"
        return "[" + ",".join(map(encode_basestring_ascii, ids)) + "]"
    except TypeError:  # not all strings
        return _compact_json(list(ids))


def dispatch_key(trigger_id: str, status: str, attempts: int | None, dispatched_at: str) -> str:
    """A dispatch row's id (:func:`dispatch_id`, cheaper): unique per outcome -- its
    trigger, status, attempt count and time (``dispatched_at`` as stored: :func:`iso`), so a
    redriven trigger that fails again at the same attempt count has a row of its own and the
    very same outcome delivered twice has one."""
    return _sha20(f"x-{trigger_id}|{status}|{attempts}|{dispatched_at}")


def decision_id(event_id: str, processor: str, on: date | None) -> str:
    """Deterministic id of one decision row: a redelivered event does not duplicate rows."""
    return "d-" + _h(event_id, processor, on.isoformat() if on else None)


def dispatch_id(trigger_id: str, status: str, attempts: int, dispatched_at: str) -> str:
    return "x-" + _h(trigger_id, status, attempts, dispatched_at)


def utc(ts: datetime) -> datetime:
    """A timezone-aware UTC datetime (naive values are taken as UTC)."""
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


# the last UTC datetime formatted and its text (one tuple: swapped atomically between
# threads): a batch's rows share their times (``isoformat`` costs ~0.65 us)
_iso_last: tuple[datetime, str] = (datetime.min.replace(tzinfo=UTC), "")


@overload
def iso(ts: datetime) -> str: ...
@overload
def iso(ts: None) -> None: ...
@overload
def iso(ts: datetime | None) -> str | None: ...


def iso(ts: datetime | None) -> str | None:
    global _iso_last
    if ts is None:
        return None
    if ts.tzinfo is UTC and type(ts) is datetime:  # the common case: no conversion
        last = _iso_last
        if ts == last[0]:  # both UTC: equal means the same fields
            return last[1]
        text = ts.isoformat() if ts.microsecond else ts.isoformat(timespec="microseconds")
        _iso_last = (ts, text)
        return text
    return utc(ts).isoformat(timespec="microseconds")


@lru_cache(maxsize=64)  # a few seconds are live at a time
def _second_iso(sec: int) -> str:
    """Whole epoch second ``sec`` as ``YYYY-MM-DDTHH:MM:SS`` (UTC)."""
    return datetime.fromtimestamp(sec, UTC).isoformat()[:19]


# the last epoch time formatted and its text (one tuple, swapped atomically): a delivery's
# dispatch outcomes share their time
_epoch_last: tuple[float, str] = (math.nan, "")


def iso_epoch(t: float) -> str:
    """``iso(datetime.fromtimestamp(t, UTC))`` without building the datetime (``t`` >= 0):
    the same split of the float (``modf``, microseconds rounded half to even), the date and
    time of the whole second memoised."""
    global _epoch_last
    last = _epoch_last
    if t == last[0]:
        return last[1]
    if t < 0:
        return iso(datetime.fromtimestamp(t, UTC)) or ""
    frac, whole = math.modf(t)
    us = round(frac * 1e6)
    sec = int(whole)
    if us >= 1_000_000:
        us -= 1_000_000
        sec += 1
    text = f"{_second_iso(sec)}.{us:06d}+00:00"
    _epoch_last = (t, text)
    return text


_skips_json: dict[tuple[tuple[str, int], ...], str] = {}


def skips_json(skips: dict[str, int]) -> str:
    """``skips`` as sorted compact JSON, memoised (an event stream repeats a few shapes)."""
    key = tuple(skips.items())
    try:
        return _skips_json[key]
    except KeyError:
        if len(_skips_json) >= 4096:
            _skips_json.clear()
        text = _skips_json[key] = _sorted_json(skips)
        return text


def skips_text(decisions: Sequence[Decision], reasons: Sequence[str] | None = None) -> str | None:
    """``skips_json(skip_counts(decisions))`` (None without skips), memoised by the skip
    reasons in order (``reasons`` when the caller collected them: :func:`.rows.decision_rows`)."""
    return _skips_of(
        tuple(
            reasons if reasons is not None else [d.reason for d in decisions if d.action == "skip"]
        )
    )


@lru_cache(maxsize=4096)
def _skips_of(reasons: tuple[str, ...]) -> str | None:
    """:func:`skips_json` of the counts of ``reasons`` (what :func:`.rows.skip_counts` counts of
    the decisions they came from, in the same order), None for none."""
    if not reasons:
        return None
    counts: dict[str, int] = {}
    for r in reasons:
        counts[r] = counts.get(r, 0) + 1
    return skips_json(counts)


@lru_cache(maxsize=4096)
def _source_json(source: str) -> str:
    """``source``'s part of the event JSON's prefix."""
    return ',"source":' + _text_json(source) + ","


def compact_event_json(event: Event, text: str) -> str:
    """``text`` (the event's JSON, fields in model order) without its leading ``event_id``
    and ``source``, which the events table holds as columns; unchanged when it does not start
    with exactly those two (the reader accepts both forms: :func:`event_from_row_json`)."""
    prefix = '{"event_id":' + _text_json(event.event_id) + _source_json(event.source)
    return "{" + text[len(prefix) :] if text.startswith(prefix) else text


def event_from_row_json(text: str, event_id: str, source: str) -> str:
    """The full event JSON back from a stored (possibly compact) ``event_json``."""
    if text.startswith('{"event_id":'):
        return text
    rest = text[1:]
    return (
        '{"event_id":'
        + _text_json(event_id)
        + ',"source":'
        + _text_json(source)
        + ("," + rest if rest != "}" else "}")
    )

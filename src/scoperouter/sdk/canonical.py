"""Row values in the one canonical form the SDK compares and digests them in: what
:func:`~scoperouter.sdk.change_detection.diff_rows` compares and
:func:`value_digest` / :func:`field_digests` / :func:`row_digest` hash, so the two always
agree (a processor may keep the digests of what it wrote instead of the old rows).

Invariant: :func:`canonical` is a pure function to a JSON value; JSON's own values map to
themselves (their digests never change); two values compare equal exactly when their
canonical texts are equal (:func:`_same`). No clock, no I/O.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Protocol

__all__ = [
    "Row",
    "as_row",
    "canonical",
    "canonical_text",
    "field_digests",
    "row_digest",
    "same",
    "same_row",
    "value_digest",
]


class Row(Protocol):
    """A row: a mapping of column -> value, or anything with ``keys()`` and ``[column]``
    (a ``google.cloud.bigquery`` ``Row``). See :func:`as_row`."""

    def keys(self) -> Iterable[str]: ...

    def __getitem__(self, key: str, /) -> object: ...


#: tags of the canonical forms JSON has no type for (a NUL first: no column name clashes)
_SET = "\x00set"
_MAP = "\x00map"


def _text(canon: object) -> str:
    return json.dumps(canon, sort_keys=True, separators=(",", ":"))


def canonical(value: object) -> object:
    """``value`` in the one form values are compared *and* digested in (a JSON value).

    * JSON's own values are themselves, so their digests never changed: ``None``, ``str``,
      ``bool``, ``int``, ``float`` (``1``, ``1.0`` and ``True`` differ; NaN is NaN; ``-0.0``
      is not ``0.0``), a mapping with ``str`` keys (a struct) of canonical values.
    * Arrays: a ``list``, a ``tuple`` or an array-like (any object whose ``tolist()``
      returns a list, e.g. a REPEATED column read through ``to_dataframe``) is the list of
      its items, every one of them (never its ``str()``, which elides a long array); a
      scalar whose ``tolist()`` gives a JSON value (``numpy.int64``, ``numpy.bool_``) is
      that value.
    * Tagged: a ``set`` is ``{"\\u0000set": items}`` sorted, so its order never matters; a
      mapping with another key (``int``, ``bool``, a ``date``) is ``{"\\u0000map": [[key,
      value], ...]}`` sorted, so ``1`` and ``True`` keys differ and a ``date`` key is no
      error.
    * An aware datetime is its UTC instant's text (the DST fold's two 01:30 differ, one
      instant written in two zones does not); any other value (a ``date``, a naive
      ``datetime``, a ``Decimal``: ``1.0`` and ``1.00`` differ) is its ``str()``, as
      before."""
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, Mapping):
        if all(isinstance(k, str) for k in value):
            return {k: canonical(v) for k, v in value.items()}
        pairs = [[canonical(k), canonical(v)] for k, v in value.items()]
        return {_MAP: sorted(pairs, key=_text)}
    if isinstance(value, list | tuple):
        return [canonical(v) for v in value]
    if isinstance(value, set | frozenset):
        return {_SET: sorted((canonical(v) for v in value), key=_text)}
    if isinstance(value, datetime) and value.utcoffset() is not None:
        return str(value.astimezone(UTC))
    tolist = getattr(value, "tolist", None)
    if callable(tolist) and not isinstance(value, bytes | bytearray):
        items = tolist()
        if isinstance(items, list):
            return [canonical(v) for v in items]
        if items is None or isinstance(items, str | bool | int | float):
            # a numpy scalar (a to_dataframe cell: numpy.int64, numpy.bool_) is its Python
            # value: 27 equals a plain 27 and differs from "27" (its str() made it "27")
            return items
    return str(value)


def canonical_text(value: object) -> str:
    """:func:`canonical` as its JSON text (sorted keys, no spaces): what is hashed."""
    return _text(canonical(value))


def value_digest(value: object) -> str:
    """A stable digest of one value (its :func:`canonical` JSON, sha256, 16 hex digits)."""
    return hashlib.sha256(canonical_text(value).encode("utf-8")).hexdigest()[:16]


def as_row(row: object, entity: object = None) -> dict[str, object]:
    """``row`` as a dict of column -> value: a mapping, or any row with ``items()`` or
    ``keys()`` (a ``google.cloud.bigquery`` ``Row``, whose iteration yields its *values*, not
    its column names). Anything else (a tuple, a list, a scalar) raises TypeError: read as a
    row it would be diffed by its values and hide the change."""
    if isinstance(row, Mapping):
        return dict(row.items())
    items = getattr(row, "items", None)
    if callable(items):
        return dict(items())
    keys = getattr(row, "keys", None)
    if callable(keys):
        return {k: row[k] for k in keys()}  # type: ignore[index]
    who = "a row" if entity is None else f"the row of entity {entity!r}"
    raise TypeError(
        f"{who} is a {type(row).__name__}, not a mapping of column -> value (it has no "
        "keys()): pass a dict or a BigQuery Row, e.g. dict(zip(columns, values))"
    )


def field_digests(row: Row) -> dict[str, str]:
    """The digest of every field of a row (a mapping or a BigQuery Row, see :func:`as_row`)."""
    return {k: value_digest(v) for k, v in as_row(row).items()}


def row_digest(row: Row, fields: Iterable[str] | None = None) -> str:
    """A digest of a whole row (or of ``fields`` only; missing fields count as None)."""
    data = as_row(row)
    if fields is not None:
        data = {f: data.get(f) for f in fields}
    return value_digest(data)


def same(a: object, b: object) -> bool:
    """The same :func:`canonical` value -- what the digests compare, so :func:`diff_rows` and
    :func:`field_digests` always agree (``1``, ``1.0`` and ``True`` differ at every depth;
    NaN equals NaN; aware datetimes are equal when they are the same instant)."""
    if type(a) is type(b) and (a is None or isinstance(a, str | int)):
        return a == b  # the common case, the same answer as the canonical text's (bool too)
    if type(a) is float and type(b) is float:
        # a float's text is its repr (NaN, Infinity): equal texts are equal values but for
        # the two zeros, whose signs differ; NaN's text is NaN's
        if a == b:
            return a != 0.0 or math.copysign(1.0, a) == math.copysign(1.0, b)
        return a != a and b != b
    return canonical_text(a) == canonical_text(b)


def same_row(a: dict[str, object], b: dict[str, object]) -> bool:
    # (a plain a == b would take [1] for [True]: nested values compare with their types)
    return a.keys() == b.keys() and all(same(v, b[k]) for k, v in a.items())

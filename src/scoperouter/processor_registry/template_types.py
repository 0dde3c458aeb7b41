"""The values of the template language (:mod:`.template`): JSON kinds, the static
:class:`Type` of a compiled :class:`Node`, and the errors of compiling and rendering.

Invariant: a node's :class:`Type` covers every value its ``render`` may return (``ABSENT``:
it may be left out, rendered as :data:`_ABSENT_VALUE`), its ``values``, when known, are
every string it may be, its ``items``, when known, every kind a list it gives may hold, and
its ``texts`` every literal string its value may hold: what the compiler's checks
(comparisons, ``$lookup`` coverage, ``$join``'s items, a header's control characters) rely on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

# JSON kinds a value may have; ABSENT marks "may be left out" ($if without else).
STRING, NUMBER, BOOLEAN, ARRAY, OBJECT, NULL, ABSENT = (
    "string", "number", "boolean", "array", "object", "null", "absent",
)  # fmt: skip
ANY = frozenset({STRING, NUMBER, BOOLEAN, ARRAY, OBJECT, NULL})
Path = tuple[str | int, ...]


@dataclass(frozen=True)
class Type:
    """What a template may evaluate to: JSON kinds, and the known string values if finite."""

    kinds: frozenset[str]
    values: frozenset[str] | None = None
    # when ``kinds`` has ARRAY: the kinds its items may have, None when not known
    items: frozenset[str] | None = None

    def only(self, *kinds: str) -> bool:
        return self.kinds <= frozenset(kinds)

    def describe(self) -> str:
        return "|".join(sorted(self.kinds))


def T(
    *kinds: str, values: frozenset[str] | None = None, items: frozenset[str] | None = None
) -> Type:
    return Type(frozenset(kinds), values, items)


def known_items(types: list[Type]) -> frozenset[str] | None:
    """The item kinds of a value that is one of ``types``: the union over those that may be
    a list, None when any of those lists' items are not known."""
    out: set[str] = set()
    for t in types:
        if ARRAY in t.kinds:
            if t.items is None:
                return None
            out |= t.items
    return frozenset(out)


@dataclass(frozen=True)
class TemplateIssue:
    """One error inside a template; ``path`` is relative to the template's root."""

    path: Path
    message: str


class TemplateError(ValueError):
    def __init__(self, issues: list[TemplateIssue]) -> None:
        self.issues = issues
        super().__init__("; ".join(f"{'/'.join(map(str, i.path))}: {i.message}" for i in issues))


class RenderError(ValueError):
    """A template could not be rendered for this input (a ``$lookup`` miss, a ``$join``
    item holding the separator)."""


class _Absent:
    def __repr__(self) -> str:
        return "<absent>"


_ABSENT_VALUE = _Absent()


@dataclass(frozen=True)
class Node:
    """A compiled template node; ``render`` maps the input object to JSON."""

    type: Type
    render: Callable[[Mapping[str, Any]], Any] = field(compare=False)
    ref: str | None = None  # the field name when the node is a plain reference
    literal: Any = None  # the value when the node is a constant
    is_literal: bool = False
    # every literal string its value may hold, whole or in part (a $concat's constants, a
    # $lookup's table values, a $join's separator...): what a header's check looks at
    texts: frozenset[str] = frozenset()


def texts_of(nodes: list[Node]) -> frozenset[str]:
    """The literal strings a value built from ``nodes`` may hold."""
    return frozenset[str]().union(*(n.texts for n in nodes))


def _kind_of(value: Any) -> str:
    if value is None:
        return NULL
    if isinstance(value, bool):
        return BOOLEAN
    if isinstance(value, int | float):
        return NUMBER
    if isinstance(value, str):
        return STRING
    if isinstance(value, list | tuple):
        return ARRAY
    return OBJECT


def _strings_in(value: Any) -> frozenset[str]:
    if isinstance(value, str):
        return frozenset({value})
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list | tuple):
        return frozenset[str]().union(*map(_strings_in, value))
    return frozenset()


def _const(value: Any) -> Node:
    values = frozenset({value}) if isinstance(value, str) else None
    items = frozenset(map(_kind_of, value)) if isinstance(value, list | tuple) else None
    return Node(
        T(_kind_of(value), values=values, items=items),
        lambda _o: value,
        literal=value,
        is_literal=True,
        texts=_strings_in(value),
    )

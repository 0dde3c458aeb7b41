"""A small, declarative template language that reshapes one flat JSON object (a trigger)
into the JSON a service expects -- like EventBridge's input transformer, without ``eval``.

Invariant: a template is compiled once and statically typed against the fields it may
read, so every unknown field, unknown operator, wrong arity or impossible comparison is a
:class:`TemplateIssue` (with its path inside the template) *before* anything is sent;
rendering is pure and total except for ``$lookup`` misses without a default and a
``$join`` item holding the separator (:class:`RenderError`: the joined text would split
back into other items -- a narrower id list -- so nothing is rendered).

Syntax (any JSON value; objects and arrays are templates element-wise):

* ``"$.field"`` -- the value of a field; ``"$"`` -- the whole object.
* ``"$$..."`` -- a literal string starting with ``$`` (one ``$`` removed); ``"${VAR}"`` is a
  literal too (environment interpolation happens before, through ``literal_hook``).
* ``{"$op": args}`` -- an operator object (exactly one key): ``$eq``/``$ne`` ``[a, b]``,
  ``$in`` ``[a, [b, ...]]``, ``$not`` ``a``, ``$and``/``$or`` ``[a, ...]``, ``$if``
  ``[cond, then]`` or ``[cond, then, else]`` (without else a false condition leaves the
  key or element out), ``$coalesce`` ``[a, ...]`` (first non-null), ``$concat``
  ``[a, ...]`` (strings), ``$join`` ``[list, sep]``, ``$count`` ``a``, ``$lookup``
  ``[key, {table}]`` or ``[key, {table}, default]``, ``$literal`` ``any`` (verbatim).
"""

from __future__ import annotations

import difflib
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

    def only(self, *kinds: str) -> bool:
        return self.kinds <= frozenset(kinds)

    def describe(self) -> str:
        return "|".join(sorted(self.kinds))


def T(*kinds: str, values: frozenset[str] | None = None) -> Type:
    return Type(frozenset(kinds), values)


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


OPERATORS = (
    "$and", "$coalesce", "$concat", "$count", "$eq", "$if", "$in", "$join",
    "$literal", "$lookup", "$ne", "$not", "$or",
)  # fmt: skip


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


def _const(value: Any) -> Node:
    values = frozenset({value}) if isinstance(value, str) else None
    return Node(T(_kind_of(value), values=values), lambda _o: value, literal=value, is_literal=True)


class _Compiler:
    def __init__(self, fields: Mapping[str, Type], hook: Callable[[str, Path], str]) -> None:
        self.fields = fields
        self.hook = hook
        self.issues: list[TemplateIssue] = []

    def fail(self, path: Path, message: str) -> Node:
        self.issues.append(TemplateIssue(path, message))
        return Node(Type(ANY), lambda _o: None)

    # ---------------------------------------------------------------- values
    def node(self, data: Any, path: Path) -> Node:
        if isinstance(data, str):
            return self.string(data, path)
        if isinstance(data, list):
            return self.array(data, path)
        if isinstance(data, dict):
            keys = [k for k in data if isinstance(k, str) and k.startswith("$")]
            if keys:
                return self.operator(data, keys, path)
            return self.obj(data, path)
        if data is None or isinstance(data, bool | int | float):
            return _const(data)
        return self.fail(path, f"not a JSON value: {type(data).__name__}")

    def string(self, text: str, path: Path) -> Node:
        if text.startswith("$$"):
            return _const(text[1:])
        if text == "$":
            return Node(T(OBJECT), lambda o: dict(o))
        if text.startswith("$."):
            name = text[2:]
            ftype = self.fields.get(name)
            if ftype is None:
                return self.fail(path, f"unknown field {name!r}{_suggest(name, self.fields)}")
            return Node(ftype, lambda o: o.get(name), ref=name)
        if text.startswith("$") and not text.startswith("${"):
            return self.fail(
                path,
                f"{text!r}: a reference is '$.field' or '$'; write '$${text[1:]}' for a "
                "literal string starting with '$'",
            )
        return _const(self.hook(text, path))

    def array(self, items: list[Any], path: Path) -> Node:
        nodes = [self.node(v, (*path, i)) for i, v in enumerate(items)]

        def render(o: Mapping[str, Any]) -> list[Any]:
            return [v for v in (n.render(o) for n in nodes) if v is not _ABSENT_VALUE]

        return Node(T(ARRAY), render)

    def obj(self, data: dict[Any, Any], path: Path) -> Node:
        nodes: list[tuple[str, Node]] = []
        for k, v in data.items():
            if not isinstance(k, str):
                self.fail((*path, str(k)), "object keys are strings")
                continue
            nodes.append((k, self.node(v, (*path, k))))

        def render(o: Mapping[str, Any]) -> dict[str, Any]:
            out = {}
            for k, n in nodes:
                v = n.render(o)
                if v is not _ABSENT_VALUE:
                    out[k] = v
            return out

        return Node(T(OBJECT), render)

    # ------------------------------------------------------------- operators
    def operator(self, data: dict[str, Any], keys: list[str], path: Path) -> Node:
        if len(data) != 1:
            return self.fail(
                path,
                f"an operator object has exactly one key (got {sorted(map(str, data))}); "
                "use {'$literal': {...}} for a literal object with '$' keys",
            )
        op = keys[0]
        if op not in OPERATORS:
            return self.fail((*path, op), f"unknown operator {op!r}{_suggest(op, OPERATORS)}")
        arg, where = data[op], (*path, op)
        if op == "$literal":
            return _const(arg)
        method: Callable[[Any, Path], Node] = getattr(self, "op_" + op[1:])
        return method(arg, where)

    def args(self, arg: Any, where: Path, lo: int, hi: int | None, what: str) -> list[Node] | None:
        n = len(arg) if isinstance(arg, list) else -1
        if n < lo or (hi is not None and n > hi):
            want = f"{lo}" if hi == lo else f"{lo}..{hi}" if hi else f"at least {lo}"
            self.fail(where, f"expects a list of {want} arguments: {what}")
            return None
        return [self.node(v, (*where, i)) for i, v in enumerate(arg)]

    def expand(self, value: Any, path: Path) -> Any:
        """``value`` (a literal) with the literal hook applied to every string in it."""
        if isinstance(value, str):
            return self.hook(value, path)
        if isinstance(value, list):
            return [self.expand(v, (*path, i)) for i, v in enumerate(value)]
        if isinstance(value, dict):
            return {k: self.expand(v, (*path, str(k))) for k, v in value.items()}
        return value

    def boolean(self, node: Node, where: Path) -> None:
        if not node.type.only(BOOLEAN):
            self.fail(where, f"a condition must be boolean (this is {node.type.describe()})")

    def comparable(self, a: Node, b: Node, where: Path) -> None:
        for x, y in ((a, b), (b, a)):
            if (
                x.ref
                and x.type.values is not None
                and y.is_literal
                and not (isinstance(y.literal, str) and y.literal in x.type.values)
                and not (y.literal is None and NULL in x.type.kinds)  # a nullable field
            ):
                self.fail(
                    where,
                    f"{x.ref} is never {y.literal!r} (its values: "
                    f"{', '.join(sorted(x.type.values))})",
                )
                return
        if not (a.type.kinds & b.type.kinds):
            self.fail(where, f"can never be equal: {a.type.describe()} vs {b.type.describe()}")

    def op_eq(self, arg: Any, where: Path, negate: bool = False) -> Node:
        ns = self.args(arg, where, 2, 2, "[a, b]")
        if ns is None:
            return Node(T(BOOLEAN), lambda _o: False)
        a, b = ns
        self.comparable(a, b, where)
        if negate:
            return Node(T(BOOLEAN), lambda o: a.render(o) != b.render(o))
        return Node(T(BOOLEAN), lambda o: a.render(o) == b.render(o))

    def op_ne(self, arg: Any, where: Path) -> Node:
        return self.op_eq(arg, where, negate=True)

    def op_in(self, arg: Any, where: Path) -> Node:
        if not (isinstance(arg, list) and len(arg) == 2 and isinstance(arg[1], list)):
            return self.fail(where, "expects [value, [candidate, ...]]")
        a = self.node(arg[0], (*where, 0))
        cands = [self.node(v, (*where, 1, i)) for i, v in enumerate(arg[1])]
        for i, c in enumerate(cands):
            self.comparable(a, c, (*where, 1, i))
        return Node(T(BOOLEAN), lambda o: a.render(o) in [c.render(o) for c in cands])

    def op_not(self, arg: Any, where: Path) -> Node:
        a = self.node(arg, where)
        self.boolean(a, where)
        return Node(T(BOOLEAN), lambda o: not a.render(o))

    def op_and(self, arg: Any, where: Path, any_: bool = False) -> Node:
        ns = self.args(arg, where, 1, None, "[condition, ...]") or []
        for i, n in enumerate(ns):
            self.boolean(n, (*where, i))
        if any_:
            return Node(T(BOOLEAN), lambda o: any(n.render(o) for n in ns))
        return Node(T(BOOLEAN), lambda o: all(n.render(o) for n in ns))

    def op_or(self, arg: Any, where: Path) -> Node:
        return self.op_and(arg, where, any_=True)

    def op_if(self, arg: Any, where: Path) -> Node:
        ns = self.args(arg, where, 2, 3, "[condition, then] or [condition, then, else]")
        if ns is None:
            return Node(Type(ANY), lambda _o: None)
        cond, then = ns[0], ns[1]
        self.boolean(cond, (*where, 0))
        other = ns[2] if len(ns) == 3 else Node(T(ABSENT), lambda _o: _ABSENT_VALUE)
        values = (
            then.type.values | other.type.values
            if then.type.values is not None and other.type.values is not None
            else None
        )
        return Node(
            Type(then.type.kinds | other.type.kinds, values),
            lambda o: then.render(o) if cond.render(o) else other.render(o),
        )

    def op_coalesce(self, arg: Any, where: Path) -> Node:
        ns = self.args(arg, where, 1, None, "[value, ..., fallback]") or []
        # the first value neither null nor left out ($if without else); else the last's
        kinds: set[str] = set()
        for n in ns:
            kinds |= n.type.kinds - {NULL, ABSENT}
        if not ns or NULL in ns[-1].type.kinds:
            kinds.add(NULL)
        if ns and ABSENT in ns[-1].type.kinds:
            kinds.add(ABSENT)

        def render(o: Mapping[str, Any]) -> Any:
            v = None
            for n in ns:
                v = n.render(o)
                if v is not None and v is not _ABSENT_VALUE:
                    return v
            return v

        return Node(Type(frozenset(kinds), _known_values(ns)), render)

    def op_concat(self, arg: Any, where: Path) -> Node:
        ns = self.args(arg, where, 1, None, "[string, ...]") or []
        for i, n in enumerate(ns):
            if not n.type.only(STRING, NUMBER):
                self.fail(
                    (*where, i),
                    f"$concat takes strings or numbers (this is "
                    f"{n.type.describe()}; wrap a nullable field in $coalesce)",
                )
        return Node(T(STRING), lambda o: "".join(str(n.render(o)) for n in ns))

    def op_join(self, arg: Any, where: Path) -> Node:
        ns = self.args(arg, where, 2, 2, "[list, separator]")
        if ns is None:
            return Node(T(STRING), lambda _o: "")
        items, sep = ns
        if not items.type.only(ARRAY, NULL):
            self.fail((*where, 0), f"$join needs a list (this is {items.type.describe()})")
        if not (sep.is_literal and isinstance(sep.literal, str) and sep.literal):
            self.fail(
                (*where, 1),
                "the separator is a non-empty literal string (a service splits the text on it)",
            )
        kinds = {STRING} | ({NULL} & items.type.kinds)
        text = str(sep.literal)

        def render(o: Mapping[str, Any]) -> str | None:
            v = items.render(o)
            if v is None:
                return None
            parts = [str(x) for x in v]
            joined = text.join(parts)
            # the service splits the text on the separator: an item holding it (or, for a
            # separator that overlaps itself like "','", two items meeting around it) would
            # come back as other items -- other ids, fewer of the trigger's
            if parts and joined.split(text) != parts:
                bad = next((x for x in parts if text in x), None)
                raise RenderError(
                    f"$join: {'the item ' + repr(bad) if bad is not None else 'the items'} "
                    f"with the separator {text!r} would not split back into the list"
                )
            return joined

        return Node(Type(frozenset(kinds)), render)

    def op_count(self, arg: Any, where: Path) -> Node:
        a = self.node(arg, where)
        if not a.type.only(ARRAY, NULL):
            self.fail(where, f"$count needs a list (this is {a.type.describe()})")
        return Node(T(NUMBER), lambda o: len(a.render(o) or ()))

    def op_lookup(self, arg: Any, where: Path) -> Node:
        if not (isinstance(arg, list) and len(arg) in (2, 3) and isinstance(arg[1], dict)):
            return self.fail(where, "expects [key, {table}] or [key, {table}, default]")
        key = self.node(arg[0], (*where, 0))
        if not key.type.only(STRING, NULL):
            self.fail((*where, 0), f"a lookup key is a string (this is {key.type.describe()})")
        # the values are literals: ``${VAR}`` in their strings is expanded like any other
        table = {str(k): self.expand(v, (*where, 1, str(k))) for k, v in arg[1].items()}
        default = self.node(arg[2], (*where, 2)) if len(arg) == 3 else None
        if default is None and NULL in key.type.kinds and key.type.values is not None:
            self.fail((*where, 0), f"{key.ref or 'the key'} may be null: add a default")
        elif default is None and key.type.values is not None:
            missing = sorted(key.type.values - set(table))
            if missing:
                self.fail(
                    (*where, 1),
                    f"no entry for {', '.join(map(repr, missing))} "
                    f"(values of {key.ref or 'the key'}); add them or a default",
                )
        kinds = {_kind_of(v) for v in table.values()} | (default.type.kinds if default else set())
        consts = [_const(v) for v in table.values()]

        def render(o: Mapping[str, Any]) -> Any:
            k = key.render(o)
            if k in table:
                return table[k]
            if default is None:
                raise RenderError(f"$lookup: no entry for {k!r} (and no default)")
            return default.render(o)

        values = _known_values([*consts, *([default] if default is not None else [])])
        return Node(Type(frozenset(kinds), values), render)


def _known_values(nodes: list[Node]) -> frozenset[str] | None:
    """The strings one of ``nodes`` may give, when each one's are known (a non-string
    node -- null, a number -- adds none); None when any string's value is open. A
    ``$lookup`` keyed by it is then checked for coverage like one keyed by a field."""
    out: set[str] = set()
    for n in nodes:
        if n.type.values is not None:
            out |= n.type.values
        elif STRING in n.type.kinds or not n.type.kinds <= {NULL, NUMBER, BOOLEAN, ABSENT}:
            return None
    return frozenset(out)


def _suggest(name: str, choices: Mapping[str, Any] | tuple[str, ...]) -> str:
    options = sorted(choices)
    close = difflib.get_close_matches(name, options, n=1, cutoff=0.6)
    if close:
        return f" (did you mean {close[0]!r}?)"
    return f" (known: {', '.join(options)})"


def compile_template(
    data: Any,
    fields: Mapping[str, Type],
    *,
    literal_hook: Callable[[str, Path], str] | None = None,
    base: Path = (),
) -> Node:
    """Compile and type-check ``data``; raise :class:`TemplateError` listing every issue.
    ``literal_hook(text, path)`` rewrites literal strings (environment interpolation)."""
    c = _Compiler(fields, literal_hook or (lambda text, _p: text))
    root = c.node(data, base)
    if c.issues:
        raise TemplateError(c.issues)
    return root


def render(node: Node, obj: Mapping[str, Any]) -> Any:
    """The JSON value of ``node`` for ``obj``; a root left out renders as ``None``."""
    v = node.render(obj)
    return None if v is _ABSENT_VALUE else v

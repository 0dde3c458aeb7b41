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
from typing import Any

from scoperouter.processor_registry.template_ops import OPERATORS, _Operators
from scoperouter.processor_registry.template_types import (
    _ABSENT_VALUE,
    ABSENT,
    ANY,
    ARRAY,
    BOOLEAN,
    NULL,
    NUMBER,
    OBJECT,
    STRING,
    Node,
    Path,
    RenderError,
    T,
    TemplateError,
    TemplateIssue,
    Type,
    _const,
    texts_of,
)

__all__ = [
    "ABSENT",
    "ANY",
    "ARRAY",
    "BOOLEAN",
    "NULL",
    "NUMBER",
    "OBJECT",
    "OPERATORS",
    "STRING",
    "Node",
    "Path",
    "RenderError",
    "T",
    "TemplateError",
    "TemplateIssue",
    "Type",
    "compile_template",
    "render",
]


class _Compiler(_Operators):
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

        kinds = frozenset[str]().union(*(n.type.kinds for n in nodes)) - {ABSENT}  # left out
        return Node(T(ARRAY, items=kinds), render, texts=texts_of(nodes))

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

        return Node(T(OBJECT), render, texts=texts_of([n for _k, n in nodes]))

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

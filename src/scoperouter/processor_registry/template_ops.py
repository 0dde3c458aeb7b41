"""The operators of the template language (:mod:`.template`): each ``op_*`` compiles one
``{"$op": args}`` object, checking its arguments' types before anything is rendered.

Invariant: every misuse an operator can see statically (arity, a non-boolean condition, a
comparison that can never hold, a ``$lookup`` key with no entry, a nullable one without a
default) is an issue at its path
(:meth:`_Operators.fail`), and the node it returns has a :class:`~.template_types.Type`
covering what it renders; a render raises only :class:`~.template_types.RenderError` (a
``$lookup`` miss without a default, a ``$join`` item holding the separator).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import Any

from scoperouter.processor_registry.template_types import (
    _ABSENT_VALUE,
    ABSENT,
    ANY,
    ARRAY,
    BOOLEAN,
    NULL,
    NUMBER,
    STRING,
    Node,
    Path,
    RenderError,
    T,
    Type,
    _const,
    _kind_of,
    known_items,
    texts_of,
)

OPERATORS = (
    "$and", "$coalesce", "$concat", "$count", "$eq", "$if", "$in", "$join",
    "$literal", "$lookup", "$ne", "$not", "$or",
)  # fmt: skip


class _Operators(ABC):
    """The operator half of the template compiler (:class:`.template._Compiler` is the
    other: values, references, objects and arrays)."""

    hook: Callable[[str, Path], str]

    @abstractmethod
    def node(self, data: Any, path: Path) -> Node:
        """Compile any template value at ``path``."""

    @abstractmethod
    def fail(self, path: Path, message: str) -> Node:
        """Record an issue at ``path``; a placeholder node."""

    def args(self, arg: Any, where: Path, lo: int, hi: int | None, what: str) -> list[Node] | None:
        n = len(arg) if isinstance(arg, list) else -1
        if n < lo or (hi is not None and n > hi):
            want = f"{lo}" if hi == lo else f"{lo}..{hi}" if hi else f"at least {lo}"
            self.fail(where, f"expects a list of {want} arguments: {what}")
            return None
        return [self.node(v, (*where, i)) for i, v in enumerate(arg)]

    def expand(self, value: Any, path: Path) -> Any:
        """``value`` (a literal) with the literal hook applied to every string in it but a
        ``$$`` escape, which loses one ``$`` as everywhere in a template."""
        if isinstance(value, str):
            return value[1:] if value.startswith("$$") else self.hook(value, path)
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
                # ${VAR} unexpanded (validate): serve compares the environment's value
                and not (isinstance(y.literal, str) and "${" in y.literal)
            ):
                self.fail(
                    where,
                    f"{x.ref} is never {y.literal!r} (its values: "
                    f"{', '.join(sorted(x.type.values)) or 'none, it is always null'})",
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
        # a branch of null (or a number) adds no string: [c, "a", null] may give "a" or null,
        # a key whose coverage $lookup checks as it checks $coalesce's and its own
        values = _known_values([then, other])
        return Node(
            Type(then.type.kinds | other.type.kinds, values, known_items([then.type, other.type])),
            lambda o: then.render(o) if cond.render(o) else other.render(o),
            texts=texts_of([then, other]),
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

        items = known_items([n.type for n in ns])
        return Node(Type(frozenset(kinds), _known_values(ns), items), render, texts=texts_of(ns))

    def op_concat(self, arg: Any, where: Path) -> Node:
        ns = self.args(arg, where, 1, None, "[string, ...]") or []
        for i, n in enumerate(ns):
            if not n.type.only(STRING, NUMBER):
                self.fail(
                    (*where, i),
                    f"$concat takes strings or numbers (this is "
                    f"{n.type.describe()}; wrap a nullable field in $coalesce)",
                )
        return Node(T(STRING), lambda o: "".join(str(n.render(o)) for n in ns), texts=texts_of(ns))

    def op_join(self, arg: Any, where: Path) -> Node:
        ns = self.args(arg, where, 2, 2, "[list, separator]")
        if ns is None:
            return Node(T(STRING), lambda _o: "")
        items, sep = ns
        if not items.type.only(ARRAY, NULL):
            self.fail((*where, 0), f"$join needs a list (this is {items.type.describe()})")
        elif ARRAY in items.type.kinds and not (
            items.type.items is not None and items.type.items <= {STRING, NUMBER}
        ):
            # an object, a list, null or a boolean has no text a service splits back
            held = "|".join(sorted(items.type.items)) if items.type.items is not None else "any"
            self.fail(
                (*where, 0),
                f"$join joins a list of strings or numbers (its items may be {held})",
            )
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

        return Node(Type(frozenset(kinds)), render, texts=texts_of([items, sep]))

    def op_count(self, arg: Any, where: Path) -> Node:
        a = self.node(arg, where)
        if not a.type.only(ARRAY, NULL):
            self.fail(where, f"$count needs a list (this is {a.type.describe()})")
        return Node(T(NUMBER), lambda o: len(a.render(o) or ()))

    def op_lookup(self, arg: Any, where: Path) -> Node:
        if not (isinstance(arg, list) and len(arg) in (2, 3) and isinstance(arg[1], dict)):
            return self.fail(where, "expects [key, {table}] or [key, {table}, default]")
        key = self.node(arg[0], (*where, 0))
        keyed = key.type.only(STRING, NULL)
        if not keyed:
            self.fail((*where, 0), f"a lookup key is a string (this is {key.type.describe()})")
        # the values are literals: ``${VAR}`` in their strings is expanded, and ``$$`` is the
        # escape, like any other string's
        table = {str(k): self.expand(v, (*where, 1, str(k))) for k, v in arg[1].items()}
        default = self.node(arg[2], (*where, 2)) if len(arg) == 3 else None
        if default is None and keyed and NULL in key.type.kinds:
            # a null key never matches a table (its keys are strings), whatever its values
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

        given = [*consts, *([default] if default is not None else [])]
        values = _known_values(given)
        return Node(
            Type(frozenset(kinds), values, known_items([n.type for n in given])),
            render,
            texts=texts_of(given),
        )


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
